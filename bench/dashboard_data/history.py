"""A model's results on a task across runs, and where a paired test finds a change (the tests
of all runs shown are one family: Benjamini-Hochberg adjusted, as nightly does)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

from bench.analysis import adjust_pvalues, paired
from bench.dashboard_data.reading import item_credit


def history_table(
    runs: pd.DataFrame, model: str, task: str, manifests: pd.DataFrame | None = None
) -> pd.DataFrame:
    """A model's primary result on a task in every run, oldest first, with the run's provenance."""
    h = runs[(runs["model"] == model) & (runs["task"] == task)].copy()
    if manifests is not None and not manifests.empty:
        h = h.merge(manifests[["run_id", "created_at"]], on="run_id", how="left")
        h["created_at"] = h["created_at"].fillna(h["run_time"])
    else:
        h["created_at"] = h["run_time"]
    keep = [
        "run_id",
        "created_at",
        "suite",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "latency_p50",
        "latency_p95",
        "git_sha",
        "bench_version",
        "hardware",
        "status",
    ]
    return h.sort_values(["created_at", "run_id"])[keep].reset_index(drop=True)


def history_changes(
    history: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """`history` with, per run, the paired comparison against the previous run on shared items.

    `scores`: run_id, item_id, score (or correct). Adds prev_run_id, n_shared, diff (this run
    minus the previous), p_value, p_adjusted (Benjamini-Hochberg over the runs shown) and
    `changed` (p_adjusted < alpha). The first run and runs sharing no item with their predecessor
    have no test.
    """
    sc = scores.assign(score=item_credit(scores)).dropna(subset=["score"])
    per_run = {r: g.drop_duplicates("item_id").set_index("item_id")["score"] for r, g in sc.groupby("run_id")}
    out = history.copy()
    prev_ids: list[Any] = [None]
    n_sh: list[int] = [0]
    diffs: list[float] = [math.nan]
    pvals: list[float] = [math.nan]
    ids = list(out["run_id"])
    for prev, cur in itertools.pairwise(ids):
        a = per_run.get(cur, pd.Series(dtype=float))
        b = per_run.get(prev, pd.Series(dtype=float))
        shared = a.index.intersection(b.index)
        prev_ids.append(prev)
        n_sh.append(len(shared))
        if len(shared) == 0:
            diffs.append(math.nan)
            pvals.append(math.nan)
            continue
        r = paired(a.loc[shared].to_numpy(float), b.loc[shared].to_numpy(float), seed=seed)
        diffs.append(r.diff)
        pvals.append(r.p_value)
    out["prev_run_id"] = prev_ids[: len(out)]
    out["n_shared"] = n_sh[: len(out)]
    out["diff"] = diffs[: len(out)]
    out["p_value"] = pvals[: len(out)]
    out["p_adjusted"] = adjust_pvalues(out["p_value"].to_numpy(float)) if len(out) else []
    out["changed"] = out["p_adjusted"] < alpha
    return out
