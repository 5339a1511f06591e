"""Pickers and captions every page shares (sidebar suite and run choices, state resets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from bench import dashboard_data as dd
from bench.dashboard.charts import fmt_params

NEWEST = "__newest__"
ALL = "__all__"


def pick_suite(runs: pd.DataFrame, key: str, allow_all: bool = False) -> str | None:
    suites = sorted(runs["suite"].dropna().unique())
    default = dd.default_suite(runs)
    options = ([ALL] if allow_all else []) + suites
    index = options.index(default) if default in options else 0
    choice = st.sidebar.selectbox(
        "Suite", options, index=index, key=key, format_func=lambda s: "(all suites)" if s == ALL else s
    )
    return None if choice == ALL else str(choice)


def pick_run(runs: pd.DataFrame, key: str, newest_option: bool) -> str | None:
    """A run of the already-filtered rows, newest first; None = newest result per model and task."""
    ids = runs.sort_values("run_time", ascending=False)["run_id"].drop_duplicates().tolist()
    options = ([NEWEST] if newest_option else []) + ids
    choice = st.sidebar.selectbox(
        "Run",
        options,
        key=key,
        format_func=lambda r: "newest result per model and task" if r == NEWEST else dd.run_label(r),
    )
    return None if choice in (NEWEST, None) else str(choice)


def reset_on_change(name: str, context: tuple[Any, ...], keys: Sequence[str]) -> None:
    """Widgets whose options depend on `context` restart from their defaults when it changes: a kept
    selection that is no longer an option would otherwise turn into an empty or stale choice."""
    marker = f"_context_{name}"
    if st.session_state.get(marker) != context:
        for k in keys:
            st.session_state.pop(k, None)
        st.session_state[marker] = context


def model_caption(runs: pd.DataFrame, models: Sequence[str]) -> str:
    facts = runs.drop_duplicates("model").set_index("model")
    parts = []
    for m in models:
        if m in facts.index:
            r = facts.loc[m]
            parts.append(f"**{m}** {fmt_params(r['model_params'])} {r['quant'] or ''} ({r['backend']})")
    return " · ".join(parts)
