"""`bench rescore RUN`: recompute a stored run's metrics with the current scoring code, no model."""

from __future__ import annotations

import click

from bench.cli_common import RESULTS_HELP, results_root

__all__ = ["rescore_command"]


@click.command("rescore")
@click.argument("run_ref")
@click.option("--tasks", help="comma-separated tasks to rescore (default: all of the run's)")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="PATH=VALUE",
    help="change a scoring setting of the run's suite first, e.g. tasks.gsm8k.answer_regex='...' on a "
    "kind that has one (repeatable; VALUE is read as YAML; a change that alters the requests skips the task)",
)
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
@click.option(
    "--into", type=click.Path(file_okay=False), help="write the new run under this results directory"
)
def rescore_command(
    run_ref: str, tasks: str | None, sets: tuple[str, ...], output: str | None, into: str | None
) -> None:
    """Rescore RUN from its stored outputs and log-likelihoods into a new run (no model is loaded).

    The new run records `derived_from` (the source run, the --set changes, the scoring code's hash
    and, per task, the metrics that moved) and keeps the source's latency, tokens, memory and cost.
    Items stored with an error stay errors. Exit 1 when a task had to be skipped."""
    import sys
    from pathlib import Path

    from bench.display import print_leaderboard, report_console
    from bench.rescore import rescore

    root = results_root(output)
    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else []
    res = rescore(root, run_ref, tasks=names, sets=sets, output=Path(into) if into else None)
    console = report_console()
    console.print(f"[bold]Rescored {res.source_run_id}[/] -> {res.run_id} ({res.dir})")
    for t in res.tasks:
        where = f"{t.model} · {t.task}"
        if t.status == "skipped":
            console.print(f"[yellow]skipped[/] {where}: {t.reason}")
        elif t.status == "copied":
            console.print(f"[dim]copied[/] {where}: {t.reason}")
        elif not t.moved:
            console.print(f"{where}: unchanged ({t.items_changed} items changed)")
        else:
            moves = ", ".join(f"{m} {_num(v['before'])} -> {_num(v['after'])}" for m, v in t.moved.items())
            console.print(f"{where}: {moves} ({t.items_changed} items changed)")
    print_leaderboard(console, Path(into) if into else root, res.run_id, str(res.dir), None)
    if any(t.status == "skipped" for t in res.tasks):
        sys.exit(1)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
