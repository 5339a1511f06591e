"""A metric is one object: its name, its direction, how items' values make the corpus figure, and
whether it is the task kind's primary metric.

Each task kind lists its `Metric`s once (bench.metrics.kinds for the built-in kinds, a plugin's own
module for the others); the primary metric, the runs rows' `higher_is_better` and each row's
aggregation are read from that list, nowhere else.

Per-item values: a `Mean` metric's value for one item is computed by the task's scorer and stored
under the metric's name in the sample's `scores` (several metrics often come from one scorer, e.g.
gsm8k's strict and flexible matches). A `Ratio` metric's value for one item is `Ratio.item` of the
item's stored numerator and denominator, and its corpus figure is the same function of their sums.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from bench.metrics.stats import Estimate

__all__ = ["MEAN", "Mean", "Metric", "Ratio", "as_metrics", "primary_of"]


@dataclass(frozen=True)
class Mean:
    """The corpus figure is the mean of the items' values, with the interval every view shows
    (Wilson for 0/1 scores, bootstrap otherwise: bench.analysis.metric_interval)."""

    kind = "mean"


MEAN = Mean()


def _as_is(ratio: Any) -> Any:
    return ratio


@dataclass(frozen=True)
class Ratio:
    """A corpus-level figure `of(sum(num) / sum(den))` over the items, not a mean of items' figures
    (lm-eval's bits_per_byte and weighted perplexities). `num` and `den` name per-item values the
    task stores in `scores` (e.g. "nll" and "bytes"); `of` takes a float or an array of ratios
    (default: the ratio itself, e.g. a character error rate)."""

    num: str
    den: str
    of: Callable[[Any], Any] = _as_is
    kind = "ratio"

    def item(self, num: float, den: float) -> float:
        """One item's figure: `of` of its own ratio."""
        if den <= 0:
            raise ValueError(f"{self.den} must be positive, got {den}")
        return float(self.of(num / den))

    def estimate(self, num: np.ndarray, den: np.ndarray, *, seed: int, n_boot: int = 1000) -> Estimate:
        """The corpus figure with a bootstrap CI over items; NaN when there are no items or no units."""
        import numpy as np

        from bench.metrics.stats import Estimate

        n = len(num)
        if n == 0 or den.sum() <= 0:
            return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0)
        value = float(self.of(np.array([num.sum() / den.sum()]))[0])
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_boot, n))
        boot = self.of(num[idx].sum(axis=1) / np.maximum(den[idx].sum(axis=1), 1e-12))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return Estimate(value, float(boot.std(ddof=1)) if n > 1 else 0.0, float(lo), float(hi), n)


@dataclass(frozen=True)
class Metric:
    """One metric of a task kind. `corpus` says how items' values make the reported figure."""

    name: str
    higher_is_better: bool = True
    corpus: Mean | Ratio = MEAN
    primary: bool = False
    description: str = ""

    def inputs(self) -> tuple[str, ...]:
        """The per-item `scores` keys the corpus figure reads."""
        c = self.corpus
        return (c.num, c.den) if isinstance(c, Ratio) else (self.name,)


def primary_of(metrics: Sequence[Metric]) -> Metric:
    """The primary metric of a list: the one flagged `primary`, else the first."""
    flagged = [m for m in metrics if m.primary]
    if len(flagged) > 1:
        raise ValueError(f"more than one primary metric: {', '.join(m.name for m in flagged)}")
    if not metrics:
        raise ValueError("a task kind needs at least one metric")
    return flagged[0] if flagged else metrics[0]


def as_metrics(metrics: Sequence[Metric | str]) -> tuple[Metric, ...]:
    """A task's metrics as objects; a bare name is a mean, higher-is-better metric."""
    return tuple(m if isinstance(m, Metric) else Metric(str(m)) for m in metrics)
