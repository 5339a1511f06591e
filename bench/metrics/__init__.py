"""Metrics: statistics over per-item scores (means, CIs, paired comparisons, latency percentiles)."""

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

__all__ = [
    "AlignedScores",
    "Estimate",
    "PairedResult",
    "align_paired",
    "is_significant",
    "macro_average",
    "paired_comparison",
    "percentiles",
    "summarize",
]
