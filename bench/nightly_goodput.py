"""Nightly's goodput verdicts: when tonight's run and its baseline both hold load sweeps (`bench
load`), goodput at every level they share (same model, task and level label, so the same offered
load) is judged like the other metrics, as aspect `goodput_per_s@<level>`.

Goodput (requests/s that met the SLO, bench.load.metrics) is one number per level with no per-item
pairing of its own, so it is judged by a tolerance band, as peak memory is: regressed when tonight's
is below (1 - tol) x the baseline's, improved above (1 + tol) x, and in both cases only when the
difference is larger than one request over the longer of the two levels (one request crossing the
SLO line on a short level is not a change). Goodput under different SLOs does not compare: such a
pair stays unchanged and says why. Sweeps store no machine calibration, so load on a shared machine
is not accounted for here (the detail says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pandas as pd

from bench import store
from bench.load import records
from bench.nightly import Finding

ASPECT = "goodput_per_s"


def aspect(level: str) -> str:
    return f"{ASPECT}@{level}"


def sweep_levels(root: Path, run_id: str) -> pd.DataFrame:
    """A run's stored load-level rows (empty when the run holds no sweep)."""
    return records.read_levels(Path(store.find_run(root, run_id)["path"]))


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def judge_level(before: Mapping[str, Any], after: Mapping[str, Any], band: float) -> Finding:
    """One level's goodput tonight (`after`) against the baseline's (`before`), both stored rows."""
    key = (str(after["model"]), str(after["task"]))
    name = aspect(str(after["level"]))
    b, a = _num(before["goodput_per_s"]), _num(after["goodput_per_s"])
    n = int(after["n_requests"])
    if before["slo"] != after["slo"]:
        return Finding(
            *key, name, "unchanged", b, a, None, n=n,
            detail=f"not compared: SLO {after['slo']} tonight, {before['slo']} in the baseline",
        )  # fmt: skip
    assert a is not None and b is not None  # a named SLO means a goodput
    durations = [d for d in (_num(before["duration_s"]), _num(after["duration_s"])) if d]
    floor = 1.0 / max(durations) if durations else 0.0
    change = a / b - 1.0 if b > 0 else None
    verdict = "unchanged"
    if abs(a - b) > floor:
        if b == 0 or (change is not None and change > band):
            verdict = "improved"
        elif change is not None and change < -band:
            verdict = "regressed"
    share = f"{_num(before['slo_share']) or 0:.0%} -> {_num(after['slo_share']) or 0:.0%} of requests"
    return Finding(
        *key,
        name,
        verdict,
        b,
        a,
        change,
        n=n,
        detail=(
            f"level {after['level']}: {b:.3g} -> {a:.3g} req/s within SLO {after['slo']} ({share}); "
            f"tolerance ±{band:.0%} and more than one request over the level ({floor:.3g} req/s); "
            "load sweeps store no machine calibration"
        ),
    )


def _rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], df.to_dict("records"))


def goodput_findings(root: Path, run_id: str, baseline_run_id: str | None, band: float) -> list[Finding]:
    """Tonight's goodput per level against the baseline's; nothing unless tonight holds a sweep
    with an SLO, and, with a baseline, unless the baseline holds one too."""
    now = sweep_levels(root, run_id)
    now = now[now["slo"].notna()]
    if now.empty:
        return []
    if baseline_run_id is None:
        return [
            Finding(r["model"], r["task"], aspect(r["level"]), "new", None, _num(r["goodput_per_s"]), None)
            for r in _rows(now)
        ]
    before = sweep_levels(root, baseline_run_id)
    before = before[before["slo"].notna()]
    if before.empty:
        return []
    prev = {(r["model"], r["task"], r["level"]): r for r in _rows(before)}
    out = []
    for r in _rows(now):
        p = prev.pop((r["model"], r["task"], r["level"]), None)
        if p is None:
            out.append(
                Finding(
                    r["model"],
                    r["task"],
                    aspect(r["level"]),
                    "new",
                    None,
                    _num(r["goodput_per_s"]),
                    None,
                    detail="level not in the baseline's sweep",
                )
            )
            continue
        out.append(judge_level(p, r, band))
    for (model, task, level), p in prev.items():
        out.append(
            Finding(
                model,
                task,
                aspect(level),
                "missing",
                _num(p["goodput_per_s"]),
                None,
                None,
                detail="level not swept tonight",
            )
        )
    return out
