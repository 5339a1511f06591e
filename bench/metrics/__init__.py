"""Metrics: the `Metric` object (one per metric of a task kind) and statistics over per-item scores
(means, CIs, paired comparisons, latency percentiles)."""

from typing import TYPE_CHECKING, Any

from bench.metrics.metric import MEAN, Mean, Metric, Ratio, primary_of

if TYPE_CHECKING:
    from bench.metrics.stats import (
        AlignedScores,
        Estimate,
        PairedResult,
        align_paired,
        is_significant,
        macro_average,
        paired_comparison,
        percentiles,
        summarize,
    )

_STATS = {
    "AlignedScores",
    "Estimate",
    "PairedResult",
    "align_paired",
    "is_significant",
    "macro_average",
    "paired_comparison",
    "percentiles",
    "summarize",
}


def __getattr__(name: str) -> Any:
    """The statistics load on first use (numpy, scipy): task registration reads `Metric`s only."""
    if name in _STATS:
        from bench.metrics import stats

        return getattr(stats, name)
    raise AttributeError(f"module 'bench.metrics' has no attribute {name!r}")


__all__ = [
    "MEAN",
    "AlignedScores",
    "Estimate",
    "Mean",
    "Metric",
    "PairedResult",
    "Ratio",
    "align_paired",
    "is_significant",
    "macro_average",
    "paired_comparison",
    "percentiles",
    "primary_of",
    "summarize",
]
