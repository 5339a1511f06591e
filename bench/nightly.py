"""Nightly verdicts: this run against the previous comparable one, per model x task.

Accuracy: a paired test on the shared items (McNemar's exact test for 0/1 scores, a paired t-test
otherwise, from bench.analysis) decides improved / regressed / unchanged at `alpha` on the
Benjamini-Hochberg adjusted p-value over all of the night's accuracy tests. Latency p50 and cost per 1k items:
a Wilcoxon test on the shared items (BH-adjusted over the night's tests of that aspect) plus a
tolerance band widened by the machine calibration (below); peak memory: a tolerance band.

Why a calibration: on a shared machine another process can slow a whole run, and pairing items
does not remove load that changes over time (a run slowed by a package install made the next,
clean run look faster at p=0.0005). Each worker times a fixed CPU workload (measure.calibration_s)
before, every 30 s during and after each task, in every run. Tonight's median over the baseline's
is the machine ratio `d`. How much of it reaches a model is unknown (a model on every core feels
all of it, an API or a sleeping fake none), so a change counts only if it passes the tolerance for
any share between none and all: regressed when after/before > (1 + tol) x max(1, d^1.5), improved
when after/before < (1 - tol) x min(1, d^1.5) (the exponent: the short calibration under-reads what a
sustained engine feels, see LOAD_EXPONENT). Load can then hide a change, never invent one.
bench.nightly_report writes the verdict as JSON, Markdown and a self-contained HTML report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bench import store
from bench.analysis import cost_usd
from bench.compare import Side, compare


@dataclass(frozen=True)
class Tolerances:
    latency: float = 0.10  # +10% p50 latency is a regression
    memory: float = 0.10
    cost: float = 0.10
    alpha: float = 0.05
    goodput: float = 0.10  # load sweeps: -10% goodput at a level is a regression (bench.nightly_goodput)


@dataclass
class Finding:
    model: str
    task: str
    aspect: str  # accuracy | latency_p50 | peak_rss_mb | usd_per_1k_items
    verdict: str  # improved | regressed | unchanged | new | missing
    before: float | None
    after: float | None
    change: float | None  # accuracy: difference (after - before); others: relative change
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    n: int | None = None
    detail: str = ""
    calibration: float | None = None  # latency, cost: tonight's calibration median / the baseline's
    # Benjamini-Hochberg over tonight's tests of the same aspect (bench.analysis); verdicts use it
    p_adjusted: float | None = None


@dataclass
class Verdict:
    suite: str
    run_id: str
    baseline_run_id: str | None
    baseline_reason: str
    created_at: str
    tolerances: Tolerances
    findings: list[Finding] = field(default_factory=list)
    # seconds of the calibration workload, median over each run's tasks, and their ratio
    calibration: dict[str, float | None] = field(default_factory=dict)

    @property
    def regressed(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regressed"]

    @property
    def improved(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "improved"]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = "regressed" if self.regressed else "ok"
        d["n_regressed"] = len(self.regressed)
        d["n_improved"] = len(self.improved)
        return d


def find_baseline(root: Path, run: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The newest earlier run of the same suite hash; else of the same suite name (then only the
    shared models, tasks and items are compared)."""
    key = (run.get("created_at", ""), run["run_id"])
    earlier = [
        r
        for r in store.list_runs(root)  # newest first
        if (r.get("created_at", ""), r.get("run_id", "")) < key and r.get("suite") == run["suite"]
    ]
    same = [r for r in earlier if r.get("suite_hash") == run.get("suite_hash")]
    if same:
        return same[0], "same suite hash"
    if earlier:
        return earlier[0], "same suite name, different configuration: shared models, tasks and items only"
    return None, "no earlier run of this suite"


def primary_runs(root: Path, run_id: str) -> pd.DataFrame:
    df = store.runs_dataset(root, [run_id]).to_table().to_pandas()
    return df[df["primary"].fillna(False).astype(bool)]


def _rel(before: Any, after: Any) -> float | None:
    if before is None or after is None or pd.isna(before) or pd.isna(after) or before == 0:
        return None
    return float(after) / float(before) - 1.0


def judge(root: Path, run_id: str, tol: Tolerances | None = None, *, baseline: str | None = None) -> Verdict:
    tol = tol or Tolerances()
    run = store.find_run(root, run_id)
    if baseline is not None:
        base: dict[str, Any] | None = store.find_run(root, baseline)
        reason = "chosen with --baseline"
    else:
        base, reason = find_baseline(root, run)
    v = Verdict(
        run["suite"],
        run["run_id"],
        base["run_id"] if base else None,
        reason,
        datetime.now(UTC).isoformat(),
        tol,
    )
    now = primary_runs(root, run["run_id"])
    v.calibration = _run_calibration(now, None)
    if base is None:
        for _, r in now.iterrows():
            v.findings.append(Finding(r["model"], r["task"], "accuracy", "new", None, r["value"], None))
        v.findings += _goodput(root, v, tol)
        return v
    before = primary_runs(root, base["run_id"])
    v.calibration = _run_calibration(now, before)
    prev = {(r["model"], r["task"]): r for _, r in before.iterrows()}
    for _, r in now.iterrows():
        key = (r["model"], r["task"])
        if key not in prev:
            v.findings.append(Finding(*key, "accuracy", "new", None, r["value"], None))
            continue
        p = prev[key]
        if r["status"] != "ok":
            v.findings.append(
                Finding(
                    *key,
                    "accuracy",
                    "regressed",
                    p["value"],
                    None,
                    None,
                    detail=f"failed tonight: {r['error']}",
                )
            )
            continue
        if p["status"] != "ok":
            v.findings.append(
                Finding(
                    *key,
                    "accuracy",
                    "improved",
                    None,
                    r["value"],
                    None,
                    detail="failed in the baseline, runs now",
                )
            )
            continue
        v.findings.append(_accuracy(root, v, key, p, r, tol))
        machine = _machine_ratio(p, r)
        v.findings.append(_paired(root, v, key, "latency_p50", tol.latency, tol.alpha, machine))
        cost_machine = machine if _num(r.get("usd_per_hour")) and _num(p.get("usd_per_hour")) else 1.0
        v.findings.append(_paired(root, v, key, "usd_per_1k_items", tol.cost, tol.alpha, cost_machine))
        for aspect, band in (("peak_rss_mb", tol.memory),):
            change = _rel(p.get(aspect), r.get(aspect))
            verdict = "unchanged"
            if change is not None and change > band:
                verdict = "regressed"
            elif change is not None and change < -band:
                verdict = "improved"
            v.findings.append(
                Finding(
                    *key,
                    aspect,
                    verdict,
                    _num(p.get(aspect)),
                    _num(r.get(aspect)),
                    change,
                    detail=f"tolerance ±{band:.0%}",
                )
            )
    for key, p in prev.items():
        if not ((now["model"] == key[0]) & (now["task"] == key[1])).any():
            v.findings.append(
                Finding(*key, "accuracy", "missing", p["value"], None, None, detail="not run tonight")
            )
    for aspect in ("accuracy", "latency_p50", "usd_per_1k_items"):
        _adjust_family(v.findings, tol.alpha, aspect)
    v.findings += _goodput(root, v, tol)
    return v


def _goodput(root: Path, v: Verdict, tol: Tolerances) -> list[Finding]:
    """Goodput per load level when the runs hold load sweeps (bench.nightly_goodput)."""
    from bench.nightly_goodput import goodput_findings

    return goodput_findings(root, v.run_id, v.baseline_run_id, tol.goodput)


def _adjust_family(findings: list[Finding], alpha: float, aspect: str = "accuracy") -> None:
    """Every model x task test of one aspect (accuracy, latency, cost) in the night is one family: a
    change counts only when its Benjamini-Hochberg adjusted p-value is below alpha (the raw one
    stays beside it)."""
    from bench.analysis import adjust_pvalues

    tested = [f for f in findings if f.aspect == aspect and f.p_value is not None]
    for f, p in zip(tested, adjust_pvalues([f.p_value for f in tested]), strict=True):
        f.p_adjusted = float(p)
        if f.verdict in ("improved", "regressed") and not p < alpha:
            f.verdict = "unchanged"


def _accuracy(root: Path, v: Verdict, key: tuple[str, str], p: Any, r: Any, tol: Tolerances) -> Finding:
    assert v.baseline_run_id is not None
    rows = compare(
        root, Side(v.run_id, key[0]), Side(v.baseline_run_id, key[0]), tasks=[key[1]], alpha=tol.alpha
    )
    if not rows:
        return Finding(*key, "accuracy", "unchanged", p["value"], r["value"], None, detail="no shared items")
    c = rows[0]
    verdict = {"A better": "improved", "B better": "regressed"}.get(c.verdict, "unchanged")
    return Finding(
        *key,
        "accuracy",
        verdict,
        c.b,
        c.a,
        c.diff,
        c.p_value,
        (c.ci_low, c.ci_high),
        c.n,
        detail=f"{c.metric}, {c.test}, {c.n} shared items",
    )


def _per_item(root: Path, run_id: str, model: str, task: str, aspect: str) -> tuple[pd.Series, float]:
    """Per-item seconds (latency) or $ per 1k items (machine time x $/hour + token prices) of a run,
    and the smallest change worth calling: one millisecond, of latency or of machine time."""
    import pyarrow.dataset as ds

    cols = ["item_id", "latency_s", "wall_s", "input_tokens", "output_tokens", "error"]
    t = (
        store.samples_dataset(root, [run_id])
        .to_table(filter=(ds.field("model") == model) & (ds.field("task") == task), columns=cols)
        .to_pandas()
    )
    t = t[t["error"].isna()].set_index("item_id")
    if aspect == "latency_p50":
        return t["latency_s"].dropna(), 1e-3
    cfg = store.find_run(root, run_id).get("suite_config", {})
    usd_h = float(cfg.get("hardware", {}).get("usd_per_hour", 0.0))
    spec: dict[str, Any] = next((m for m in cfg.get("models", []) if m.get("name") == model), {})
    price = spec.get("price") or {}
    rates = (price.get("input_per_mtok", 0.0), price.get("output_per_mtok", 0.0))
    usd = cost_usd(t["wall_s"], usd_h, t["input_tokens"], t["output_tokens"], rates)
    per_1k = pd.Series(usd * 1000, index=t.index)
    return per_1k, usd_h * 1e-3 / 3600 * 1000


def _machine_ratio(p: Any, r: Any) -> float | None:
    """Tonight's calibration median over the baseline's for one (model, task): 1.5 means the
    machine ran the fixed workload 1.5x slower tonight. None when either run has no calibration."""
    a, b = _num(r.get("calib_s")), _num(p.get("calib_s"))
    return a / b if a and b else None


def _run_calibration(now: pd.DataFrame, before: pd.DataFrame | None) -> dict[str, float | None]:
    def med(df: pd.DataFrame | None) -> float | None:
        col = df["calib_s"].dropna() if df is not None else pd.Series(dtype=float)
        return float(col.median()) if len(col) else None

    a, b = med(now), med(before)
    return {"run_s": a, "baseline_s": b, "ratio": a / b if a and b else None}


# The calibration is a short burst, and schedulers favour short bursts over long-running processes,
# so it under-reads the slowdown a sustained engine sees: beside CPU burners it read 2.1x where a
# sustained job ran 2.8x, and 4.9x where SmolLM2 on one thread ran 6.7x (log-ratio exponents 1.39
# and 1.19). The load may therefore explain up to machine ** LOAD_EXPONENT of a change.
LOAD_EXPONENT = 1.5


def load_verdict(ratio: float, machine: float | None, band: float) -> str:
    """improved / regressed / unchanged for after/before = `ratio` on a machine `machine` times
    slower than in the baseline: the change must pass the tolerance whether none or all of the
    machine's change (up to machine ** LOAD_EXPONENT) reached the model (module docstring)."""
    d = 1.0 if machine is None else machine**LOAD_EXPONENT
    if ratio > (1.0 + band) * max(1.0, d):
        return "regressed"
    if ratio < (1.0 - band) * min(1.0, d):
        return "improved"
    return "unchanged"


def _paired(
    root: Path,
    v: Verdict,
    key: tuple[str, str],
    aspect: str,
    band: float,
    alpha: float,
    machine: float | None,
) -> Finding:
    """Latency and cost are paired by item too: a change counts when a Wilcoxon signed-rank test
    on the shared items says it is not noise, it is larger than one millisecond (of latency, or of
    machine time for cost), and the median moves past the tolerance widened by the machine
    calibration (`load_verdict`)."""
    from scipy.stats import wilcoxon

    assert v.baseline_run_id is not None
    before, floor = _per_item(root, v.baseline_run_id, *key, aspect)
    after, _ = _per_item(root, v.run_id, *key, aspect)
    a, b = after.align(before, join="inner")
    if len(a) < 2:
        return Finding(*key, aspect, "unchanged", None, None, None, detail="too few shared items")
    mb, ma = float(b.median()), float(a.median())
    change = ma / mb - 1.0 if mb > 0 else None
    diff = (a - b).to_numpy(dtype=float)
    p_value = 1.0 if not diff.any() else float(wilcoxon(diff).pvalue)
    verdict = "unchanged"
    if change is not None and p_value < alpha and abs(ma - mb) > floor:
        verdict = load_verdict(1.0 + change, machine, band)
    unit = "s per item" if aspect == "latency_p50" else "$ per 1k items"
    if machine is None:
        load = "no calibration in one of the runs: machine load not accounted for"
    elif change is not None:
        load = f"machine x{machine:.2f} (calibration); scaled by it {(1.0 + change) / machine - 1.0:+.0%}"
    else:
        load = f"machine x{machine:.2f} (calibration)"
    return Finding(
        *key,
        aspect,
        verdict,
        mb,
        ma,
        change,
        p_value,
        None,
        len(a),
        detail=f"median {unit}; tolerance ±{band:.0%} widened by the machine ratio, Wilcoxon p < {alpha}; {load}",
        calibration=machine,
    )


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
