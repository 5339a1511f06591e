"""Nightly's reports: verdict.json, report.md and a self-contained report.html with plotly charts.

The verdicts themselves are decided in bench.nightly; this module only lays them out, with the
machine calibration behind every latency and cost verdict.
"""

from __future__ import annotations

import json
import re
from html import escape as html_escape
from pathlib import Path
from typing import Any

import pandas as pd

from bench import store
from bench.nightly import Verdict, primary_runs


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
    from bench.prices import price_notes
    from bench.report import leaderboard

    lines = [
        f"# Nightly: {v.suite}",
        "",
        f"- run: `{v.run_id}` ({run_path})",
        f"- baseline: `{v.baseline_run_id or '-'}` ({v.baseline_reason})"
        + (f" ({base_path})" if base_path else ""),
        f"- status: **{'REGRESSED' if v.regressed else 'ok'}** ({len(v.regressed)} regressed, {len(v.improved)} improved)",
        f"- machine calibration: {calibration_line(v)}",
        *(f"- cost: {line}" for line in price_notes(store.find_run(root, v.run_id).get("suite_config", {}))),
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
        "| model | task | aspect | verdict | before | after | change | p-value | 95% CI | items | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {"regressed": 0, "improved": 1, "missing": 2, "new": 3, "unchanged": 4}
    for f in sorted(v.findings, key=lambda f: (order[f.verdict], f.model, f.task, f.aspect)):
        acc = f.aspect == "accuracy"
        lines.append(
            f"| {f.model} | {f.task} | {f.aspect} | {f.verdict.upper() if f.verdict == 'regressed' else f.verdict} | "
            f"{_fmt(f.before)} | {_fmt(f.after)} | {_fmt(f.change, pct=not acc) if f.change is not None else '-'} | "
            f"{f'{f.p_value:.3g}' if f.p_value is not None else '-'}"
            f"{f' (BH {f.p_adjusted:.3g})' if f.p_adjusted is not None else ''} | "
            f"{f'[{f.ci[0]:+.3f}, {f.ci[1]:+.3f}]' if f.ci else '-'} | {f.n or '-'} | "
            f"{f'x{f.calibration:.2f}' if f.calibration is not None else '-'} |"
        )
    lines += _calibration_table(root, v)
    lines += [
        "",
        "## Per-item rows behind each verdict",
        "",
        f"- tonight: `{run_path}/samples-<model>-<task>-*.parquet`",
        f"- baseline: `{base_path}/samples-<model>-<task>-*.parquet`" if base_path else "- baseline: none",
        "",
        "Accuracy verdicts use a paired test on the items both runs answered; latency, memory and cost a "
        f"tolerance band (±{v.tolerances.latency:.0%}, ±{v.tolerances.memory:.0%}, ±{v.tolerances.cost:.0%}); "
        "latency and cost also a Wilcoxon test, and their band is widened by the machine ratio "
        "(`machine`: tonight's calibration over the baseline's), so load on a shared machine cannot "
        "make a change: regressed needs after/before > (1 + tol) x max(1, machine), improved "
        "after/before < (1 - tol) x min(1, machine).",
        "",
    ]
    return "\n".join(lines)


def calibration_line(v: Verdict) -> str:
    c = v.calibration
    a, b, ratio = c.get("run_s"), c.get("baseline_s"), c.get("ratio")
    if a is None and b is None:
        return "none in either run"
    if v.baseline_run_id is None:
        return f"tonight {_fmt(a)} s (no baseline)"
    text = f"tonight {_fmt(a)} s, baseline {_fmt(b)} s"
    return text + (f" (machine x{ratio:.2f})" if ratio is not None else " (missing in one run)")


def _calibration_table(root: Path, v: Verdict) -> list[str]:
    """Each task's calibration timings in both runs: the numbers behind the `machine` column."""
    runs = {"tonight": primary_runs(root, v.run_id)}
    if v.baseline_run_id:
        runs["baseline"] = primary_runs(root, v.baseline_run_id)

    def cell(df: pd.DataFrame, model: str, task: str) -> str:
        row = df[(df["model"] == model) & (df["task"] == task)]
        if row.empty or pd.isna(row.iloc[0].get("calib_s")):
            return "-"
        r = row.iloc[0]
        return f"{r['calib_s']:.4f} s [{r['calib_min_s']:.4f}, {r['calib_max_s']:.4f}], {int(r['calib_n'])} timings"

    keys = sorted({(m, t) for df in runs.values() for m, t in zip(df["model"], df["task"], strict=True)})
    lines = [
        "",
        "## Machine calibration",
        "",
        "Seconds of a fixed CPU workload (measure.calibration_s), timed before, every 30 s during and after "
        "each task: median [fastest, slowest]. A larger number means the machine was busier.",
        "",
        "| model | task | " + " | ".join(runs) + " |",
        "| --- | --- |" + " --- |" * len(runs),
    ]
    for m, t in keys:
        lines.append(f"| {m} | {t} | " + " | ".join(cell(df, m, t) for df in runs.values()) + " |")
    return lines


def html(root: Path, v: Verdict, run_path: Path, base_path: Path | None) -> str:
    """One self-contained file: plotly's JavaScript is inlined, so it opens offline and as an artifact."""
    import plotly.graph_objects as go
    from plotly.io import to_html

    from bench.analysis import pareto_front

    now = primary_runs(root, v.run_id)
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
