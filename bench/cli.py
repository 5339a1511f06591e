"""The `bench` command. Engines are imported only by the commands that run them, so `bench --help`
and `bench validate` start fast. Every BenchError becomes one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bench import __version__
from bench.cli_common import RESULTS_HELP, results_root
from bench.errors import BenchError


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def app() -> None:
    """Benchmark small and large language models: accuracy, latency, memory and cost in the same run."""


@app.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--limit", type=click.IntRange(min=1), help="items per task (overrides the suite)")
@click.option("--models", help="comma-separated model names from the suite")
@click.option("--tasks", help="comma-separated task names from the suite")
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
@click.option(
    "--resume",
    is_flag=True,
    help="continue the latest run of this exact suite: skip answered items, re-run failed ones",
)
@click.option("--run-id", help="resume this run id")
@click.option("--hardware", help="hardware profile name stored with the results (overrides the suite)")
@click.option("--usd-per-hour", type=click.FloatRange(min=0), help="machine cost for self-hosted models")
@click.option(
    "--mode",
    type=click.Choice(["throughput", "latency"]),
    help="throughput: the engine's batching; latency: one request at a time (overrides the suite)",
)
@click.option("--max-memory-mb", type=click.FloatRange(min=1), help="kill a model's worker above this RSS")
@click.option(
    "--executor",
    type=click.Choice(["process", "inline", "ray"]),
    default="process",
    show_default=True,
    help="one worker process per model; everything in this process (debugging); or Ray tasks",
)
@click.option("--ray-address", help="a Ray cluster (default: start a local one)")
@click.option(
    "--shards",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Ray: split each (model, task) into this many tasks",
)
def run(
    suite: str,
    limit: int | None,
    models: str | None,
    tasks: str | None,
    output: str | None,
    resume: bool,
    run_id: str | None,
    hardware: str | None,
    usd_per_hour: float | None,
    mode: str | None,
    max_memory_mb: float | None,
    executor: str,
    ray_address: str | None,
    shards: int,
) -> None:
    """Run every model of SUITE on every task and print the leaderboard.

    Exit code: 0 when every model ran, 1 when a model or task failed entirely (its error is stored
    with the results), 2 on bad input."""
    from bench.config import load_suite
    from bench.data.preflight import check_local_datasets
    from bench.display import RichDisplay, print_leaderboard, report_console
    from bench.runner import apply_overrides, execute, plan_run
    from bench.templates import check_suite

    loaded = load_suite(suite)
    check_suite(loaded, suite)  # before any model loads: templates run no code
    s = apply_overrides(
        loaded,
        limit=limit,
        models=_csv(models),
        tasks=_csv(tasks),
        hardware=hardware,
        usd_per_hour=usd_per_hour,
        mode=mode,
        max_memory_mb=max_memory_mb,
    )
    check_local_datasets(s)  # a bad record in a local file: exit 2 before any model loads
    root = results_root(output)
    plan = plan_run(s, root, resume=resume, run_id=run_id)
    with RichDisplay() as display:
        if executor == "ray":
            from bench.executors.ray import execute_ray

            result = execute_ray(plan, display, address=ray_address, shards=shards)
        else:
            result = execute(plan, display, executor=executor)  # type: ignore[arg-type]
    print_leaderboard(report_console(), root, plan.run_id, str(plan.dir), result.wall_s)
    if result.model_errors:
        sys.exit(1)


@app.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files: tuple[str, ...]) -> None:
    """Check suite FILES without running a model."""
    from bench.config import load_suite
    from bench.data.preflight import check_local_datasets
    from bench.templates import check_suite

    for f in files:
        s = load_suite(f)
        check_suite(s, f)
        for path in check_local_datasets(s, missing_ok=True):
            click.echo(f"note: {f}: {path} is not here; its records are checked when the suite runs")
        click.echo(
            f"ok: {f}: suite {s.name!r}, {len(s.models)} models x {len(s.tasks)} tasks, hash {s.suite_hash()}"
        )


@app.command()
@click.argument("run_ref", required=False)
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
def report(run_ref: str | None, output: str | None) -> None:
    """Print the leaderboard of a stored run (default: the newest)."""

    from bench import store
    from bench.display import print_leaderboard, report_console

    root = results_root(output)
    if run_ref is None:
        runs = store.list_runs(root)
        if not runs:
            raise BenchError(f"no runs under {root}")
        r: dict[str, Any] = runs[0]
    else:
        r = store.find_run(root, run_ref)
    print_leaderboard(report_console(), root, r["run_id"], r["path"], None)


@app.command()
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
@click.option("--limit", type=click.IntRange(min=1), help="items per task (overrides the suite)")
@click.option("--baseline", help="compare with this run instead of the previous comparable one")
@click.option("--no-run", is_flag=True, help="judge the newest stored run of the suite instead of running it")
@click.option("--latency-tolerance", type=click.FloatRange(min=0), default=0.10, show_default=True)
@click.option("--memory-tolerance", type=click.FloatRange(min=0), default=0.10, show_default=True)
@click.option("--cost-tolerance", type=click.FloatRange(min=0), default=0.10, show_default=True)
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option(
    "--reports",
    type=click.Path(file_okay=False),
    help="report folder (default: RESULTS/reports/<suite>/<date>)",
)
def nightly(
    suite: str,
    output: str | None,
    limit: int | None,
    baseline: str | None,
    no_run: bool,
    latency_tolerance: float,
    memory_tolerance: float,
    cost_tolerance: float,
    alpha: float,
    reports: str | None,
) -> None:
    """Run SUITE, compare with the previous comparable run and write verdict.json, report.md and
    report.html. Exit 1 when anything regressed, 0 otherwise, 2 on a usage error."""
    from bench import store
    from bench.config import load_suite
    from bench.display import RichDisplay, report_console
    from bench.nightly import Tolerances, judge
    from bench.nightly_report import calibration_line, write_reports
    from bench.runner import apply_overrides, execute, plan_run
    from bench.templates import check_suite

    root = results_root(output)
    s = apply_overrides(load_suite(suite), limit=limit)
    check_suite(s, suite)
    if baseline is not None:  # checked before anything runs
        try:
            chosen = store.find_run(root, baseline)
        except BenchError as e:
            raise BenchError(f"--baseline: {e}") from None
        if chosen.get("suite") != s.name:
            raise BenchError(
                f"--baseline: run {chosen['run_id']} is of suite {chosen.get('suite')!r}, not {s.name!r}"
            )
        baseline = chosen["run_id"]
    if no_run:
        runs = [r for r in store.list_runs(root) if r.get("suite") == s.name]
        if not runs:
            raise BenchError(f"--no-run: no stored run of suite {s.name!r} under {root}")
        run_id = runs[0]["run_id"]
    else:
        plan = plan_run(s, root)
        with RichDisplay() as display:
            execute(plan, display)
        run_id = plan.run_id
    tol = Tolerances(latency=latency_tolerance, memory=memory_tolerance, cost=cost_tolerance, alpha=alpha)
    v = judge(root, run_id, tol, baseline=baseline)
    out = write_reports(root, v, Path(reports) if reports else None)
    console = report_console()
    console.print(f"baseline: {v.baseline_run_id or '-'} ({v.baseline_reason})")
    console.print(f"machine calibration: {calibration_line(v)}")
    for f in v.regressed + v.improved:
        style = "red" if f.verdict == "regressed" else "green"
        extra = f", p={f.p_value:.3g}" if f.p_value is not None else ""
        console.print(
            f"[{style}]{f.verdict}[/] {f.model} · {f.task} · {f.aspect}: {f.before} -> {f.after}{extra} {f.detail}"
        )
    console.print(f"{'REGRESSED' if v.regressed else 'ok'}: reports in {out}")
    sys.exit(1 if v.regressed else 0)


@app.command()
@click.option("--keep-last", type=click.IntRange(min=1), required=True, help="runs to keep per suite")
@click.option("--suite", "suite_name", help="only this suite")
@click.option("--dry-run", is_flag=True, help="list what would go")
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
def gc(keep_last: int, suite_name: str | None, dry_run: bool, output: str | None) -> None:
    """Delete all but the newest N runs of each suite. Safe while the dashboard reads: a run leaves
    the store in one atomic rename before its files are removed."""
    from bench import store

    removed = store.prune(results_root(output), keep_last=keep_last, suite=suite_name, dry_run=dry_run)
    for path in removed:
        click.echo(f"{'would remove' if dry_run else 'removed'} {path}")
    click.echo(f"{len(removed)} run(s) {'to remove' if dry_run else 'removed'}")


@app.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="list the runs that would get a summary")
def consolidate(results_dir: str | None, dry_run: bool) -> None:
    """Give every finished run under RESULTS_DIR its summary.parquet (one file with all its runs-*
    rows), so the dashboard's first visit reads one file per run. `bench run` writes it at the end
    of a run; this is for runs written before, copied stores and killed runs."""
    from bench import store

    done = store.consolidate_store(results_root(results_dir), dry_run=dry_run)
    for path in done:
        click.echo(f"{'would write' if dry_run else 'wrote'} {path / store.SUMMARY_FILE}")
    click.echo(f"{len(done)} run(s) {'to consolidate' if dry_run else 'consolidated'}")


@app.command()
@click.argument("results_dir", required=False, type=click.Path(file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind (0.0.0.0 to share)")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
def dashboard(results_dir: str | None, host: str, port: int) -> None:
    """Open the Streamlit leaderboard on RESULTS_DIR (read only: it never writes or runs models)."""
    from bench.dashboard_data import launch

    sys.exit(launch(str(results_root(results_dir)), host=host, port=port, headless=True))


@app.command("compare")
@click.argument("run_a")
@click.argument("run_b", required=False)
@click.option(
    "--models", help="A,B: two models (of RUN_A, or one per run); default: the models both runs share"
)
@click.option("--tasks", help="comma-separated tasks to compare (default: all shared)")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="significance level")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
@click.option("--output", "-o", type=click.Path(file_okay=False), help=RESULTS_HELP)
def compare_cmd(
    run_a: str,
    run_b: str | None,
    models: str | None,
    tasks: str | None,
    alpha: float,
    as_json: bool,
    output: str | None,
) -> None:
    """Paired comparison of two models on shared items: differences, CIs and p-values per task.

    `bench compare RUN --models a,b` compares two models of one run; `bench compare RUN_A RUN_B`
    compares each model the two runs share (or the pair given with --models)."""
    import json

    from rich.table import Table

    from bench import store
    from bench.compare import Side, compare_many
    from bench.display import report_console

    root = results_root(output)
    ra = store.find_run(root, run_a)
    rb = store.find_run(root, run_b) if run_b else ra
    names = _csv(models)
    if names and len(names) != 2:
        raise BenchError("--models takes exactly two names: A,B")
    if names:
        pairs = [(Side(ra["run_id"], names[0]), Side(rb["run_id"], names[1]))]
    elif run_b:
        ma = {m["name"] for m in ra.get("suite_config", {}).get("models", [])}
        mb = {m["name"] for m in rb.get("suite_config", {}).get("models", [])}
        pairs = [(Side(ra["run_id"], m), Side(rb["run_id"], m)) for m in sorted(ma & mb)]
        if not pairs:
            raise BenchError("the two runs share no model; name the pair with --models A,B")
    else:
        raise BenchError("compare two runs, or two models of one run with --models A,B")
    results: list[dict[str, Any]] = []
    # one family of tests: p-values are adjusted (Benjamini-Hochberg) over every pair and task
    found = compare_many(root, pairs, tasks=_csv(tasks) or None, alpha=alpha)
    for (a, b), rows in zip(pairs, found, strict=True):
        results.append({"a": a.label(b), "b": b.label(a), "tasks": [r.to_dict() for r in rows]})
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    console = report_console()
    for res in results:
        t = Table(title=f"A = {res['a']}  vs  B = {res['b']}  (paired, shared items)")
        for c in ("task", "metric", "n", "A", "B", "A - B", "95% CI", "p", "p adj (BH)", "test", "verdict"):
            t.add_column(c, justify="left" if c in ("task", "metric", "test", "verdict") else "right")
        for r in res["tasks"]:
            style = "green" if r["verdict"] == "A better" else "red" if r["verdict"] == "B better" else ""
            t.add_row(
                r["task"],
                r["metric"],
                str(r["n"]),
                f"{r['a']:.3f}",
                f"{r['b']:.3f}",
                f"{r['diff']:+.3f}",
                f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                f"{r['p_value']:.3g}",
                f"{r['p_adjusted']:.3g}",
                r["test"],
                f"[{style}]{r['verdict']}[/]" if style else r["verdict"],
            )
        console.print(t)


@app.group()
def data() -> None:
    """Materialize catalog datasets ahead of a run (they are fetched on first use otherwise)."""


@data.command("fetch")
@click.argument("names", nargs=-1)
def data_fetch(names: tuple[str, ...]) -> None:
    from bench.catalog import DATASETS
    from bench.data import load_dataset

    for n in names or [n for n in DATASETS if not n.startswith("mmlu_")]:
        recs = load_dataset(n)
        click.echo(f"{n}: {len(recs)} records")


from bench.cli_ls import ls  # noqa: E402  (light: click only; each listing imports what it shows)
from bench.cli_rescore import rescore_command  # noqa: E402  (light: click only)
from bench.load.cli import load_command  # noqa: E402  (light: click only; the sweep loads on use)

app.add_command(ls)
app.add_command(load_command)
app.add_command(rescore_command)


def main(argv: list[str] | None = None) -> None:
    try:
        app.main(args=argv, prog_name="bench", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except BenchError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)


if __name__ == "__main__":
    main()
