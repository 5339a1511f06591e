"""Per (run, model, task) summary rows: each metric with its CI, plus efficiency and cost.

Which metrics, their direction (`higher_is_better`), the primary one and how items make each figure
(a mean, or a ratio of sums) come from the task's `Metric` objects (bench.metrics.metric)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from bench.analysis import RATIO_BOOTSTRAP, Interval, cost_usd, metric_interval, per_1k_items, per_correct
from bench.metrics.metric import Metric, Ratio, as_metrics
from bench.metrics.stats import Estimate, percentiles


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
    task: Any,
    base: Mapping[str, Any],
    seed: int,
    usd_per_hour: float,
    price: tuple[float, float] | None,
) -> list[dict[str, Any]]:
    metrics = as_metrics(task.metrics)
    primary: str = task.primary_metric
    n = samples.num_rows
    errors = [e for e in samples.column("error").to_pylist() if e is not None]
    latency = np.asarray(
        [x for x in samples.column("latency_s").to_pylist() if x is not None], dtype=np.float64
    )
    pct = percentiles(latency, (50, 90, 95, 99))
    ttft = np.asarray([x for x in samples.column("ttft_s").to_pylist() if x is not None], dtype=np.float64)
    ttft_pct = percentiles(ttft, (50, 90))
    evaluated = samples.column("tokens_evaluated").to_pylist()
    in_toks = samples.column("input_tokens").to_pylist()
    out_toks = samples.column("output_tokens").to_pylist()
    busy = float(latency.sum()) if latency.size else 0.0
    wall_s = _sum(samples, "wall_s")  # each row holds its share of its batch's wall time
    energy = samples.column("energy_j").to_pylist()
    energy_j = float(sum(energy)) if energy and all(e is not None for e in energy) else None
    prompt_tps, decode_tps = _phase_rates(samples)
    toks = sum(
        (e if e is not None else (i or 0) + (o or 0))
        for e, i, o in zip(evaluated, in_toks, out_toks, strict=True)
    )
    cost = float(
        cost_usd(wall_s, usd_per_hour, sum(i or 0 for i in in_toks), sum(o or 0 for o in out_toks), price)
    )
    keys = {m.name for m in metrics} | {k for m in metrics for k in m.inputs()}
    arrays = metric_arrays(samples, tuple(sorted(keys)))
    ratios = {m.name for m in metrics if isinstance(m.corpus, Ratio)}
    correct = float(arrays[primary].sum()) if primary in arrays and primary not in ratios else float("nan")
    common = {
        **base,
        "status": "ok" if n > len(errors) else "error",
        "error": (errors[0] if errors and n == len(errors) else None),
        "n": n,
        "n_errors": len(errors),
        "latency_p50": pct["p50"],
        "latency_p90": pct["p90"],
        "latency_p95": pct["p95"],
        "latency_p99": pct["p99"],
        "ttft_p50": ttft_pct["p50"],
        "ttft_p90": ttft_pct["p90"],
        "tokens_per_s": toks / busy if busy > 0 else None,
        "prompt_tokens_per_s": prompt_tps,
        "decode_tokens_per_s": decode_tps,
        "energy_j": energy_j,
        "items_per_s": n / wall_s if wall_s > 0 else None,
        "wall_s": wall_s,
        "usd_per_hour": usd_per_hour,
        "cost_usd": cost,
        "usd_per_1k_items": per_1k_items(cost, n),
        "usd_per_correct": per_correct(cost, correct),
        **truncation(samples),
    }
    rows = []
    for metric in metrics:
        m = metric.name
        if isinstance(metric.corpus, Ratio):
            c = metric.corpus
            est: Estimate | Interval = c.estimate(arrays[c.num], arrays[c.den], seed=seed)
            method = RATIO_BOOTSTRAP
        elif arrays[m].size == 0 and m != primary:
            continue  # a metric this run's method does not produce (acc_norm when asked generatively)
        else:
            # Wilson for 0/1 scores, bootstrap otherwise: the one interval every view shows
            est = iv = metric_interval(arrays[m], seed=seed)
            method = iv.method
        rows.append(
            {
                **common,
                "metric": m,
                "primary": m == primary,
                "higher_is_better": metric.higher_is_better,
                "value": _f(est.mean),
                "stderr": _f(est.stderr),
                "ci_low": _f(est.ci_low),
                "ci_high": _f(est.ci_high),
                "ci_method": method if est.n else None,
                "n_scored": est.n,
            }
        )
    return rows


def error_summary(base: Mapping[str, Any], metric: Metric, error: str) -> list[dict[str, Any]]:
    """The row of a (model, task) that could not run at all: the failure is data, not a crash.
    It names the task's primary metric with its direction, as a row that ran would."""
    return [
        {
            **base,
            "status": "error",
            "error": error,
            "metric": metric.name,
            "primary": True,
            "higher_is_better": metric.higher_is_better,
            "n": 0,
            "n_errors": 0,
        }
    ]


def truncation(samples: pa.Table) -> dict[str, Any]:
    """How many generated outputs stopped at the token limit rather than finishing: a cut
    derivation scores as a wrong answer, so the share belongs next to the accuracy. Null for
    log-likelihood tasks (no finish reasons) and for samples stored before finish reasons were."""
    rows = samples.select(["finish_reason", "max_tokens", "error"]).to_pylist()
    finished = [r for r in rows if r["error"] is None and r["finish_reason"] is not None]
    if not finished:
        return {"n_truncated": None, "truncated_share": None, "max_tokens": None}
    cut = sum(1 for r in finished if r["finish_reason"] == "length")
    limits = [r["max_tokens"] for r in finished if r["max_tokens"] is not None]
    return {
        "n_truncated": cut,
        "truncated_share": cut / len(finished),
        "max_tokens": max(limits) if limits else None,
    }


def _sum(samples: pa.Table, col: str) -> float:
    return float(sum(x for x in samples.column(col).to_pylist() if x is not None))


def _phase_rates(samples: pa.Table) -> tuple[float | None, float | None]:
    """Prompt-processing and decoding speed, where the backend tells the phases apart: for
    generation, prompt tokens over TTFT and later tokens over the time after it; for
    log-likelihood scoring (all prompt), tokens evaluated over latency."""
    prompt_toks = prompt_time = dec_toks = dec_time = 0.0
    cols = ["input_tokens", "output_tokens", "tokens_evaluated", "ttft_s", "latency_s", "error"]
    for r in samples.select(cols).to_pylist():
        if r["error"] is not None or r["latency_s"] is None:
            continue
        if r["ttft_s"] is not None and r["output_tokens"]:
            prompt_toks += r["input_tokens"] or 0
            prompt_time += r["ttft_s"]
            if r["output_tokens"] > 1:
                dec_toks += r["output_tokens"] - 1
                dec_time += r["latency_s"] - r["ttft_s"]
        elif r["tokens_evaluated"] is not None:
            prompt_toks += r["tokens_evaluated"]
            prompt_time += r["latency_s"]
    return (
        prompt_toks / prompt_time if prompt_time > 0 else None,
        dec_toks / dec_time if dec_time > 0 else None,
    )


def _f(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)
