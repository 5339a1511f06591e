"""Leaderboard tables and comparisons, read from the results store. No engine imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import store
from bench.metrics.stats import macro_average


def runs_frame(root: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    return store.runs_dataset(root, run_ids).to_table().to_pandas()


def primary_rows(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    return runs[runs["primary"].fillna(False).astype(bool)]


def leaderboard(root: Path, run_id: str, seed: int = 1234) -> tuple[pd.DataFrame, list[str]]:
    """One row per model: each task's primary metric with CI, the macro average with its CI,
    and the efficiency columns. Models sorted by the macro average."""
    runs = primary_rows(runs_frame(root, [run_id]))
    if runs.empty:
        return pd.DataFrame(), []
    found = list(dict.fromkeys(runs["task"]))
    try:  # the suite's own task order
        cfg = store.find_run(root, run_id).get("suite_config", {})
        order = [t["name"] for t in cfg.get("tasks", [])]
    except Exception:
        order = []
    tasks = [t for t in order if t in found] + [t for t in found if t not in order]
    samples = (
        store.samples_dataset(root, [run_id])
        .to_table(columns=["model", "task", "score", "error"])
        .to_pandas()
    )
    # The macro average is over the tasks whose primary metric is a score (higher is better);
    # perplexities and other lower-is-better figures are shown but not averaged in.
    averaged = {t for t, hib in zip(runs["task"], runs["higher_is_better"], strict=True) if hib is not False}
    rows: list[dict[str, Any]] = []
    for model, g in runs.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model}
        per_task: dict[str, np.ndarray] = {}
        for _, r in g.iterrows():
            row[r["task"]] = r
            s = samples[
                (samples["model"] == model) & (samples["task"] == r["task"]) & samples["error"].isna()
            ]
            if r["status"] == "ok" and len(s) and r["task"] in averaged:
                per_task[r["task"]] = s["score"].dropna().to_numpy(dtype=float)
        complete = bool(averaged) and set(per_task) == averaged
        row["mean"] = macro_average(per_task, seed=seed) if complete else None
        row["params"] = _first(g, "model_params")
        row["quant"] = _first(g, "quant")
        row["backend"] = _first(g, "backend")
        row["latency_p50"] = _wmean(g, "latency_p50")
        row["tokens_per_s"] = _wmean(g, "tokens_per_s")
        row["peak_rss_mb"] = g["peak_rss_mb"].max() if "peak_rss_mb" in g else None
        row["usd_per_1k_items"] = _wmean(g, "usd_per_1k_items")
        row["errors"] = int(g["n_errors"].fillna(0).sum()) + int((g["status"] != "ok").sum())
        row["error"] = next((e for e in g["error"] if isinstance(e, str) and e), None)
        rows.append(row)
    rows.sort(key=lambda r: -(r["mean"].mean if r["mean"] is not None else -1.0))
    return pd.DataFrame(rows), tasks


def _first(g: pd.DataFrame, col: str) -> Any:
    vals = [v for v in g[col] if v is not None and not (isinstance(v, float) and np.isnan(v))]
    return vals[0] if vals else None


def _wmean(g: pd.DataFrame, col: str) -> float | None:
    """Mean over tasks weighted by item count."""
    sub = g[[col, "n"]].dropna()
    if sub.empty or sub["n"].sum() == 0:
        return None
    return float((sub[col] * sub["n"]).sum() / sub["n"].sum())


def pareto_front(points: list[tuple[str, float, float]]) -> set[str]:
    """Names not dominated: no other point has higher-or-equal accuracy at lower-or-equal cost,
    with one of the two strictly better. Points are (name, accuracy, cost)."""
    front = set()
    for name, acc, cost in points:
        dominated = any((a >= acc and c <= cost) and (a > acc or c < cost) for n, a, c in points if n != name)
        if not dominated:
            front.add(name)
    return front
