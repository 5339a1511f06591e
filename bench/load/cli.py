"""`bench load SUITE`: the suite's load sweep, with every part of its `load:` block settable on
the command line (the choices become part of the suite, and so of its hash and resume key)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bench.errors import ConfigError

SLO_KEYS = ("ttft_s", "itl_s", "e2e_s")


def _numbers(value: str | None, cast: type) -> list[Any] | None:
    if value is None:
        return None
    try:
        return [cast(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {value!r}") from None


def _names(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def with_load(suite: Any, opts: dict[str, Any], slo: dict[str, float | None]) -> Any:
    """The suite with the command line's load options applied (None: keep the suite's)."""
    from pydantic import ValidationError

    from bench.config import Suite

    data = suite.model_dump(mode="python")
    load = dict(data.get("load") or {})
    load.update({k: v for k, v in opts.items() if v is not None})
    load["slo"] = {**dict(load.get("slo") or {}), **{k: v for k, v in slo.items() if v is not None}}
    data["load"] = load
    try:
        return Suite.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"load options: {where}: {err['msg']}") from None


@click.command("load")
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(file_okay=False), help="results directory")
@click.option("--models", help="comma-separated model names from the suite")
@click.option("--tasks", help="comma-separated task names from the suite")
@click.option("--limit", type=click.IntRange(min=1), help="items per task")
@click.option("--concurrency", "concurrencies", help="closed-loop levels, e.g. 1,2,4")
@click.option("--rates", help="open-loop levels in requests/s, e.g. 0.5,1,2")
@click.option("--synchronous/--no-synchronous", default=None, help="the one-at-a-time level")
@click.option("--max", "max_", is_flag=True, default=None, help="add the max-throughput level")
@click.option("--arrivals", type=click.Choice(["poisson", "gamma", "constant"]))
@click.option("--burstiness", type=click.FloatRange(min=0, min_open=True), help="gamma shape (1 = Poisson)")
@click.option("--requests", type=click.IntRange(min=1), help="requests per level (default: the items)")
@click.option("--duration-s", type=click.FloatRange(min=0, min_open=True), help="per level cap")
@click.option("--seed", type=int, help="arrival times (default: the suite seed)")
@click.option("--timeout-s", type=click.FloatRange(min=0, min_open=True), help="per request")
@click.option("--slo-ttft-s", type=click.FloatRange(min=0, min_open=True))
@click.option("--slo-itl-s", type=click.FloatRange(min=0, min_open=True), help="on each request's TPOT")
@click.option("--slo-e2e-s", type=click.FloatRange(min=0, min_open=True))
@click.option("--usd-per-hour", type=click.FloatRange(min=0), help="machine cost (overrides the suite)")
@click.option("--resume", is_flag=True, help="continue the latest sweep of this exact suite")
@click.option("--run-id", help="resume this run id")
def load_command(
    suite: str,
    output: str | None,
    models: str | None,
    tasks: str | None,
    limit: int | None,
    concurrencies: str | None,
    rates: str | None,
    synchronous: bool | None,
    max_: bool | None,
    arrivals: str | None,
    burstiness: float | None,
    requests: int | None,
    duration_s: float | None,
    seed: int | None,
    timeout_s: float | None,
    slo_ttft_s: float | None,
    slo_itl_s: float | None,
    slo_e2e_s: float | None,
    usd_per_hour: float | None,
    resume: bool,
    run_id: str | None,
) -> None:
    """Sweep SUITE's models over load levels: latency percentiles, goodput under the SLO, and the
    accuracy and cost of the answers served at each level, on the same items.

    Exit code: 0 when every model ran, 1 when a model failed, 2 on bad input."""
    from bench.config import load_suite
    from bench.display import report_console
    from bench.load.sweep import run_sweep
    from bench.load.table import print_sweep
    from bench.runner import apply_overrides, default_results_dir

    s = apply_overrides(
        load_suite(suite), limit=limit, models=_names(models), tasks=_names(tasks), usd_per_hour=usd_per_hour
    )
    opts = {
        "concurrencies": _numbers(concurrencies, int),
        "rates": _numbers(rates, float),
        "synchronous": synchronous,
        "max": max_,
        "arrivals": arrivals,
        "burstiness": burstiness,
        "requests": requests,
        "duration_s": duration_s,
        "seed": seed,
        "timeout_s": timeout_s,
    }
    s = with_load(s, opts, {"ttft_s": slo_ttft_s, "itl_s": slo_itl_s, "e2e_s": slo_e2e_s})
    console = report_console()

    def show(e: dict[str, Any]) -> None:
        if e["type"] == "level_done":
            r = e["row"]
            click.echo(
                f"{e['model']} · {e['task']} · {e['level']}: {r['n_requests']} requests, "
                f"{r['requests_per_s']:.2f} req/s, {r['n_errors']} errors",
                err=True,
            )
        elif e["type"] == "level_skipped":
            click.echo(f"{e['model']} · {e['task']} · {e['level']}: stored, skipped", err=True)
        elif e["type"] in ("note", "model_error"):
            click.echo(
                f"{e['type'].replace('_', ' ')}: {e.get('text') or e['model'] + ': ' + e['error']}", err=True
            )

    root = Path(output) if output else default_results_dir()
    result = run_sweep(s, root, resume=resume, run_id=run_id, emit=show)
    print_sweep(console, result.levels)
    console.print(f"run {result.run_id}: {result.dir}")
    if result.errors:
        sys.exit(1)
