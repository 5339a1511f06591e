"""Paired comparisons of two models on the items both answered: per task the difference of the
primary metric, its interval and a p-value (bench.analysis.paired: McNemar's exact test and
Newcombe's interval for 0/1 scores, a paired t-test and a paired bootstrap otherwise).

Comparing several tasks (or several model pairs) tests many hypotheses at once, so the verdicts
use Benjamini-Hochberg adjusted p-values over every comparison of the call; the raw p-value is
kept beside the adjusted one. Read from the results store only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds

from bench import store
from bench.analysis import adjust_pvalues, paired, verdict
from bench.errors import BenchError


@dataclass(frozen=True)
class Side:
    run_id: str
    model: str

    def label(self, other: Side) -> str:
        return self.model if self.run_id == other.run_id else f"{self.model}@{self.run_id[:16]}"


@dataclass(frozen=True)
class TaskComparison:
    task: str
    metric: str
    higher_is_better: bool
    n: int
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float  # Benjamini-Hochberg over every comparison of the call; verdicts use it
    test: str
    n01: int | None
    n10: int | None
    verdict: str  # "A better", "B better" or "no significant difference"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_VERDICTS = {"better": "A better", "worse": "B better", "same": "no significant difference"}


def _primary(root: Path, run_id: str) -> pd.DataFrame:
    runs = store.runs_dataset(root, [run_id]).to_table(
        filter=ds.field("primary"), columns=["task", "model", "metric", "higher_is_better"]
    )
    return runs.to_pandas()


def _scores(root: Path, side: Side, task: str, metric: str) -> pd.DataFrame:
    t = store.samples_dataset(root, [side.run_id]).to_table(
        filter=(ds.field("model") == side.model) & (ds.field("task") == task),
        columns=["item_id", "scores", "error"],
    )
    df = t.to_pandas()
    df = df[df["error"].isna()]
    df["score"] = [dict(s).get(metric) if s is not None else None for s in df["scores"]]
    return df.dropna(subset=["score"])[["item_id", "score"]]


def _compare_raw(
    root: Path, a: Side, b: Side, tasks: list[str] | None, alpha: float, seed: int
) -> list[TaskComparison]:
    """Per shared task the paired result with the raw p-value (p_adjusted filled in later)."""
    pa_, pb_ = _primary(root, a.run_id), _primary(root, b.run_id)
    ta = pa_[pa_["model"] == a.model]
    tb = pb_[pb_["model"] == b.model]
    if ta.empty:
        raise BenchError(f"run {a.run_id} has no results for model {a.model!r}")
    if tb.empty:
        raise BenchError(f"run {b.run_id} has no results for model {b.model!r}")
    shared = [t for t in ta["task"] if t in set(tb["task"]) and (not tasks or t in tasks)]
    if not shared:
        raise BenchError("the two sides share no task")
    out = []
    for task in shared:
        row = ta[ta["task"] == task].iloc[0]
        metric = str(row["metric"])
        hib = row["higher_is_better"] is not False
        sa, sb = _scores(root, a, task, metric), _scores(root, b, task, metric)
        m = sa.merge(sb, on="item_id", suffixes=("_a", "_b"))
        if m.empty:
            continue
        r = paired(m["score_a"].to_numpy(float), m["score_b"].to_numpy(float), seed=seed, alpha=alpha)
        out.append(
            TaskComparison(
                task=task,
                metric=metric,
                higher_is_better=hib,
                n=r.n,
                a=float(m["score_a"].mean()),
                b=float(m["score_b"].mean()),
                diff=r.diff,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                p_value=r.p_value,
                p_adjusted=r.p_value,
                test=r.test,
                n01=r.n01,
                n10=r.n10,
                verdict="",
            )
        )
    return out


def adjust(rows: Sequence[TaskComparison], alpha: float) -> list[TaskComparison]:
    """The same comparisons with Benjamini-Hochberg p-values over all of them, and verdicts on those."""
    adj = adjust_pvalues([r.p_value for r in rows])
    return [
        replace(
            r, p_adjusted=float(p), verdict=_VERDICTS[verdict(r.diff, float(p), alpha, r.higher_is_better)]
        )
        for r, p in zip(rows, adj, strict=True)
    ]


def compare_many(
    root: Path,
    pairs: Sequence[tuple[Side, Side]],
    *,
    tasks: list[str] | None = None,
    alpha: float = 0.05,
    seed: int = 1234,
) -> list[list[TaskComparison]]:
    """Every pair's per-task comparisons, adjusted together: one family of tests per call."""
    raw = [_compare_raw(root, a, b, tasks, alpha, seed) for a, b in pairs]
    flat = adjust([r for rows in raw for r in rows], alpha)
    out, start = [], 0
    for rows in raw:
        out.append(flat[start : start + len(rows)])
        start += len(rows)
    return out


def compare(
    root: Path, a: Side, b: Side, *, tasks: list[str] | None = None, alpha: float = 0.05, seed: int = 1234
) -> list[TaskComparison]:
    """One pair of models, every shared task (or those named), adjusted over those tasks."""
    return compare_many(root, [(a, b)], tasks=tasks, alpha=alpha, seed=seed)[0]
