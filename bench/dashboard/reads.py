"""The results store as the dashboard reads it: the --results directory and cached reads.

Reads are cached with st.cache_data keyed on a scan of the store's run folders (mtime and entry
count), so a new or resumed run shows up on the next rerun and nothing is read twice otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from bench import dashboard_data as dd

SAMPLE_COLUMNS = (
    "item_id",
    "prompt",
    "reference",
    "prediction",
    "raw_output",
    "extracted",
    "correct",
    "score",
    "confidence",
    "latency_s",
    "input_tokens",
    "output_tokens",
    "error",
)


def results_dir() -> Path:
    """--results DIR after `--` on the streamlit command line, else $BENCH_RESULTS_DIR, else ./results."""
    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument("--results")
    args, _ = ap.parse_known_args(sys.argv[1:])
    return Path(args.results or os.environ.get("BENCH_RESULTS_DIR") or "results")


@st.cache_data(show_spinner="Reading the runs tables…", max_entries=4)
def _cached_runs(root: str, key: str, _scan: tuple[dd.RunDir, ...]) -> pd.DataFrame:
    del key  # the cache key: changes whenever a run folder does
    return dd.load_primary_runs(root, _scan)


@st.cache_data(show_spinner="Reading per-item rows…", max_entries=64)
def _cached_samples(
    root: str,
    key: str,
    run_ids: tuple[str, ...],
    columns: tuple[str, ...],
    models: tuple[str, ...] | None,
    tasks: tuple[str, ...] | None,
    _runs: pd.DataFrame,
) -> pd.DataFrame:
    del key
    return dd.read_samples(root, _runs, run_ids, columns, models=models, tasks=tasks)


@st.cache_data(max_entries=16)
def _cached_manifests(root: str, key: str, run_ids: tuple[str, ...], _runs: pd.DataFrame) -> pd.DataFrame:
    del key
    return dd.read_manifests(root, _runs, run_ids)


class Store:
    """The results store as this rerun sees it: the primary runs rows and the cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        scan = dd.scan_store(root)
        self.key = dd.signature_key(scan)
        self.runs = _cached_runs(str(root), self.key, scan)

    def samples(
        self,
        run_ids: Sequence[str],
        columns: Sequence[str] = SAMPLE_COLUMNS,
        models: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        return _cached_samples(
            str(self.root),
            self.key,
            tuple(run_ids),
            tuple(columns),
            None if models is None else tuple(models),
            None if tasks is None else tuple(tasks),
            self.runs,
        )

    def manifests(self, run_ids: Sequence[str]) -> pd.DataFrame:
        return _cached_manifests(str(self.root), self.key, tuple(run_ids), self.runs)
