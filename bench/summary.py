"""Per (run, model, task) summary rows: each metric with its CI, plus efficiency and cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from bench.metrics.stats import percentiles, summarize


def metric_arrays(samples: pa.Table, metrics: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-item values of each metric, over the items without an error."""
    ok = [e is None for e in samples.column("error").to_pylist()]
    scores = [dict(s) if s is not None else {} for s in samples.column("scores").to_pylist()]
    out = {}
    for m in metrics:
        vals = [s.get(m, np.nan) for s, good in zip(scores, ok, strict=True) if good]
        arr = np.asarray(vals, dtype=np.float64)
        out[m] = arr[~np.isnan(arr)]
    return out


def task_summary(
    samples: pa.Table,
    *,
    base: Mapping[str, Any],
    metrics: tuple[str, ...],
    primary: str,
    seed: int,
    wall_s: float,
    usd_per_hour: float,
    price: tuple[float, float] | None,
) -> list[dict[str, Any]]:
    n = samples.num_rows
    errors = [e for e in samples.column("error").to_pylist() if e is not None]
    latency = np.asarray(
        [x for x in samples.column("latency_s").to_pylist() if x is not None], dtype=np.float64
    )
    pct = percentiles(latency, (50, 90, 99))
    evaluated = samples.column("tokens_evaluated").to_pylist()
    in_toks = samples.column("input_tokens").to_pylist()
    out_toks = samples.column("output_tokens").to_pylist()
    busy = float(latency.sum()) if latency.size else 0.0
    toks = sum(
        (e if e is not None else (i or 0) + (o or 0))
        for e, i, o in zip(evaluated, in_toks, out_toks, strict=True)
    )
    cost = usd_per_hour * wall_s / 3600.0
    if price is not None:
        cost += (sum(i or 0 for i in in_toks) * price[0] + sum(o or 0 for o in out_toks) * price[1]) / 1e6
    arrays = metric_arrays(samples, metrics)
    correct = float(arrays[primary].sum()) if primary in arrays else float("nan")
    common = {
        **base,
        "status": "ok" if n > len(errors) else "error",
        "error": (errors[0] if errors and n == len(errors) else None),
        "n": n,
        "n_errors": len(errors),
        "latency_p50": pct["p50"],
        "latency_p90": pct["p90"],
        "latency_p99": pct["p99"],
        "tokens_per_s": toks / busy if busy > 0 else None,
        "items_per_s": n / wall_s if wall_s > 0 else None,
        "wall_s": wall_s,
        "usd_per_hour": usd_per_hour,
        "cost_usd": cost,
        "usd_per_1k_items": cost / n * 1000 if n else None,
        "usd_per_correct": cost / correct if correct and correct > 0 else None,
    }
    rows = []
    for m in metrics:
        est = summarize(arrays[m], seed=seed)
        rows.append(
            {
                **common,
                "metric": m,
                "primary": m == primary,
                "value": _f(est.mean),
                "stderr": _f(est.stderr),
                "ci_low": _f(est.ci_low),
                "ci_high": _f(est.ci_high),
            }
        )
    return rows


def error_summary(
    base: Mapping[str, Any], metrics: tuple[str, ...], primary: str, error: str
) -> list[dict[str, Any]]:
    """Rows for a (model, task) that could not run at all: the failure is data, not a crash."""
    return [
        {
            **base,
            "status": "error",
            "error": error,
            "metric": m,
            "primary": m == primary,
            "n": 0,
            "n_errors": 0,
        }
        for m in metrics
    ]


def _f(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)
