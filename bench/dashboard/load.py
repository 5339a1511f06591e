"""Load page: one `bench load` sweep: latency percentiles and goodput against achieved load per
model, where each model leaves its SLO, the crossover of two models by goodput, and the accuracy
and cost of the answers served at each level. Every number is a stored level row's."""

from __future__ import annotations

import itertools

import pandas as pd
import streamlit as st

from bench import dashboard_data as dd
from bench.dashboard import load_charts
from bench.dashboard.reads import Store
from bench.dashboard.widgets import reset_on_change
from bench.dashboard_data import load as dl

TABLE = {
    # stored column -> (label, format)
    "model": ("model", None),
    "level": ("level", None),
    "requests_per_s": ("req/s", "%.2f"),
    "achieved_concurrency": ("in flight", "%.2f"),
    "ttft_p50": ("TTFT p50 s", "%.3f"),
    "ttft_p90": ("TTFT p90 s", "%.3f"),
    "ttft_p99": ("TTFT p99 s", "%.3f"),
    "itl_p50": ("ITL p50 s", "%.4f"),
    "itl_p90": ("ITL p90 s", "%.4f"),
    "itl_p99": ("ITL p99 s", "%.4f"),
    "tpot_p50": ("TPOT p50 s", "%.4f"),
    "e2e_p50": ("e2e p50 s", "%.3f"),
    "e2e_p90": ("e2e p90 s", "%.3f"),
    "e2e_p99": ("e2e p99 s", "%.3f"),
    "output_tokens_per_s": ("out tok/s", "%.1f"),
    "error_rate": ("errors", "%.2f"),
    "goodput_per_s": ("goodput/s", "%.2f"),
    "slo_share": ("within SLO", "%.2f"),
    "slo_met": ("SLO met", None),
    "accuracy": ("accuracy", "%.3f"),
    "accuracy_low": ("acc 95% low", "%.3f"),
    "accuracy_high": ("acc 95% high", "%.3f"),
    "n_scored": ("scored", None),
    "accuracy_changed": ("acc changed vs first level", None),
    "p_adjusted": ("p (BH)", "%.3g"),
    "usd_per_1k_requests": ("$ / 1k requests", "%.5f"),
    "usd_per_correct": ("$ / correct", "%.6f"),
}


@st.cache_data(show_spinner="Looking for load sweeps…", max_entries=4)
def _sweeps(root: str, key: str) -> pd.DataFrame:
    del key  # the store's scan signature: changes whenever a run folder does
    return dl.sweep_runs(root, dd.scan_store(root))


@st.cache_data(max_entries=16)
def _levels(root: str, key: str, rel: str) -> pd.DataFrame:
    del key
    return dl.read_sweep(root, rel)


def render(s: Store) -> None:
    st.header("Load")
    sweeps = _sweeps(str(s.root), s.key)
    if sweeps.empty:
        st.info(f"No load sweeps under `{s.root}` yet: `bench load SUITE -o {s.root}` runs one.")
        return
    labels = {r: f"{dd.run_label(r)} · {su}" for r, su in zip(sweeps["run_id"], sweeps["suite"], strict=True)}
    run_id = st.sidebar.selectbox("Sweep", list(labels), format_func=labels.__getitem__, key="ld_run")
    run = sweeps.set_index("run_id").loc[run_id]
    reset_on_change("ld", (run_id,), ["ld_task", "ld_axis"])
    levels = _levels(str(s.root), s.key, str(run["_dir"]))
    tasks = list(dict.fromkeys(levels["task"]))
    task = st.sidebar.selectbox("Task", tasks, key="ld_task") if len(tasks) > 1 else tasks[0]
    lv = levels[levels["task"] == task]
    axes = list(dl.LOAD_AXES)
    x = st.sidebar.radio(
        "Load axis",
        axes,
        index=axes.index(dl.default_axis(lv)),
        format_func=dl.LOAD_AXES.__getitem__,
        key="ld_axis",
    )
    models = list(dict.fromkeys(lv["model"]))
    slo = dl.slo_targets(lv)
    attain = run["attainment"]
    first = lv.iloc[0]
    slo_text = (
        ", ".join(f"{k} ≤ {v:g} s" for k, v in slo.items())
        + (f", met by at least {attain:.0%} of a level's requests" if pd.notna(attain) else "")
        if slo
        else "none named"
    )
    st.caption(
        f"Suite **{run['suite']}** · run `{run_id}` · task **{task}** ({first['metric']}) · "
        f"backend {', '.join(dict.fromkeys(lv['backend']))} · SLO: {slo_text} · "
        f"{int(first['n_requests'])} requests per level, the same items at every level."
    )

    st.subheader("Where each model leaves its SLO")
    exits = dl.slo_exits(lv)
    st.markdown("\n".join(f"- {e.words()}" for e in exits))
    crossings: list[dl.Crossover] = []
    if len(models) >= 2:
        st.subheader("Crossover")
        params = run["params"] if isinstance(run["params"], dict) else {}
        lines = []
        for a, b in itertools.combinations(models, 2):
            crossings += dl.crossovers(lv, a, b)
            lines.append(f"- {dl.crossover_words(lv, a, b, params)}")
        st.markdown("\n".join(lines))
        st.caption("The ranking compares the stored goodput at the same level (the same offered load).")
    changed = lv[lv["accuracy_changed"].fillna(False).astype(bool)]
    for r in changed.itertuples():
        st.warning(
            f"{r.model}: accuracy at {r.level} differs from {r.vs_level} beyond noise "
            f"({r.accuracy_diff:+.3f}, BH-adjusted p = {r.p_adjusted:.3g}): batching changed the answers."
        )

    st.plotly_chart(load_charts.latency_figure(lv, x, slo), key="load_latency")
    left, right = st.columns(2)
    with left:
        st.markdown("**Goodput**: requests/s within the SLO (dotted: all answered requests/s)")
        st.plotly_chart(load_charts.goodput_figure(lv, x, exits, crossings), key="load_goodput")
    with right:
        st.markdown(f"**Accuracy** of the answers served at each level ({first['metric']}, 95% interval)")
        st.plotly_chart(load_charts.accuracy_figure(lv, x, str(first["metric"])), key="load_accuracy")

    st.subheader("Per level")
    cc = st.column_config
    config = {c: cc.NumberColumn(lab, format=f) if f else cc.Column(lab) for c, (lab, f) in TABLE.items()}
    st.dataframe(lv[list(TABLE)], column_config=config, hide_index=True, key="load_levels")
    st.caption(
        "Goodput: requests/s that succeeded and met every SLO target (the inter-token target on each "
        "request's TPOT). Accuracy: the task's metric over the answers served at that level, Wilson or "
        "bootstrap interval; 'changed' is a paired test against the first level on the same items. "
        "Cost: the level's wall time at the machine's $/hour plus token prices. From "
        f"`{s.root / str(run['_dir'])}/load-levels-*.parquet`."
    )
    for note in sorted({n for n in lv["note"] if isinstance(n, str) and n}):
        st.caption(f"note: {note}")
