"""The leaderboard: filters, one result per (model, hardware, task), CI-aware ranks, the suite
average and the Pareto fronts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis import averaged_tasks, efficiency, first_known, macro_from_rows, pareto_front, z_value

# x axes of the Pareto plots: column of the leaderboard table -> axis title.
PARETO_AXES: dict[str, str] = {
    "usd_per_1k_items": "$ per 1k items",
    "latency_p50": "latency p50 (s per item)",
    "peak_rss_mb": "peak memory (MB)",
    "params": "parameters",
}

DEFAULT_SIZE_THRESHOLD = 8e9
Z95 = z_value(0.05)


def size_class(params: pd.Series, threshold: float = DEFAULT_SIZE_THRESHOLD) -> pd.Series:
    """'SLM' below the parameter threshold, 'LLM' at or above it, 'unknown' without a count
    (hosted APIs do not say)."""
    p = pd.to_numeric(params, errors="coerce")
    out = pd.Series("unknown", index=params.index, dtype=object)
    out[p < threshold] = "SLM"
    out[p >= threshold] = "LLM"
    return out


def run_label(run_id: str) -> str:
    """'2026-11-27 11:42 · <run_id>' for a bench run id, the id itself otherwise."""
    try:
        t = pd.to_datetime(run_id[:16], format="%Y%m%dT%H%M%SZ")
    except (ValueError, TypeError):
        return run_id
    return f"{t:%Y-%m-%d %H:%M} · {run_id}"


def default_suite(runs: pd.DataFrame) -> str | None:
    """The suite of the newest run."""
    if runs.empty:
        return None
    newest = runs.sort_values(["run_time", "run_id"]).iloc[-1]
    return str(newest["suite"])


@dataclass(frozen=True)
class Filters:
    """What the sidebar selects. Empty tuples mean 'all'. `run_id` None means the newest result
    of every (model, hardware, task) within the suite and dates."""

    suite: str | None = None
    run_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    tasks: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    size_classes: tuple[str, ...] = ()
    size_threshold: float = DEFAULT_SIZE_THRESHOLD


def select_results(runs: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """The primary rows the leaderboard shows: filtered, one per (model, hardware, task)."""
    df = runs
    if f.suite is not None:
        df = df[df["suite"] == f.suite]
    if f.run_id is not None:
        df = df[df["run_id"] == f.run_id]
    if f.date_from is not None:
        df = df[df["run_time"].dt.date >= f.date_from]
    if f.date_to is not None:
        df = df[df["run_time"].dt.date <= f.date_to]
    if f.tasks:
        df = df[df["task"].isin(f.tasks)]
    if f.backends:
        df = df[df["backend"].isin(f.backends)]
    if f.hardware:
        df = df[df["hardware"].isin(f.hardware)]
    df = df.assign(size_class=size_class(df["model_params"], f.size_threshold))
    if f.size_classes:
        df = df[df["size_class"].isin(f.size_classes)]
    df = df.sort_values(["run_time", "run_id"]).drop_duplicates(["model", "hardware", "task"], keep="last")
    return df.reset_index(drop=True)


def tie_ranks(
    mean: Sequence[float] | pd.Series,
    ci_low: Sequence[float] | pd.Series,
    ci_high: Sequence[float] | pd.Series,
    higher_is_better: bool = True,
) -> pd.Series:
    """Rank = 1 + the number of entries significantly better, so differences inside the noise tie.

    "Significantly better" is the conservative non-overlap rule on 95% CIs (j's lower bound above
    i's upper bound), which needs only the stored intervals. Entries without a mean get no rank.
    """
    m = np.asarray(mean, dtype=float)
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    lo = np.where(np.isnan(lo), m, lo)
    hi = np.where(np.isnan(hi), m, hi)
    ranks: list[Any] = []
    for i in range(m.size):
        if np.isnan(m[i]):
            ranks.append(pd.NA)
            continue
        ok = ~np.isnan(m)
        better = (lo > hi[i]) if higher_is_better else (hi < lo[i])
        ranks.append(1 + int(np.count_nonzero(better & ok)))
    return pd.Series(ranks, dtype="Int64")


def leaderboard_table(selected: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, hardware): every task's primary value with its CI, the suite average,
    the efficiency columns and a CI-aware rank; sorted by rank then average.

    The suite average is the macro average over the tasks whose metric is higher-is-better, only
    for entries with an ok result on all of them. Its interval is bench.analysis.macro_from_rows
    on the stored rows (stratified Wilson for 0/1 tasks, else normal from the stored standard
    errors; one task: that task's interval), the same function the terminal leaderboard calls,
    so the page needs no per-item rows and shows the terminal's numbers.
    Columns per task T: `T`, `T lo`, `T hi`, `T 95% CI` (text); the average is `avg`.
    """
    if selected.empty:
        return pd.DataFrame(columns=["rank", "model", "label", "avg", "avg lo", "avg hi"])
    tasks = list(dict.fromkeys(selected.sort_values("task")["task"]))
    averaged = averaged_tasks(selected)
    rows: list[dict[str, Any]] = []
    for (model, hardware), g in selected.groupby(["model", "hardware"], sort=True, dropna=False):
        row: dict[str, Any] = {"model": model, "hardware": hardware}
        ok = g[g["status"] == "ok"].set_index("task")
        for t in tasks:
            r = ok.loc[t] if t in ok.index else None
            v = float(r["value"]) if r is not None and pd.notna(r["value"]) else math.nan
            lo = float(r["ci_low"]) if r is not None and pd.notna(r["ci_low"]) else math.nan
            hi = float(r["ci_high"]) if r is not None and pd.notna(r["ci_high"]) else math.nan
            row[t], row[f"{t} lo"], row[f"{t} hi"] = v, lo, hi
            row[f"{t} 95% CI"] = f"[{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else ""
        mean = macro_from_rows(g, averaged)
        avg, lo, hi = (mean.mean, mean.ci_low, mean.ci_high) if mean is not None else (math.nan,) * 3
        row["avg"], row["avg lo"], row["avg hi"] = avg, lo, hi
        row["avg 95% CI"] = f"[{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else ""
        eff = efficiency(g)
        row["params"] = eff.pop("params")
        row["size_class"] = first_known(g["size_class"]) if "size_class" in g else None
        row.update(eff)
        row["run_id"] = str(g.sort_values("run_time")["run_id"].iloc[-1])
        row["runs"] = int(g["run_id"].nunique())
        row["date"] = g["run_time"].max()
        rows.append(row)
    board = pd.DataFrame(rows)
    dup = board["model"].duplicated(keep=False)
    board["label"] = np.where(dup, board["model"] + " @ " + board["hardware"].astype(str), board["model"])
    board.insert(0, "rank", tie_ranks(board["avg"], board["avg lo"], board["avg hi"]))
    board = board.sort_values(["rank", "avg", "label"], ascending=[True, False, True], na_position="last")
    return board.reset_index(drop=True)


def pareto_points(board: pd.DataFrame, x: str, y: str = "avg") -> pd.DataFrame:
    """Leaderboard entries with both coordinates, `on_front` marking those that no other entry
    beats on accuracy `y` (higher) and `x` (lower) at once; sorted by x for drawing the front."""
    cols = ["label", "model", x, y, f"{y} lo", f"{y} hi"]
    extra = [
        c
        for c in ("params", "quant", "backend", "hardware", "latency_p50", "usd_per_1k_items")
        if c not in cols
    ]
    pts = board[[c for c in cols + extra if c in board.columns]].copy()
    pts = pts[pd.to_numeric(pts[x], errors="coerce").notna() & pd.to_numeric(pts[y], errors="coerce").notna()]
    front = pareto_front([(str(r["label"]), float(r[y]), float(r[x])) for _, r in pts.iterrows()])
    pts["on_front"] = pts["label"].isin(front)
    pts = pts.sort_values([x, y], ascending=[True, False]).reset_index(drop=True)
    return pts
