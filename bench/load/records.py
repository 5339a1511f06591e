"""Where a sweep's rows live: beside the run's other files, one pair of Parquet files per
(model, task, level), written through bench.store (atomic rename) when the level ends.

    <run dir>/load-requests-<model>-<task>-<level>.parquet   one row per request
    <run dir>/load-levels-<model>-<task>-<level>.parquet     the level's figures, one row

The level file is written last, so it marks a finished level: a killed sweep resumed with
`bench load --resume` skips the levels that have one and reruns the one it was in.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from bench import store

PROVENANCE = [store.SAMPLES_SCHEMA.field(n) for n in store.SAMPLES_SCHEMA.names[:12]]  # run_id .. backend
_LEVEL = [
    ("level", pa.string()),  # sync, c4, r0.5, max
    ("level_kind", pa.string()),  # synchronous, concurrency, rate, max
    ("level_value", pa.float64()),  # in flight (concurrency) or requests/s (rate)
    ("level_index", pa.int64()),  # position in the sweep
    ("arrivals", pa.string()),
    ("burstiness", pa.float64()),
    ("level_started_at", pa.timestamp("us", tz="UTC")),
]

REQUESTS_SCHEMA = pa.schema(
    PROVENANCE
    + _LEVEL
    + [
        ("seq", pa.int64()),  # the request's place in the level's send order
        ("item_id", pa.string()),
        ("item_index", pa.int64()),
        ("scheduled_s", pa.float64()),  # seconds from the level's start: when the profile sends it
        ("start_s", pa.float64()),  # sent
        ("first_token_s", pa.float64()),  # first content piece
        ("end_s", pa.float64()),  # last piece (or the error)
        ("ttft_s", pa.float64()),
        ("e2e_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("itl_s", pa.list_(pa.float64())),  # every gap between content pieces
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("error", pa.string()),
        ("timed_out", pa.bool_()),
        ("prompt_hash", pa.string()),
        ("raw_output", pa.string()),
        ("prediction", pa.string()),
        ("reference", pa.string()),
        ("score", pa.float64()),
        ("correct", pa.bool_()),
    ]
)

_FIGURES = [
    ("n_requests", pa.int64()),
    ("n_errors", pa.int64()),
    ("n_timeouts", pa.int64()),
    ("n_scored", pa.int64()),
    ("duration_s", pa.float64()),
    ("requests_per_s", pa.float64()),
    ("output_tokens_per_s", pa.float64()),
    ("achieved_concurrency", pa.float64()),
    ("error_rate", pa.float64()),
    ("timeout_rate", pa.float64()),
    ("schedule_lag_p99_s", pa.float64()),
    *[
        (f"{m}_{s}", pa.float64())
        for m in ("ttft", "itl", "tpot", "e2e")
        for s in ("p50", "p90", "p95", "p99", "mean")
    ],
    ("slo", pa.string()),
    ("goodput_per_s", pa.float64()),
    ("slo_share", pa.float64()),
    ("slo_met", pa.bool_()),
    ("metric", pa.string()),
    ("accuracy", pa.float64()),
    ("accuracy_low", pa.float64()),
    ("accuracy_high", pa.float64()),
    ("ci_method", pa.string()),
    ("usd_per_hour", pa.float64()),
    ("cost_usd", pa.float64()),
    ("usd_per_1k_requests", pa.float64()),
    ("usd_per_correct", pa.float64()),
    # against the sweep's first level on the same items (bench.load.metrics.accuracy_vs_baseline)
    ("vs_level", pa.string()),
    ("accuracy_diff", pa.float64()),
    ("p_value", pa.float64()),
    ("p_adjusted", pa.float64()),
    ("accuracy_changed", pa.bool_()),
    ("note", pa.string()),
    ("finished_at", pa.timestamp("us", tz="UTC")),
    ("python_version", pa.string()),
    ("packages", pa.string()),
    ("hardware_info", pa.string()),
]
LEVELS_SCHEMA = pa.schema(PROVENANCE + _LEVEL + _FIGURES)


def _stem(model: str, task: str, level: str) -> str:
    return f"{store.safe_name(model)}-{store.safe_name(task)}-{store.safe_name(level)}"


def level_path(directory: Path, model: str, task: str, level: str) -> Path:
    return directory / f"load-levels-{_stem(model, task, level)}.parquet"


def write_level(directory: Path, requests: list[dict], level_row: dict) -> None:
    """The level's request rows, then its figures (the level counts as finished once that exists)."""
    s = _stem(level_row["model"], level_row["task"], level_row["level"])
    store.write_table(directory / f"load-requests-{s}.parquet", requests, REQUESTS_SCHEMA)
    store.write_table(directory / f"load-levels-{s}.parquet", [level_row], LEVELS_SCHEMA)


def rewrite_level(directory: Path, level_row: dict) -> None:
    """Replace a finished level's figures (the accuracy test against other levels is redone)."""
    store.write_table(
        level_path(directory, level_row["model"], level_row["task"], level_row["level"]),
        [level_row],
        LEVELS_SCHEMA,
    )


def _read(root: Path, prefix: str, schema: pa.Schema, run_ids: Iterable[str] | None) -> pd.DataFrame:
    root = Path(root)
    wanted = set(run_ids) if run_ids is not None else None
    files = sorted(
        str(p)
        for p in root.rglob(f"{prefix}-*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
        and (wanted is None or p.parent.name in wanted)
    )
    table = ds.dataset(files, schema=schema, format="parquet").to_table() if files else schema.empty_table()
    return table.to_pandas()


def read_levels(root: Path, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Every stored level row under `root` (or of some runs), in sweep order."""
    df = _read(root, "load-levels", LEVELS_SCHEMA, run_ids)
    return df.sort_values(["run_id", "model", "task", "level_index"], kind="stable").reset_index(drop=True)


def read_requests(root: Path, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
    return _read(root, "load-requests", REQUESTS_SCHEMA, run_ids)
