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

from bench.coverage import LOW_COVERAGE, coverage
from bench.fmt import format_params


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
            if ev.get("retry"):
                log(f"[yellow]{ev['model']} · {ev['task']}: re-running {ev['retry']} failed items[/]")
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
                errs = f" ({prim['n_errors']} errors)" if prim["n_errors"] else ""
                log(
                    f"  {ev['model']} · {ev['task']}: {prim['metric']} {prim['value']:.3f} "
                    f"[{prim['ci_low']:.3f}, {prim['ci_high']:.3f}]{_cut(prim)} over {_coverage(prim)} items answered{errs}"
                )
        elif t in ("model_error", "task_error"):
            where = ev["model"] + (f" · {ev['task']}" if "task" in ev else "")
            log(f"[red]error[/] {where}: {ev['error']}")


def _coverage(r: Any) -> str:
    """Answered / asked; marked with '!' below LOW_COVERAGE, where the figure rests on few items."""
    c = coverage(r.get("n"), r.get("n_errors"))
    return f"[bold red]{c}![/]" if c.low else str(c)


def _ci(r: Any) -> str:
    if r is None or getattr(r, "get", None) is None:
        return "[red]error[/]"
    if r.get("value") is None or r.get("status") != "ok":
        return f"[red]error[/] {_coverage(r)}" if coverage(r.get("n"), 0).asked else "[red]error[/]"
    return f"{r['value']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]{_cut(r)} {_coverage(r)}"


def _cut(r: Any) -> str:
    """' cut 40%': the share of a generative task's outputs stopped by max_tokens (a cut answer
    reads as a wrong one); '' for log-likelihood tasks, which have none."""
    share = r.get("truncated_share") if hasattr(r, "get") else None
    if share is None or share != share:
        return ""
    text = f" cut {share:.0%}"
    return f"[yellow]{text}[/]" if share > TRUNCATION_WARN else text


TRUNCATION_WARN = 0.10  # above this share of outputs cut by max_tokens, a run ends with a warning


def truncation_warnings(board: Any, tasks: list[str]) -> list[str]:
    """One line per (task, model) whose outputs were often cut by the token limit."""
    out = []
    for _, r in board.iterrows():
        for t in tasks:
            row: Any = r.get(t)
            share = row.get("truncated_share") if hasattr(row, "get") else None
            if share is None or share != share or share <= TRUNCATION_WARN:
                continue
            cut = int(row["n_truncated"])
            limit = row.get("max_tokens")
            at = f"max_tokens={int(limit)}" if limit is not None and limit == limit else "the token limit"
            out.append(
                f"{t}: {r['model']}: {cut}/{round(cut / share)} outputs stopped at {at}; raise max_tokens"
            )
    return out


# The interval of each cell and of the mean is bench.analysis's, as in every other view.
ACCURACY_TITLE = "Accuracy (primary metric, 95% CI: Wilson for 0/1 scores, bootstrap otherwise)"


def _cost_or_zero(x: Any) -> float:
    """$ per 1k items for the Pareto front; a model without a cost (no $/hour) counts as free."""
    return 0.0 if x is None or x != x else float(x)


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


def print_leaderboard(console: Console, root: Path, run_id: str, run_dir: str, wall_s: float | None) -> None:
    """Accuracy per task with CIs, then efficiency per model. A grid when the terminal is wide
    enough, one line per (model, task) otherwise."""
    from bench.analysis import pareto_front
    from bench.report import leaderboard

    board, tasks = leaderboard(root, run_id)
    if board.empty:
        console.print("[yellow]no results[/]")
        return
    points = [
        (r["model"], r["mean"].mean, _cost_or_zero(r["usd_per_1k_items"]))
        for _, r in board.iterrows()
        if r["mean"] is not None
    ]
    front = pareto_front(points)
    names = {r["model"]: r["model"] + (" *" if r["model"] in front else "") for _, r in board.iterrows()}
    cut_cols = sum(1 for t in tasks if any(_cut(r.get(t)) for _, r in board.iterrows()))
    cover_cols = 8 * len(tasks)  # " 23/23!" after each task's interval
    grid_width = max(len(n) for n in names.values()) + 22 * (len(tasks) + 1) + 9 * cut_cols + cover_cols + 4
    if console.width >= grid_width:
        acc = Table(title=ACCURACY_TITLE)
        acc.add_column("model", style="bold")
        for t in tasks:
            acc.add_column(t, justify="right")
        acc.add_column("mean", justify="right")
        for _, r in board.iterrows():
            m = r["mean"]
            mean = f"{m.mean:.3f} [{m.ci_low:.2f}, {m.ci_high:.2f}]" if m is not None else "-"
            acc.add_row(names[r["model"]], *[_ci(r.get(t)) for t in tasks], mean)
    else:
        acc = Table(title=ACCURACY_TITLE)
        for c in ("model", "task", "metric", "value", "95% CI", "answered"):
            acc.add_column(c, justify="left" if c in ("model", "task", "metric") else "right")
        for _, r in board.iterrows():
            for t in tasks:
                row: Any = r.get(t)
                if row is None or not hasattr(row, "get") or row.get("status") != "ok":
                    cov = _coverage(row) if row is not None and hasattr(row, "get") else ""
                    acc.add_row(names[r["model"]], t, "-", "[red]error[/]", "", cov)
                    continue
                acc.add_row(
                    names[r["model"]],
                    t,
                    row["metric"],
                    f"{row['value']:.3f}{_cut(row)}",
                    f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}]",
                    _coverage(row),
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
            format_params(r["params"]),
            _text(r["quant"]),
            _num(r["latency_p50"], ".3f"),
            _num(r["tokens_per_s"], ".0f"),
            _num(r["peak_rss_mb"], ".0f"),
            _num(r["usd_per_1k_items"], ".4f"),
            str(r["errors"]),
        )
    console.print(eff)
    console.print(
        "[dim]* on the accuracy / cost Pareto front · mean = macro average over tasks · "
        f"a/n = items answered / asked, ! = under {LOW_COVERAGE:.0%} answered[/]"
    )
    for line in _price_notes(root, run_id):
        console.print(f"[dim]$/1k items: {line}[/]")
    for _, r in board.iterrows():
        if _text(r["error"]) != "-":
            console.print(f"[red]{r['model']}[/]: {r['error']}")
    for line in truncation_warnings(board, tasks):
        console.print(f"[yellow]warning[/] {line}")
    if wall_s is not None:
        console.print(f"wall time {wall_s:.1f} s · results in {run_dir}")


def _price_notes(root: Path, run_id: str) -> list[str]:
    """The date of every token price taken from bench's price table (bench.prices), per model."""
    from bench import store
    from bench.prices import price_notes

    try:
        return price_notes(store.find_run(root, run_id).get("suite_config", {}))
    except Exception:  # a run without a readable manifest still gets its tables
        return []


def report_console() -> Console:
    """A console for the final report: wide when output goes to a file or pipe, so logs keep the grid."""
    c = Console()
    return c if c.is_terminal else Console(width=200)
