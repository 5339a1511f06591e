"""bench's analysis layer: pure functions over stored rows and per-item scores (no I/O), called
by every view (the runs rows written by bench/summary.py, the terminal leaderboard and
`bench report`, `bench compare`, nightly and the dashboard), so a number means one thing
everywhere.

Stable signatures (other modules depend on them; keep them when extending):

Intervals (`intervals`)
- `metric_interval(scores, *, seed=1234, n_boot=1000, alpha=0.05) -> Interval`: Wilson for 0/1
  scores, seeded percentile bootstrap otherwise. The runs rows store its bounds and `method`.
- `wilson(successes, n, alpha=0.05) -> (low, high)`.
- `macro_interval(parts: Sequence[TaskStat], alpha=0.05) -> Interval`: stratified Wilson when
  every task is Wilson, else the normal interval of the mean of task means.
- `Interval(mean, stderr, ci_low, ci_high, n, method)`, `TaskStat(mean, stderr, n, method,
  ci_low, ci_high)`, `z_value(alpha)`, `is_binary(scores)`.

Pairing and many comparisons (`pairing`)
- `paired(a, b, *, seed=1234, n_boot=1000, alpha=0.05) -> PairedResult`: McNemar exact + Newcombe
  interval for 0/1 scores, paired t + paired bootstrap otherwise. diff = mean(a - b).
- `adjust_pvalues(p_values) -> ndarray`: Benjamini-Hochberg, NaN passes through untested.
- `verdict(diff, p_adjusted, alpha, higher_is_better=True) -> "better" | "worse" | "same"`.
- `newcombe_paired(n11, n10, n01, n00, alpha=0.05) -> (low, high)`.

Cost (`cost`)
- `cost_usd(wall_s, usd_per_hour, input_tokens=0, output_tokens=0, price=None) -> ndarray`
  (element-wise; price = ($ per million input tokens, $ per million output tokens)).
- `per_item(cost, n)`, `per_1k_items(cost, n)`, `per_correct(cost, correct)`.

Leaderboard rows (`leaderboard`), Pareto (`pareto`), cascade (`cascade`)
- `task_stat(row) -> TaskStat`, `averaged_tasks(primary_rows) -> list[str]`,
  `macro_from_rows(rows, averaged, alpha=0.05) -> Interval | None`,
  `efficiency(rows) -> dict`, `weighted_mean(values, weights)`, `first_known(values)`.
- `pareto_front([(name, accuracy, cost), ...]) -> set[str]`.
- `cascade(slm_scores, llm_scores, slm_confidence, slm_cost_per_item, llm_cost_per_item,
  thresholds) -> list[dict]`.
"""

from __future__ import annotations

from bench.analysis.cascade import cascade
from bench.analysis.cost import cost_usd, per_1k_items, per_correct, per_item
from bench.analysis.intervals import (
    BOOTSTRAP,
    NORMAL,
    RATIO_BOOTSTRAP,
    STRATIFIED_WILSON,
    WILSON,
    Interval,
    TaskStat,
    is_binary,
    macro_interval,
    metric_interval,
    wilson,
    z_value,
)
from bench.analysis.leaderboard import (
    averaged_tasks,
    efficiency,
    first_known,
    macro_from_rows,
    task_stat,
    weighted_mean,
)
from bench.analysis.pairing import adjust_pvalues, newcombe_paired, paired, verdict
from bench.analysis.pareto import pareto_front

__all__ = [
    "BOOTSTRAP",
    "NORMAL",
    "RATIO_BOOTSTRAP",
    "STRATIFIED_WILSON",
    "WILSON",
    "Interval",
    "TaskStat",
    "adjust_pvalues",
    "averaged_tasks",
    "cascade",
    "cost_usd",
    "efficiency",
    "first_known",
    "is_binary",
    "macro_from_rows",
    "macro_interval",
    "metric_interval",
    "newcombe_paired",
    "paired",
    "pareto_front",
    "per_1k_items",
    "per_correct",
    "per_item",
    "task_stat",
    "verdict",
    "weighted_mean",
    "wilson",
    "z_value",
]
