"""Drill-down page: per-item rows of one run and task side by side, filtered by which of two
models got an item right, exported as CSV, and one item's prompt and outputs."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

import pandas as pd
import streamlit as st

from bench import dashboard_data as dd
from bench.dashboard.reads import SAMPLE_COLUMNS, Store
from bench.dashboard.widgets import pick_run, pick_suite, reset_on_change

PAIR_MODES: dict[dd.PairMode, str] = {
    "a_wrong_b_right": "A wrong, B right",
    "a_right_b_wrong": "A right, B wrong",
    "disagree": "A and B disagree",
    "all": "all items",
}


def _known(v: Any) -> TypeGuard[float | int | str]:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA


def item_facts(row: pd.Series, model: str) -> str:
    """'correct: yes · extracted: 42 · latency 0.0123 s · tokens 11 in / 3 out', leaving out
    what the task does not have (no extracted answer for log-likelihood choices)."""
    parts = []
    correct = row.get(f"{model} correct")
    parts.append(f"correct: {('yes' if bool(correct) else 'no') if _known(correct) else 'error'}")
    extracted = row.get(f"{model} extracted")
    if _known(extracted) and str(extracted) != "":
        parts.append(f"extracted: {extracted}")
    latency = row.get(f"{model} latency_s")
    if _known(latency):
        parts.append(f"latency {float(latency):.3g} s")
    tin, tout = row.get(f"{model} in_tok"), row.get(f"{model} out_tok")
    if _known(tin) or _known(tout):
        parts.append(
            f"tokens {int(tin) if _known(tin) else '?'} in / {int(tout) if _known(tout) else '?'} out"
        )
    return " · ".join(parts)


def render(s: Store) -> None:
    st.header("Drill-down")
    suite = pick_suite(s.runs, "dd_suite")
    reset_on_change("dd", (suite,), ["dd_run"])
    in_suite = s.runs[s.runs["suite"] == suite]
    run_id = pick_run(in_suite, "dd_run", newest_option=False)
    reset_on_change("dd_run", (suite, run_id), ["dd_task"])
    in_run = in_suite[in_suite["run_id"] == run_id]
    task = st.sidebar.selectbox("Task", sorted(in_run["task"].unique()), key="dd_task")
    reset_on_change("dd_task", (suite, run_id, task), ["dd_models", "dd_a", "dd_b", "dd_item"])
    rows = in_run[in_run["task"] == task].sort_values("model_params", na_position="last")
    all_models = rows["model"].tolist()
    models = st.sidebar.multiselect("Models", all_models, default=all_models, key="dd_models")
    if not models:
        st.info("Pick at least one model.")
        return
    samples = s.samples([str(run_id)], SAMPLE_COLUMNS, models, [str(task)])
    c1, c2, c3 = st.columns(3)
    a = c1.selectbox("Model A", models, index=0, key="dd_a")
    b = c2.selectbox("Model B", models, index=len(models) - 1, key="dd_b")
    mode = c3.radio("Show", list(PAIR_MODES), format_func=PAIR_MODES.__getitem__, key="dd_mode")
    ids = dd.pair_filter(samples, a, b, mode)
    table = dd.drilldown_table(samples, models)
    table = table[table["item_id"].isin(ids)].reset_index(drop=True)
    st.caption(f"{len(table)} items ({PAIR_MODES[mode]}; A = {a}, B = {b}) of task {task}, run {run_id}")
    st.dataframe(table, hide_index=True, key="drill_table")
    st.download_button(
        "Download these rows as CSV",
        table.to_csv(index=False).encode(),
        file_name=f"{run_id}-{task}-{mode}.csv",
        mime="text/csv",
        key="drill_csv",
    )
    if len(table):
        item = st.selectbox("Item", table["item_id"].tolist(), key="dd_item")
        r = table[table["item_id"] == item].iloc[0]
        st.markdown(f"**Reference:** {r.get('reference')}")
        with st.expander("Prompt", expanded=False):
            st.code(str(r.get("prompt")), language=None, wrap_lines=True)
        for m in models:
            st.markdown(f"**{m}** — " + item_facts(r, m))
            st.code(str(r.get(f"{m} output")), language=None, wrap_lines=True)
