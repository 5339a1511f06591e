"""bench dashboard: leaderboard, Pareto fronts, "is a small model enough?", drill-down and history.

    streamlit run dashboard/app.py -- --results results/      (or: bench dashboard results/)

Reads the results store only (never writes it, never runs a model). Every number comes from
`bench.dashboard_data`, which is unit-tested without streamlit; this file is layout. Reads are
cached with st.cache_data keyed on a scan of the store's run folders (mtime and entry count), so
a new or resumed run shows up on the next rerun and nothing is read twice otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # `streamlit run` from anywhere: import bench from this checkout
    sys.path.insert(0, str(_REPO))

from bench import dashboard_data as dd  # noqa: E402

NEWEST = "__newest__"
ALL = "__all__"
SAMPLE_COLUMNS = (
    "item_id",
    "prompt",
    "reference",
    "prediction",
    "raw_output",
    "extracted",
    "correct",
    "score",
    "confidence",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "error",
)


# ---------------------------------------------------------------------- store access (cached)


def results_dir() -> Path:
    """--results DIR after `--` on the streamlit command line, else $BENCH_RESULTS_DIR, else ./results."""
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument("--results")
    args, _ = ap.parse_known_args(sys.argv[1:])
    return Path(args.results or os.environ.get("BENCH_RESULTS_DIR") or "results")


@st.cache_data(show_spinner="Reading the runs tables…", max_entries=4)
def _cached_runs(root: str, key: str, _scan: tuple[dd.RunDir, ...]) -> pd.DataFrame:
    del key  # the cache key: changes whenever a run folder does
    return dd.load_primary_runs(root, _scan)


@st.cache_data(show_spinner="Reading per-item rows…", max_entries=64)
def _cached_samples(
    root: str,
    key: str,
    run_ids: tuple[str, ...],
    columns: tuple[str, ...],
    models: tuple[str, ...] | None,
    tasks: tuple[str, ...] | None,
    _runs: pd.DataFrame,
) -> pd.DataFrame:
    del key
    return dd.read_samples(root, _runs, run_ids, columns, models=models, tasks=tasks)


@st.cache_data(max_entries=16)
def _cached_manifests(root: str, key: str, run_ids: tuple[str, ...], _runs: pd.DataFrame) -> pd.DataFrame:
    del key
    return dd.read_manifests(root, _runs, run_ids)


class Store:
    """The results store as this rerun sees it: the primary runs rows and the cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        scan = dd.scan_store(root)
        self.key = dd.signature_key(scan)
        self.runs = _cached_runs(str(root), self.key, scan)

    def samples(
        self,
        run_ids: Sequence[str],
        columns: Sequence[str] = SAMPLE_COLUMNS,
        models: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        return _cached_samples(
            str(self.root),
            self.key,
            tuple(run_ids),
            tuple(columns),
            None if models is None else tuple(models),
            None if tasks is None else tuple(tasks),
            self.runs,
        )

    def manifests(self, run_ids: Sequence[str]) -> pd.DataFrame:
        return _cached_manifests(str(self.root), self.key, tuple(run_ids), self.runs)


# ---------------------------------------------------------------------- shared widgets


def _fmt_params(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "?"
    p = float(p)
    return f"{p / 1e9:.1f}B" if p >= 1e9 else f"{p / 1e6:.0f}M"


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
            parts.append(f"**{m}** {_fmt_params(r['model_params'])} {r['quant'] or ''} ({r['backend']})")
    return " · ".join(parts)


# ---------------------------------------------------------------------- leaderboard + Pareto


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


def pareto_figure(pts: pd.DataFrame, x: str, y: str, y_title: str) -> go.Figure:
    """Entries with 95% CI error bars, the Pareto front as a staircase line, details on hover."""
    fig = go.Figure()
    front = pts[pts["on_front"]]
    fig.add_trace(
        go.Scatter(
            x=front[x],
            y=front[y],
            mode="lines",
            line={"shape": "hv", "dash": "dash", "color": "#888"},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    custom = np.column_stack(
        [
            pts["params"].map(_fmt_params),
            pts["quant"].fillna(""),
            pts["backend"].fillna(""),
            pts["hardware"].fillna(""),
            pts["latency_p50"],
            pts["usd_per_1k_items"],
            pts[f"{y} lo"],
            pts[f"{y} hi"],
        ]
    )
    for on, name, symbol in ((True, "on the front", "circle"), (False, "dominated", "circle-open")):
        sel = pts["on_front"] == on
        fig.add_trace(
            go.Scatter(
                x=pts.loc[sel, x],
                y=pts.loc[sel, y],
                mode="markers+text",
                text=pts.loc[sel, "label"],
                textposition="top center",
                marker={"size": 11, "symbol": symbol},
                error_y={
                    "type": "data",
                    "array": (pts.loc[sel, f"{y} hi"] - pts.loc[sel, y]).clip(lower=0),
                    "arrayminus": (pts.loc[sel, y] - pts.loc[sel, f"{y} lo"]).clip(lower=0),
                },
                customdata=custom[sel.to_numpy()],
                name=name,
                hovertemplate=(
                    "<b>%{text}</b><br>accuracy %{y:.3f} [%{customdata[6]:.3f}, %{customdata[7]:.3f}]"
                    "<br>params %{customdata[0]} %{customdata[1]}<br>backend %{customdata[2]} on "
                    "%{customdata[3]}<br>latency p50 %{customdata[4]:.3f} s<br>$ per 1k items "
                    "%{customdata[5]:.4f}<extra></extra>"
                ),
            )
        )
    positive = bool((pts[x] > 0).all())
    fig.update_layout(
        xaxis_title=dd.PARETO_AXES[x] + (" (log)" if positive and x != "latency_p50" else ""),
        yaxis_title=y_title,
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    if positive and x != "latency_p50":
        fig.update_xaxes(type="log")
    return fig


def page_leaderboard(s: Store) -> None:
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
            st.plotly_chart(pareto_figure(pts, x, y, y_title), key=f"pareto_{x}")


# ---------------------------------------------------------------------- is a small model enough?


def page_small_enough(s: Store) -> None:
    st.header("Is a small model enough?")
    suite = pick_suite(s.runs, "se_suite")
    reset_on_change("se", (suite,), ["se_run"])
    in_suite = s.runs[s.runs["suite"] == suite]
    multi = in_suite.groupby("run_id")["model"].nunique()
    run_id = pick_run(
        in_suite[in_suite["run_id"].isin(multi[multi >= 2].index)], "se_run", newest_option=False
    )
    if run_id is None:
        st.info("This suite has no run with two or more models.")
        return
    alpha = st.sidebar.number_input("alpha", 0.001, 0.5, 0.05, 0.01, key="se_alpha")
    reset_on_change("cascade", (suite, run_id), ["cascade_task", "cascade_slm", "cascade_llm"])
    prim = in_suite[(in_suite["run_id"] == run_id) & (in_suite["status"] == "ok")]
    scores = s.samples([run_id], ("item_id", "score", "correct", "error"))
    st.caption(
        "Per task: the best model, and the smallest and the cheapest model whose accuracy is not "
        f"significantly below it (paired test on the items both answered: McNemar's exact test for "
        f"0/1 scores, else a paired t-test; 'not below' = p ≥ {alpha:g} or a difference ≥ 0)."
    )
    table = dd.small_model_table(prim, scores, alpha=float(alpha))
    st.dataframe(
        table,
        hide_index=True,
        key="small_table",
        column_config={
            "smallest params": st.column_config.NumberColumn(format="compact"),
            "cheapest $/1k": st.column_config.NumberColumn(format="%.4f"),
        },
    )
    with st.expander("Every model against the best, per task"):
        for task, g in prim.groupby("task", sort=True):
            st.markdown(f"**{task}**")
            st.dataframe(
                dd.good_enough(g, scores[scores["task"] == task], alpha=float(alpha)),
                hide_index=True,
                key=f"ge_{task}",
            )

    st.subheader("Cascade: the SLM answers, the LLM takes what it is unsure of")
    tasks = sorted(prim["task"].unique())
    task = st.selectbox("Task", tasks, key="cascade_task")
    reset_on_change("cascade_task", (suite, run_id, task), ["cascade_slm", "cascade_llm"])
    rows = prim[prim["task"] == task].sort_values(["model_params", "usd_per_1k_items"], na_position="last")
    models = rows["model"].tolist()
    if len(models) < 2:
        st.info(f"Only one model has results on {task}.")
        return
    c1, c2 = st.columns(2)
    slm = c1.selectbox("Small model (answers first)", models, index=0, key="cascade_slm")
    others = rows[rows["model"] != slm]
    best_other = str(others.loc[others["value"].idxmax(), "model"])
    llm = c2.selectbox(
        "Large model (takes deferred items)", models, index=models.index(best_other), key="cascade_llm"
    )
    st.markdown(model_caption(rows, [slm, llm]))
    per_item = rows.set_index("model").apply(lambda r: r["cost_usd"] / r["n"] if r["n"] else math.nan, axis=1)
    items = s.samples([run_id], ("item_id", "score", "correct", "confidence", "error"), [slm, llm], [task])
    slm_rows, llm_rows = items[items["model"] == slm], items[items["model"] == llm]
    if slm_rows["confidence"].isna().all():
        st.info(f"{slm} has no stored confidence on {task} (generated answers): every item is deferred.")
    thresholds = np.round(np.linspace(0.0, 1.0, 21), 2)
    curve = dd.cascade_curve(slm_rows, llm_rows, float(per_item[slm]), float(per_item[llm]), thresholds)
    if curve.empty or curve["n"].iloc[0] == 0:
        st.warning("The two models share no scored item on this task.")
        return
    alone = dd.cascade_curve(slm_rows, llm_rows, float(per_item[slm]), 0.0, [-1.0])  # SLM on every item
    llm_alone_acc = dd.cascade_curve(slm_rows, llm_rows, 0.0, float(per_item[llm]), [math.inf])[
        "accuracy"
    ].iloc[0]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=curve["usd_per_1k_items"],
            y=curve["accuracy"],
            mode="lines+markers",
            name="cascade",
            customdata=curve[["threshold", "deferral_rate"]].to_numpy(),
            hovertemplate="threshold %{customdata[0]:.2f}<br>deferred %{customdata[1]:.0%}"
            "<br>accuracy %{y:.3f}<br>$ per 1k %{x:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[alone["usd_per_1k_items"].iloc[0], float(per_item[llm]) * 1000],
            y=[alone["accuracy"].iloc[0], llm_alone_acc],
            mode="markers+text",
            text=[f"{slm} alone", f"{llm} alone"],
            textposition=["bottom right", "top left"],
            marker={"size": 13, "symbol": "diamond"},
            name="each model alone",
        )
    )
    fig.update_layout(
        xaxis_title="$ per 1k items",
        yaxis_title=f"accuracy on {int(curve['n'].iloc[0])} shared items",
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    st.plotly_chart(fig, key="cascade_chart")
    st.caption(
        "At threshold t the small model's answer is kept where its confidence (probability of its "
        "chosen answer) is ≥ t, otherwise the large model's is used. Cost = small model on every "
        "item + large model on the deferred ones, each at its run's cost per item (cost_usd / n)."
    )
    st.dataframe(curve, hide_index=True, key="cascade_table")


# ---------------------------------------------------------------------- drill-down

PAIR_MODES = {
    "a_wrong_b_right": "A wrong, B right",
    "a_right_b_wrong": "A right, B wrong",
    "disagree": "A and B disagree",
    "all": "all items",
}


def _known(v: Any) -> bool:
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


def page_drilldown(s: Store) -> None:
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


# ---------------------------------------------------------------------- history


def page_history(s: Store) -> None:
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
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    fig.add_trace(
        go.Scatter(
            x=hc["created_at"],
            y=hc["value"],
            mode="lines+markers",
            name="accuracy",
            error_y={
                "type": "data",
                "array": (hc["ci_high"] - hc["value"]).clip(lower=0),
                "arrayminus": (hc["value"] - hc["ci_low"]).clip(lower=0),
            },
            customdata=hc[["run_id", "git_sha", "bench_version", "hardware"]].to_numpy(),
            hovertemplate="%{y:.3f}<br>run %{customdata[0]}<br>git %{customdata[1]}<br>bench "
            "%{customdata[2]} on %{customdata[3]}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    ch = hc[hc["changed"]]
    fig.add_trace(
        go.Scatter(
            x=ch["created_at"],
            y=ch["value"],
            mode="markers",
            name=f"significant change vs previous run (p < {alpha:g})",
            marker={
                "size": 16,
                "symbol": np.where(ch["diff"] > 0, "triangle-up", "triangle-down"),
                "color": "red",
            },
            customdata=ch[["p_value", "diff"]].to_numpy(),
            hovertemplate="change %{customdata[1]:+.3f}, p = %{customdata[0]:.2g}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for col, dash in (("latency_p50", None), ("latency_p95", "dot")):
        fig.add_trace(
            go.Scatter(
                x=hc["created_at"],
                y=hc[col],
                mode="lines+markers",
                name=col.replace("_", " "),
                line={"dash": dash, "color": "#7f7f7f"},
                marker={"size": 4},
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(title_text="latency s", row=2, col=1)
    times = pd.to_datetime(hc["created_at"], utc=True)
    if len(hc) and times.max() - times.min() < pd.Timedelta(hours=1):
        # one run (or a burst): plotly would zoom to milliseconds; show the day around it instead
        mid = times.min() + (times.max() - times.min()) / 2
        fig.update_xaxes(range=[mid - pd.Timedelta(hours=12), mid + pd.Timedelta(hours=12)])
    fig.update_layout(
        height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.06}
    )
    st.plotly_chart(fig, key="history_chart")
    st.caption(
        f"{model} on {task}: {len(hc)} run{'s' if len(hc) != 1 else ''}, "
        f"{int(hc['changed'].sum())} significant change(s): a paired "
        "test against the previous run on the items both scored (McNemar's exact test for 0/1 scores). "
        f"Each comparison has a {alpha:g} false-alarm rate, so over many nights expect a few by chance."
    )
    cols = [
        "run_id", "created_at", "value", "ci_low", "ci_high", "n", "latency_p50", "latency_p95",
        "diff", "p_value", "changed", "git_sha", "bench_version", "hardware", "suite",
    ]  # fmt: skip
    st.dataframe(hc[cols].iloc[::-1], hide_index=True, key="history_table")


# ---------------------------------------------------------------------- main

PAGES = {
    "Leaderboard": page_leaderboard,
    "Is a small model enough?": page_small_enough,
    "Drill-down": page_drilldown,
    "History": page_history,
}


SLUGS = ("leaderboard", "small-enough", "drill-down", "history")


def main() -> None:
    st.set_page_config(page_title="bench dashboard", layout="wide")
    root = results_dir()
    st.sidebar.title("bench")
    asked = st.query_params.get("page", SLUGS[0])
    start = SLUGS.index(asked) if asked in SLUGS else 0
    page = st.sidebar.radio("Page", list(PAGES), index=start, key="page")
    st.query_params["page"] = SLUGS[list(PAGES).index(page)]  # a link to this page: ?page=history
    if not root.is_dir():
        st.error(f"Results directory `{root}` does not exist.")
        return
    s = Store(root)
    if s.runs.empty:
        st.info(f"No runs under `{root}` yet: `bench run suites/smoke.yaml -o {root}`.")
        return
    n = s.runs["run_id"].nunique()
    st.sidebar.caption(f"`{root}` · {n} run{'s' if n != 1 else ''}")
    PAGES[page](s)


main()
