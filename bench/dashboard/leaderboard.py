"""Leaderboard page: primary metric per task with 95% CIs and CI-tie ranks, filters, and the
Pareto fronts of accuracy against cost, latency, memory and parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from bench import dashboard_data as dd
from bench.dashboard import charts
from bench.dashboard.reads import Store
from bench.dashboard.widgets import pick_run, pick_suite, reset_on_change


def _leaderboard_filters(runs: pd.DataFrame) -> dd.Filters:
    sb = st.sidebar
    suite = pick_suite(runs, "lb_suite")
    reset_on_change("lb", (suite,), ["lb_dates", "lb_run", "lb_tasks", "lb_backend", "lb_hw", "pareto_y"])
    in_suite = runs[runs["suite"] == suite]
    days = in_suite["run_time"].dt.date
    lo, hi = days.min(), days.max()
    picked = sb.date_input("Run dates", value=(lo, hi), min_value=lo, max_value=hi, key="lb_dates")
    dates = tuple(picked) if isinstance(picked, list | tuple) else (picked,)
    d_from: date | None = dates[0] if len(dates) >= 1 else None
    d_to: date | None = dates[1] if len(dates) >= 2 else d_from
    in_dates = in_suite[(days >= (d_from or lo)) & (days <= (d_to or hi))]
    run_id = pick_run(in_dates, "lb_run", newest_option=True)
    tasks = sb.multiselect("Tasks", sorted(in_suite["task"].unique()), key="lb_tasks", placeholder="all")
    backends = sb.multiselect(
        "Backend", sorted(in_suite["backend"].dropna().unique()), key="lb_backend", placeholder="all"
    )
    hardware = sb.multiselect(
        "Hardware", sorted(in_suite["hardware"].dropna().unique()), key="lb_hw", placeholder="all"
    )
    threshold = sb.number_input(
        "SLM / LLM threshold (parameters)",
        min_value=1.0,
        value=dd.DEFAULT_SIZE_THRESHOLD,
        step=1e9,
        format="%.3g",
        key="lb_threshold",
        help="models below this parameter count are SLMs",
    )
    classes = sb.multiselect("Size class", ["SLM", "LLM", "unknown"], key="lb_size", placeholder="all")
    return dd.Filters(
        suite=suite,
        run_id=run_id,
        date_from=d_from,
        date_to=d_to,
        tasks=tuple(tasks),
        backends=tuple(backends),
        hardware=tuple(hardware),
        size_classes=tuple(classes),
        size_threshold=float(threshold),
    )


def _leaderboard_columns(board: pd.DataFrame, tasks: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    cc = st.column_config
    order = ["rank", "label", "size_class", "params", "quant", "backend", "hardware", "avg", "avg 95% CI"]
    config: dict[str, Any] = {
        "rank": cc.NumberColumn(
            "rank", help="1 + models whose 95% CI lies entirely above; ties share a rank"
        ),
        "label": cc.TextColumn("model"),
        "size_class": cc.TextColumn("class"),
        "params": cc.NumberColumn("params", format="compact"),
        "avg": cc.NumberColumn("suite avg", format="%.3f", help="macro average over higher-is-better tasks"),
        "avg 95% CI": cc.TextColumn("avg 95% CI"),
        "latency_p50": cc.NumberColumn("latency p50 s", format="%.3f"),
        "latency_p95": cc.NumberColumn("latency p95 s", format="%.3f"),
        "tokens_per_s": cc.NumberColumn("tok/s", format="%.0f"),
        "peak_rss_mb": cc.NumberColumn("peak mem MB", format="%.0f"),
        "usd_per_1k_items": cc.NumberColumn("$ / 1k items", format="%.4f"),
        "errors": cc.NumberColumn("errors"),
        "run_id": cc.TextColumn("newest run"),
    }
    for t in tasks:
        order += [t, f"{t} 95% CI"]
        config[t] = cc.NumberColumn(t, format="%.3f")
    order += [
        "latency_p50",
        "latency_p95",
        "tokens_per_s",
        "peak_rss_mb",
        "usd_per_1k_items",
        "errors",
        "run_id",
    ]
    return [c for c in order if c in board.columns], config


def render(s: Store) -> None:
    f = _leaderboard_filters(s.runs)
    selected = dd.select_results(s.runs, f)
    st.header("Leaderboard")
    if selected.empty:
        st.warning("No results match these filters.")
        return
    tasks = sorted(selected["task"].unique())
    board = dd.leaderboard_table(selected)
    metrics = selected.drop_duplicates("task").set_index("task")["metric"]
    st.caption(
        "Primary metric per task (" + ", ".join(f"{t}: {metrics[t]}" for t in tasks) + ") with its 95% "
        "bootstrap CI. Rank = 1 + the number of models whose CI lies entirely above (differences "
        "inside the noise tie and share a rank). Suite avg: macro average over higher-is-better "
        "tasks, normal CI from the stored standard errors. Latency: seconds per item, p50 and p95. "
        "Efficiency columns are item-weighted over tasks; memory is the peak."
    )
    order, config = _leaderboard_columns(board, tasks)
    st.dataframe(board, column_order=order, column_config=config, hide_index=True, key="leaderboard")
    st.caption(f"{len(board)} models · {selected['run_id'].nunique()} run(s) · results dir `{s.root}`")

    st.subheader("Pareto fronts")
    y_opts = ["avg", *tasks]
    y = st.selectbox(
        "Accuracy", y_opts, key="pareto_y", format_func=lambda v: "suite average" if v == "avg" else v
    )
    y_title = "suite average" if y == "avg" else f"{y} ({metrics[y]})"
    tabs = st.tabs([dd.PARETO_AXES[x] for x in dd.PARETO_AXES])
    for tab, x in zip(tabs, dd.PARETO_AXES, strict=True):
        with tab:
            pts = dd.pareto_points(board, x, y)
            if pts.empty:
                st.info(f"No model has both {y_title} and {dd.PARETO_AXES[x]}.")
                continue
            st.plotly_chart(charts.pareto_figure(pts, x, y, y_title), key=f"pareto_{x}")
