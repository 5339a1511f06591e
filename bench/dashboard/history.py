"""History page: one model on one task over runs, with 95% CIs, latency, and the significant
changes against the previous run marked."""

from __future__ import annotations

import streamlit as st

from bench import dashboard_data as dd
from bench.dashboard import charts
from bench.dashboard.reads import Store
from bench.dashboard.widgets import pick_suite, reset_on_change


def render(s: Store) -> None:
    st.header("History")
    suite = pick_suite(s.runs, "hi_suite", allow_all=True)
    reset_on_change("hi", (suite,), ["hi_model", "hi_task"])
    runs = s.runs if suite is None else s.runs[s.runs["suite"] == suite]
    model = st.sidebar.selectbox("Model", sorted(runs["model"].unique()), key="hi_model")
    reset_on_change("hi_model", (suite, model), ["hi_task"])
    task = st.sidebar.selectbox(
        "Task", sorted(runs.loc[runs["model"] == model, "task"].unique()), key="hi_task"
    )
    last = int(st.sidebar.number_input("Last N runs", 2, 10_000, 100, key="hi_last"))
    alpha = float(st.sidebar.number_input("alpha", 0.001, 0.5, 0.05, 0.01, key="hi_alpha"))
    recent = dd.history_table(runs, model, task)["run_id"].iloc[-last:].tolist()  # by run time
    h = dd.history_table(runs[runs["run_id"].isin(recent)], model, task, s.manifests(recent))
    scores = s.samples(h["run_id"].tolist(), ("item_id", "score", "correct", "error"), [model], [task])
    hc = dd.history_changes(h, scores[["run_id", "item_id", "score", "correct"]], alpha=alpha)
    fig = charts.history_figure(hc, alpha)
    st.plotly_chart(fig, key="history_chart")
    st.caption(
        f"{model} on {task}: {len(hc)} run{'s' if len(hc) != 1 else ''}, "
        f"{int(hc['changed'].sum())} significant change(s): a paired "
        "test against the previous run on the items both scored (McNemar's exact test for 0/1 scores), "
        f"significant when its p-value adjusted by Benjamini-Hochberg over the runs shown is below {alpha:g}."
    )
    cols = [
        "run_id", "created_at", "value", "ci_low", "ci_high", "n", "latency_p50", "latency_p95",
        "diff", "p_value", "p_adjusted", "changed", "git_sha", "bench_version", "hardware", "suite",
    ]  # fmt: skip
    st.dataframe(hc[cols].iloc[::-1], hide_index=True, key="history_table")
