"""A load sweep as the Load page shows it: the stored level rows of one run (bench.load.records),
where each model leaves its SLO, and where two models swap places by goodput.

Every figure is a stored column of the level rows (written by bench.load.metrics); this module
only orders the levels and reads the stored `slo_met` and `goodput_per_s` in that order.

Load order: levels of one family are ordered by the load they offer. A sweep can mix two
families (closed-loop concurrencies and open-loop rates), which do not order against each other,
so each is judged on its own: `synchronous` (one in flight) comes first in both and `max` (all at
once) last.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.dashboard_data.reading import RunDir
from bench.load import records

LEVEL_PREFIX = "load-levels-"
# the x axes a sweep is plotted against (stored columns of the level rows)
LOAD_AXES = {
    "achieved_concurrency": "achieved concurrency (mean requests in flight)",
    "requests_per_s": "achieved request rate (requests/s)",
}
FAMILY_WORDS = {"concurrency": "by concurrency", "rate": "by request rate"}


def sweep_runs(root: str | Path, scan: Sequence[RunDir]) -> pd.DataFrame:
    """The run folders holding load sweeps (a `load-levels-*` file), newest first: run_id, suite,
    created_at, `_dir` (relative to `root`), and from run.json the models' parameter counts and
    the SLO's attainment (the share of a level's requests that must meet it)."""
    root = Path(root)
    rows = []
    for d in scan:
        folder = root / d.rel
        try:
            with os.scandir(folder) as it:
                if not any(e.name.startswith(LEVEL_PREFIX) and e.name.endswith(".parquet") for e in it):
                    continue
        except OSError:
            continue
        try:
            manifest = json.loads((folder / "run.json").read_text())
        except (OSError, ValueError):
            manifest = {}
        config = manifest.get("suite_config") or {}
        models = config.get("models") or []
        slo = (config.get("load") or {}).get("slo") or {}
        rows.append(
            {
                "run_id": manifest.get("run_id", folder.name),
                "suite": manifest.get("suite"),
                "created_at": pd.to_datetime(manifest.get("created_at"), utc=True, errors="coerce"),
                "_dir": d.rel,
                "params": {m.get("name"): m.get("params") for m in models if m.get("params")},
                "attainment": slo.get("attainment"),
            }
        )
    df = pd.DataFrame(rows, columns=["run_id", "suite", "created_at", "_dir", "params", "attainment"])
    return df.sort_values(["created_at", "run_id"], ascending=False, kind="stable").reset_index(drop=True)


def read_sweep(root: str | Path, rel: str) -> pd.DataFrame:
    """The stored level rows of one run folder, in sweep order (bench.load.records.read_levels)."""
    return records.read_levels(Path(root) / rel)


def default_axis(levels: pd.DataFrame) -> str:
    """Achieved concurrency for a closed-loop sweep (a saturated server's request rate stays flat
    while its queue grows), the achieved request rate when the sweep sends at rates."""
    kinds = set(levels["level_kind"])
    return "requests_per_s" if "rate" in kinds and "concurrency" not in kinds else "achieved_concurrency"


def families(levels: pd.DataFrame) -> dict[str, list[str]]:
    """Level labels in order of offered load, per family (module docstring)."""
    by_kind = levels.drop_duplicates("level").set_index("level")
    kind, value = by_kind["level_kind"], by_kind["level_value"]

    def ordered(k: str) -> list[str]:
        return sorted(kind.index[kind == k], key=lambda lv: float(value[lv]))

    sync = [lv for lv in kind.index if kind[lv] == "synchronous"]
    top = [lv for lv in kind.index if kind[lv] == "max"]
    conc, rate = ordered("concurrency"), ordered("rate")
    out: dict[str, list[str]] = {}
    if conc or not rate:
        out["concurrency"] = sync + conc + top
    if rate:
        out["rate"] = sync + rate + top
    return {f: labels for f, labels in out.items() if labels}


@dataclass(frozen=True)
class SloExit:
    """Where one model leaves its SLO in one family: `exit_level` is the first level (in load
    order) whose stored `slo_met` is False, `last_met` the level before it when that one met it."""

    model: str
    family: str
    status: str  # "no SLO" | "met throughout" | "missed from the start" | "leaves"
    exit_level: str | None
    last_met: str | None
    row: dict[str, Any] | None  # the exit level's stored row

    def words(self) -> str:
        fam = FAMILY_WORDS[self.family]
        if self.status == "no SLO":
            return f"**{self.model}**: the sweep names no SLO, so no level can miss one."
        if self.status == "met throughout":
            return f"**{self.model}** meets its SLO at every level ({fam})."
        assert self.row is not None
        r = self.row
        at = (
            f"{r['slo_share']:.0%} of its requests within it at {r['requests_per_s']:.2f} req/s, "
            f"{r['achieved_concurrency']:.1f} in flight"
        )
        if self.status == "missed from the start":
            return f"**{self.model}** misses its SLO already at its lowest level, {self.exit_level}: {at}."
        return f"**{self.model}** leaves its SLO at {self.exit_level}: {at} ({fam}; it met it at {self.last_met})."


def slo_exits(levels: pd.DataFrame) -> list[SloExit]:
    """Each model's SLO exit, per family (one task's levels)."""
    out = []
    for family, labels in families(levels).items():
        for model, g in levels.groupby("model", sort=False):
            rows = g.set_index("level")
            mine = [lv for lv in labels if lv in rows.index]
            if not mine:
                continue
            met = [rows.at[lv, "slo_met"] for lv in mine]
            if all(m is None or (isinstance(m, float) and math.isnan(m)) for m in met):
                out.append(SloExit(str(model), family, "no SLO", None, None, None))
                continue
            missed = [k for k, m in enumerate(met) if m is False or m == 0]
            if not missed:
                out.append(SloExit(str(model), family, "met throughout", None, None, None))
                continue
            k = missed[0]
            row = {"level": mine[k], **{str(c): v for c, v in rows.loc[mine[k]].items()}}
            status = "missed from the start" if k == 0 else "leaves"
            out.append(SloExit(str(model), family, status, mine[k], mine[k - 1] if k else None, row))
    return out


@dataclass(frozen=True)
class Crossover:
    """Two models' ranking by stored goodput flips between two adjacent shared levels."""

    family: str
    below: str  # the last level at which `leader_before` had the higher goodput
    at: str  # the first level at which `leader_after` has it
    leader_before: str
    leader_after: str
    goodput_before: tuple[float, float]  # (leader_before's, the other's) at `below`
    goodput_after: tuple[float, float]  # (leader_after's, the other's) at `at`


def crossovers(levels: pd.DataFrame, a: str, b: str) -> list[Crossover]:
    """Where the ranking of models `a` and `b` by goodput changes, per family, over the levels
    both have a goodput for; equal goodputs rank neither first and change nothing."""
    ga = levels[levels["model"] == a].set_index("level")["goodput_per_s"]
    gb = levels[levels["model"] == b].set_index("level")["goodput_per_s"]
    out = []
    for family, labels in families(levels).items():
        shared = [lv for lv in labels if lv in ga.index and lv in gb.index]
        shared = [lv for lv in shared if pd.notna(ga[lv]) and pd.notna(gb[lv]) and ga[lv] != gb[lv]]
        for lo, hi in itertools.pairwise(shared):
            before, after = (a if ga[lo] > gb[lo] else b), (a if ga[hi] > gb[hi] else b)
            if before == after:
                continue
            g = {a: ga, b: gb}
            other_before, other_after = (b if before == a else a), (b if after == a else a)
            out.append(
                Crossover(
                    family,
                    lo,
                    hi,
                    before,
                    after,
                    (float(g[before][lo]), float(g[other_before][lo])),
                    (float(g[after][hi]), float(g[other_after][hi])),
                )
            )
    return out


def crossover_words(levels: pd.DataFrame, a: str, b: str, params: dict[str, Any] | None = None) -> str:
    """The crossover of two models in a sentence (or that there is none in this sweep)."""
    name = {m: _labelled(m, (params or {}).get(m)) for m in (a, b)}
    found = crossovers(levels, a, b)
    if not found:
        both = levels[levels["model"].isin([a, b])].pivot_table(
            index="level", columns="model", values="goodput_per_s"
        )
        both = both.dropna()
        if both.empty:
            return f"{name[a]} and {name[b]}: no level where both have a goodput, so no crossover."
        lead = a if (both[a] >= both[b]).all() else b if (both[b] >= both[a]).all() else None
        if lead is None:
            return f"{name[a]} and {name[b]}: no crossover between adjacent levels of one family."
        return f"No crossover: {name[lead]} has the higher goodput at every level both ran."
    parts = []
    for c in found:
        parts.append(
            f"{FAMILY_WORDS[c.family]}, {name[c.leader_before]} has the higher goodput up to "
            f"{c.below} ({c.goodput_before[0]:.2f} vs {c.goodput_before[1]:.2f} req/s); from {c.at} "
            f"on, {name[c.leader_after]} does ({c.goodput_after[0]:.2f} vs {c.goodput_after[1]:.2f} req/s)"
        )
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _labelled(model: str, params: Any) -> str:
    from bench.dashboard_data.leaderboard import DEFAULT_SIZE_THRESHOLD
    from bench.fmt import format_params

    if not params:
        return f"**{model}**"
    size = "SLM" if float(params) < DEFAULT_SIZE_THRESHOLD else "LLM"
    return f"**{model}** ({format_params(params)}, {size})"


def slo_targets(levels: pd.DataFrame) -> dict[str, float]:
    """The SLO the sweep stored (e.g. 'ttft_s<=0.35,e2e_s<=1'), as {target: seconds}."""
    text = next((s for s in levels["slo"] if isinstance(s, str) and s), "")
    out = {}
    for part in text.split(","):
        key, _, value = part.partition("<=")
        if value:
            out[key.strip()] = float(value)
    return out
