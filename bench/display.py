"""The terminal view of a run: progress bars per model and task, and the final leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class RichDisplay:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._bars: dict[tuple[str, str], Any] = {}

    def __enter__(self) -> RichDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def handle(self, ev: dict[str, Any]) -> None:
        t = ev["type"]
        log = self.progress.console.print
        if t == "run_start":
            what = "Resuming" if ev["resumed"] else "Run"
            log(f"[bold]{what} {ev['run_id']}[/] -> {ev['dir']}")
        elif t == "model_loaded":
            log(f"[dim]{ev['model']}: loaded in {ev['load_s']:.1f} s[/]")
        elif t == "task_start":
            key = (ev["model"], ev["task"])
            self._bars[key] = self.progress.add_task(
                f"{ev['model']} · {ev['task']}", total=ev["total"], completed=ev["done"]
            )
        elif t == "advance":
            bar = self._bars.get((ev["model"], ev["task"]))
            if bar is not None:
                self.progress.advance(bar, ev["n"])
        elif t == "task_done":
            prim = next((r for r in ev["summary"] if r.get("primary")), None)
            if prim and prim.get("value") is not None:
                errs = f", {prim['n_errors']} errors" if prim["n_errors"] else ""
                log(
                    f"  {ev['model']} · {ev['task']}: {prim['metric']} {prim['value']:.3f} "
                    f"[{prim['ci_low']:.3f}, {prim['ci_high']:.3f}] on {prim['n']} items{errs}"
                )
        elif t in ("model_error", "task_error"):
            where = ev["model"] + (f" · {ev['task']}" if "task" in ev else "")
            log(f"[red]error[/] {where}: {ev['error']}")


def _ci(r: Any) -> str:
    if r is None or getattr(r, "get", None) is None or r.get("value") is None or r.get("status") != "ok":
        return "[red]error[/]"
    return f"{r['value']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def _num(x: Any, fmt: str) -> str:
    if x is None:
        return "-"
    try:
        if x != x:  # NaN
            return "-"
    except TypeError:
        return "-"
    return format(x, fmt)


def _params(n: Any) -> str:
    if n is None or n != n:
        return "-"
    n = float(n)
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def print_leaderboard(console: Console, root: Path, run_id: str, run_dir: str, wall_s: float | None) -> None:
    from bench.report import leaderboard, pareto_front

    board, tasks = leaderboard(root, run_id)
    if board.empty:
        console.print("[yellow]no results[/]")
        return
    points = [
        (r["model"], r["mean"].mean, r["usd_per_1k_items"] or 0.0)
        for _, r in board.iterrows()
        if r["mean"] is not None
    ]
    front = pareto_front(points)
    metric = None
    table = Table(title="Leaderboard (accuracy with 95% bootstrap CI)", show_lines=False)
    table.add_column("model", style="bold")
    table.add_column("params", justify="right")
    for t in tasks:
        table.add_column(t, justify="right")
    for col in ("mean", "p50 s/item", "tok/s", "peak RSS MB", "$/1k items", "errors"):
        table.add_column(col, justify="right")
    for _, r in board.iterrows():
        cells = [r["model"] + (" *" if r["model"] in front else ""), _params(r["params"])]
        for t in tasks:
            row = r.get(t)
            metric = metric or (row.get("metric") if row is not None and hasattr(row, "get") else None)
            cells.append(_ci(row))
        m = r["mean"]
        cells.append(f"{m.mean:.3f} [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m is not None else "-")
        cells += [
            _num(r["latency_p50"], ".3f"),
            _num(r["tokens_per_s"], ".0f"),
            _num(r["peak_rss_mb"], ".0f"),
            _num(r["usd_per_1k_items"], ".4f"),
            str(r["errors"]),
        ]
        table.add_row(*cells)
    console.print(table)
    console.print("[dim]* on the accuracy / cost Pareto front; mean = macro average over tasks[/]")
    for _, r in board.iterrows():
        if r["error"]:
            console.print(f"[red]{r['model']}[/]: {r['error']}")
    if wall_s is not None:
        console.print(f"wall time {wall_s:.1f} s · results in {run_dir}")
