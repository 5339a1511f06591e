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
            if ev.get("note"):
                log(f"[yellow]{ev['model']}: {ev['note']}[/]")
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


def _text(v: Any) -> str:
    """A text cell: '-' for a missing value (None, or NaN where pandas filled a gap)."""
    return v if isinstance(v, str) and v else "-"


def _params(n: Any) -> str:
    if n is None or n != n:
        return "-"
    n = float(n)
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def print_leaderboard(console: Console, root: Path, run_id: str, run_dir: str, wall_s: float | None) -> None:
    """Accuracy per task with CIs, then efficiency per model. A grid when the terminal is wide
    enough, one line per (model, task) otherwise."""
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
    names = {r["model"]: r["model"] + (" *" if r["model"] in front else "") for _, r in board.iterrows()}
    grid_width = max(len(n) for n in names.values()) + 22 * (len(tasks) + 1) + 4
    if console.width >= grid_width:
        acc = Table(title="Accuracy (primary metric, 95% bootstrap CI)")
        acc.add_column("model", style="bold")
        for t in tasks:
            acc.add_column(t, justify="right")
        acc.add_column("mean", justify="right")
        for _, r in board.iterrows():
            m = r["mean"]
            mean = f"{m.mean:.3f} [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m is not None else "-"
            acc.add_row(names[r["model"]], *[_ci(r.get(t)) for t in tasks], mean)
    else:
        acc = Table(title="Accuracy (primary metric, 95% bootstrap CI)")
        for c in ("model", "task", "metric", "value", "95% CI", "n"):
            acc.add_column(c, justify="left" if c in ("model", "task", "metric") else "right")
        for _, r in board.iterrows():
            for t in tasks:
                row: Any = r.get(t)
                if row is None or not hasattr(row, "get") or row.get("status") != "ok":
                    acc.add_row(names[r["model"]], t, "-", "[red]error[/]", "", "")
                    continue
                acc.add_row(
                    names[r["model"]],
                    t,
                    row["metric"],
                    f"{row['value']:.3f}",
                    f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]",
                    str(row["n"]),
                )
            m = r["mean"]
            if m is not None:
                acc.add_row(
                    names[r["model"]], "mean", "", f"{m.mean:.3f}", f"[{m.ci_low:.3f}, {m.ci_high:.3f}]", ""
                )
    console.print(acc)
    eff = Table(title="Efficiency (same requests)")
    for c in ("model", "params", "quant", "p50 s/item", "tok/s", "peak RSS MB", "$/1k items", "errors"):
        eff.add_column(c, justify="left" if c in ("model", "quant") else "right")
    for _, r in board.iterrows():
        eff.add_row(
            names[r["model"]],
            _params(r["params"]),
            _text(r["quant"]),
            _num(r["latency_p50"], ".3f"),
            _num(r["tokens_per_s"], ".0f"),
            _num(r["peak_rss_mb"], ".0f"),
            _num(r["usd_per_1k_items"], ".4f"),
            str(r["errors"]),
        )
    console.print(eff)
    console.print("[dim]* on the accuracy / cost Pareto front · mean = macro average over tasks[/]")
    for _, r in board.iterrows():
        if _text(r["error"]) != "-":
            console.print(f"[red]{r['model']}[/]: {r['error']}")
    if wall_s is not None:
        console.print(f"wall time {wall_s:.1f} s · results in {run_dir}")


def report_console() -> Console:
    """A console for the final report: wide when output goes to a file or pipe, so logs keep the grid."""
    c = Console()
    return c if c.is_terminal else Console(width=200)
