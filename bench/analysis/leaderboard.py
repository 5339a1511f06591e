"""Leaderboard rows from stored runs rows: per-task facts, the macro average with its interval,
and the efficiency columns, shared by the terminal, nightly's report and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.intervals import Interval, TaskStat, macro_interval


def _known(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v is not pd.NA


def _float(v: Any) -> float:
    return float(v) if _known(v) else math.nan


def task_stat(row: Mapping[Any, Any]) -> TaskStat:
    """A stored runs row as the macro average sees it. Rows written before `n_scored` and
    `ci_method` existed count n - n_errors items and have no method (normal interval)."""
    scored: Any = row.get("n_scored")
    n = int(scored) if _known(scored) else int(row.get("n") or 0) - int(row.get("n_errors") or 0)
    method = row.get("ci_method")
    return TaskStat(
        mean=_float(row.get("value")),
        stderr=_float(row.get("stderr")),
        n=n,
        method=str(method) if _known(method) else None,
        ci_low=_float(row.get("ci_low")),
        ci_high=_float(row.get("ci_high")),
    )


def averaged_tasks(primary: pd.DataFrame) -> list[str]:
    """Tasks in the macro average: those whose primary metric is higher-is-better (perplexity and
    other lower-is-better figures are shown but not averaged), sorted by name."""
    if primary.empty:
        return []
    hib = [True if pd.isna(h) else bool(h) for h in primary["higher_is_better"]]
    return sorted({str(t) for t, h in zip(primary["task"], hib, strict=True) if h})


def macro_from_rows(rows: pd.DataFrame, averaged: Sequence[str], alpha: float = 0.05) -> Interval | None:
    """The macro average of one model (or model x hardware) from its primary rows, or None when
    an averaged task has no ok result (an average over fewer tasks would not be comparable)."""
    if not averaged:
        return None
    ok = rows[(rows["status"] == "ok") & rows["value"].notna()].drop_duplicates("task", keep="last")
    by_task = {str(r["task"]): r for r in ok.to_dict("records")}
    if any(t not in by_task for t in averaged):
        return None
    return macro_interval([task_stat(by_task[t]) for t in sorted(averaged)], alpha)


def weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    """Mean over tasks weighted by item count; NaN when nothing is known."""
    ok = values.notna() & weights.notna()
    w = weights[ok].astype(float)
    if not ok.any() or w.sum() == 0:
        return math.nan
    return float((values[ok].astype(float) * w).sum() / w.sum())


def first_known(values: pd.Series) -> Any:
    v = values.dropna()
    return v.iloc[0] if len(v) else None


def efficiency(g: pd.DataFrame) -> dict[str, Any]:
    """One model's efficiency columns over its tasks: latency and throughput weighted by items,
    the peak memory, $ per 1k items (weighted), total cost, items and errors."""

    def col(name: str) -> pd.Series:
        return g[name] if name in g else pd.Series(np.nan, index=g.index)

    n = col("n")
    peak = col("peak_rss_mb")
    return {
        "params": first_known(col("model_params")),
        "quant": first_known(col("quant")),
        "backend": first_known(col("backend")),
        "latency_p50": weighted_mean(col("latency_p50"), n),
        "latency_p95": weighted_mean(col("latency_p95"), n),
        "tokens_per_s": weighted_mean(col("tokens_per_s"), n),
        "peak_rss_mb": float(peak.max()) if peak.notna().any() else math.nan,
        "usd_per_1k_items": weighted_mean(col("usd_per_1k_items"), n),
        "cost_usd": float(pd.to_numeric(col("cost_usd"), errors="coerce").sum(min_count=1)),
        "items": int(n.fillna(0).sum()),
        "errors": int(col("n_errors").fillna(0).sum()) + int((g["status"] != "ok").sum()),
        "error": next((e for e in col("error") if isinstance(e, str) and e), None),
    }
