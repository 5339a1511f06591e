"""Leaderboard tables read from the results store. No engine imports, no statistics of its own:
every number comes from the stored runs rows through bench.analysis, as in every other view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench import store
from bench.analysis import averaged_tasks, efficiency, macro_from_rows


def runs_frame(root: Path, run_ids: list[str] | None = None) -> pd.DataFrame:
    return store.runs_dataset(root, run_ids).to_table().to_pandas()


def primary_rows(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    return runs[runs["primary"].fillna(False).astype(bool)]


def leaderboard(root: Path, run_id: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per model: each task's stored primary row (value with its interval), the macro
    average with its interval (`mean`, a bench.analysis.Interval, or None when a task failed),
    and the efficiency columns. Models sorted by the macro average.

    The macro average is over the tasks whose primary metric is a score (higher is better);
    perplexities and other lower-is-better figures are shown but not averaged in. It is computed
    from the stored rows alone, exactly as the dashboard does, so both show the same interval.
    """
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
    averaged = averaged_tasks(runs)
    rows: list[dict[str, Any]] = []
    for model, g in runs.groupby("model", sort=False):
        row: dict[str, Any] = {"model": model}
        for _, r in g.iterrows():
            row[r["task"]] = r
        row["mean"] = macro_from_rows(g, averaged)
        row.update(efficiency(g))
        rows.append(row)
    rows.sort(key=lambda r: -(r["mean"].mean if r["mean"] is not None else -1.0))
    return pd.DataFrame(rows), tasks
