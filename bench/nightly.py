"""Nightly verdicts: this run against the previous comparable one, per model x task.

Accuracy: a paired test on the shared items (McNemar's exact test for 0/1 scores, a paired t-test
otherwise) decides improved / regressed / unchanged at `alpha`. Latency p50, peak memory and cost
per 1k items: a tolerance band (relative change), because timing noise has no per-item pairing.
The verdict is written as JSON, Markdown and a self-contained HTML report with plotly charts.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pandas as pd

from bench import store
from bench.compare import Side, compare


@dataclass(frozen=True)
class Tolerances:
    latency: float = 0.10  # +10% p50 latency is a regression
    memory: float = 0.10
    cost: float = 0.10
    alpha: float = 0.05


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


@dataclass
class Verdict:
    suite: str
    run_id: str
    baseline_run_id: str | None
    baseline_reason: str
    created_at: str
    tolerances: Tolerances
    findings: list[Finding] = field(default_factory=list)

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


def _primary_runs(root: Path, run_id: str) -> pd.DataFrame:
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
    now = _primary_runs(root, run["run_id"])
    if base is None:
        for _, r in now.iterrows():
            v.findings.append(Finding(r["model"], r["task"], "accuracy", "new", None, r["value"], None))
        return v
    before = _primary_runs(root, base["run_id"])
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
        v.findings.append(_paired(root, v, key, "latency_p50", tol.latency, tol.alpha))
        v.findings.append(_paired(root, v, key, "usd_per_1k_items", tol.cost, tol.alpha))
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
    return v


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
    tokens = (
        t["input_tokens"].fillna(0) * price.get("input_per_mtok", 0.0)
        + t["output_tokens"].fillna(0) * price.get("output_per_mtok", 0.0)
    ) / 1e6
    per_1k = (t["wall_s"].fillna(0) * usd_h / 3600 + tokens) * 1000
    return per_1k, usd_h * 1e-3 / 3600 * 1000


def _paired(root: Path, v: Verdict, key: tuple[str, str], aspect: str, band: float, alpha: float) -> Finding:
    """Latency and cost are paired by item too: a change counts when the median moves past the
    tolerance AND a Wilcoxon signed-rank test on the shared items says it is not noise, and it is
    larger than one millisecond (of latency, or of machine time for cost)."""
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
        verdict = "regressed" if change > band else "improved" if change < -band else "unchanged"
    unit = "s per item" if aspect == "latency_p50" else "$ per 1k items"
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
        detail=f"median {unit}; tolerance ±{band:.0%} and Wilcoxon p < {alpha}",
    )


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# ------------------------------------------------------------------------------ reports


def write_reports(root: Path, v: Verdict, out_dir: Path | None = None) -> Path:
    day = v.run_id[:8]
    out = out_dir or root / "reports" / store.safe_name(v.suite) / f"{day[:4]}-{day[4:6]}-{day[6:8]}"
    out.mkdir(parents=True, exist_ok=True)
    run_path = Path(store.find_run(root, v.run_id)["path"])
    base_path = Path(store.find_run(root, v.baseline_run_id)["path"]) if v.baseline_run_id else None
    (out / "verdict.json").write_text(json.dumps(v.to_dict(), indent=2, default=str))
    (out / "report.md").write_text(markdown(root, v, run_path, base_path))
    (out / "report.html").write_text(html(root, v, run_path, base_path))
    return out


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x:+.1%}" if pct else f"{x:.4g}"


def markdown(root: Path, v: Verdict, run_path: Path, base_path: Path | None) -> str:
    from bench.report import leaderboard

    lines = [
        f"# Nightly: {v.suite}",
        "",
        f"- run: `{v.run_id}` ({run_path})",
        f"- baseline: `{v.baseline_run_id or '-'}` ({v.baseline_reason})"
        + (f" ({base_path})" if base_path else ""),
        f"- status: **{'REGRESSED' if v.regressed else 'ok'}** ({len(v.regressed)} regressed, {len(v.improved)} improved)",
        "",
    ]
    board, tasks = leaderboard(root, v.run_id)
    if not board.empty:
        lines += [
            "## Tonight's leaderboard",
            "",
            "| model | " + " | ".join(tasks) + " | mean |",
            "| --- |" + " --- |" * (len(tasks) + 1),
        ]
        for _, r in board.iterrows():
            cells = []
            for t in tasks:
                row: Any = r.get(t)
                ok = row is not None and hasattr(row, "get") and row.get("status") == "ok"
                cells.append(
                    f"{row['value']:.3f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}]" if ok else "error"
                )
            m = r["mean"]
            mean = f"{m.mean:.3f} [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m is not None else "-"
            lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {mean} |")
        lines.append("")
    lines += [
        "## Changes since the baseline",
        "",
        "| model | task | aspect | verdict | before | after | change | p-value | 95% CI | items |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {"regressed": 0, "improved": 1, "missing": 2, "new": 3, "unchanged": 4}
    for f in sorted(v.findings, key=lambda f: (order[f.verdict], f.model, f.task, f.aspect)):
        acc = f.aspect == "accuracy"
        lines.append(
            f"| {f.model} | {f.task} | {f.aspect} | {f.verdict.upper() if f.verdict == 'regressed' else f.verdict} | "
            f"{_fmt(f.before)} | {_fmt(f.after)} | {_fmt(f.change, pct=not acc) if f.change is not None else '-'} | "
            f"{f'{f.p_value:.3g}' if f.p_value is not None else '-'} | "
            f"{f'[{f.ci[0]:+.3f}, {f.ci[1]:+.3f}]' if f.ci else '-'} | {f.n or '-'} |"
        )
    lines += [
        "",
        "## Per-item rows behind each verdict",
        "",
        f"- tonight: `{run_path}/samples-<model>-<task>-*.parquet`",
        f"- baseline: `{base_path}/samples-<model>-<task>-*.parquet`" if base_path else "- baseline: none",
        "",
        "Accuracy verdicts use a paired test on the items both runs answered; latency, memory and cost a "
        f"tolerance band (±{v.tolerances.latency:.0%}, ±{v.tolerances.memory:.0%}, ±{v.tolerances.cost:.0%}).",
        "",
    ]
    return "\n".join(lines)


def html(root: Path, v: Verdict, run_path: Path, base_path: Path | None) -> str:
    """One self-contained file: plotly's JavaScript is inlined, so it opens offline and as an artifact."""
    import plotly.graph_objects as go
    from plotly.io import to_html

    from bench.report import pareto_front

    now = _primary_runs(root, v.run_id)
    figs = []
    bar = go.Figure()
    for model, g in now.groupby("model"):
        bar.add_bar(
            name=str(model),
            x=g["task"],
            y=g["value"],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": g["ci_high"] - g["value"],
                "arrayminus": g["value"] - g["ci_low"],
            },
        )
    bar.update_layout(title="Tonight: primary metric per task (95% CI)", barmode="group", height=420)
    figs.append(bar)
    agg = (
        now.groupby("model")
        .agg(acc=("value", "mean"), cost=("usd_per_1k_items", "mean"), params=("model_params", "max"))
        .reset_index()
    )
    points = [
        (str(m), float(a), float(c) if pd.notna(c) else 0.0)
        for m, a, c in zip(agg["model"], agg["acc"], agg["cost"], strict=True)
    ]
    front = pareto_front(points)
    sc = go.Figure()
    sc.add_scatter(
        x=agg["cost"],
        y=agg["acc"],
        mode="markers+text",
        text=agg["model"],
        textposition="top center",
        marker={"size": 12, "color": ["crimson" if m in front else "gray" for m in agg["model"]]},
        hovertext=[f"{r.model}: params {r.params}" for r in agg.itertuples()],
    )
    fr = agg[agg["model"].isin(front)].sort_values("cost")
    sc.add_scatter(x=fr["cost"], y=fr["acc"], mode="lines", name="Pareto front", line={"dash": "dot"})
    sc.update_layout(
        title="Accuracy vs $ per 1k items (red: Pareto front)",
        xaxis_title="$ per 1k items",
        yaxis_title="mean primary metric",
        height=420,
        showlegend=False,
    )
    figs.append(sc)
    acc = [f for f in v.findings if f.aspect == "accuracy" and f.change is not None and f.ci]
    if acc:
        d = go.Figure()
        d.add_scatter(
            x=[f.change for f in acc],
            y=[f"{f.model} · {f.task}" for f in acc],
            mode="markers",
            error_x={
                "type": "data",
                "symmetric": False,
                "array": [f.ci[1] - f.change for f in acc if f.ci and f.change is not None],
                "arrayminus": [f.change - f.ci[0] for f in acc if f.ci and f.change is not None],
            },
            marker={
                "color": [
                    "crimson"
                    if f.verdict == "regressed"
                    else "seagreen"
                    if f.verdict == "improved"
                    else "gray"
                    for f in acc
                ],
                "size": 10,
            },
        )
        d.add_vline(x=0, line_dash="dot")
        d.update_layout(
            title="Accuracy change since the baseline (paired, 95% CI)", height=max(280, 120 + 40 * len(acc))
        )
        figs.append(d)
    parts = [to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    md = markdown(root, v, run_path, base_path)
    table = _md_table_to_html(md)
    status = "REGRESSED" if v.regressed else "ok"
    color = "#b00020" if v.regressed else "#1b5e20"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>bench nightly: {v.suite}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}"
        "code{background:#f4f4f4;padding:1px 4px}</style></head><body>"
        f"<h1>Nightly: {v.suite} — <span style='color:{color}'>{status}</span></h1>"
        f"<p>run <code>{v.run_id}</code> vs baseline <code>{v.baseline_run_id or '-'}</code> ({v.baseline_reason})</p>"
        + "".join(parts)
        + table
        + "</body></html>"
    )


def _md_table_to_html(md: str) -> str:
    out, in_table = [], False
    for raw in md.splitlines():
        if raw.startswith("| ---"):
            continue  # the header separator
        line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html_escape(raw, quote=False))
        line = re.sub(r"`([^`]+)`", r"<code>\1</code>", line)
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if not in_table else "td"
            out.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            if not in_table:
                out.insert(len(out) - 1, "<table>")
            in_table = True
        else:
            if in_table:
                out.append("</table>")
            in_table = False
            if line.startswith("## "):
                out.append(f"<h2>{line[3:]}</h2>")
            elif line.startswith("- "):
                out.append(f"<p>{line[2:]}</p>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)
