"""What every `bench` subcommand module shares (kept light: click and pathlib only)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RESULTS_HELP", "results_root"]

RESULTS_HELP = "results directory (default: $BENCH_RESULTS_DIR or ./results)"


def results_root(output: str | None) -> Path:
    """The results directory a command reads or writes: --output, else the default."""
    from bench.runner import default_results_dir

    return Path(output) if output else default_results_dir()
