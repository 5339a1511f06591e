"""The results store: Parquet files under results/, append-only and atomic.

Layout: <root>/<suite>/<YYYY-MM-DD>/<run_id>/
    run.json                              the run's manifest (suite, hash, provenance)
    samples-<model>-<task>-<seq>-<writer>.parquet  one row per item, written per batch
    runs-<model>-<task>.parquet           one row per metric of (model, task), rewritten at task end
    summary.parquet                       every runs-* row of the run in one file, written at run end
Every file is written under a dot-prefixed temporary name and renamed into place, so a killed run
never leaves a broken file; a resumed run skips the (model, task, item) rows already stored.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench.errors import BenchError

SCHEMA_VERSION = 1

_RUN_COLS: list[tuple[str, pa.DataType]] = [
    ("run_id", pa.string()),
    ("suite", pa.string()),
    ("suite_hash", pa.string()),
    ("seed", pa.int64()),
    ("bench_version", pa.string()),
    ("git_sha", pa.string()),
    ("hardware", pa.string()),
    ("task", pa.string()),
    ("task_kind", pa.string()),
    ("dataset", pa.string()),
    ("model", pa.string()),
    ("backend", pa.string()),
]

SAMPLES_SCHEMA = pa.schema(
    _RUN_COLS
    + [
        ("item_id", pa.string()),
        ("item_index", pa.int64()),
        ("method", pa.string()),
        ("prompt_hash", pa.string()),
        ("prompt", pa.string()),
        ("prediction", pa.string()),
        ("pred_index", pa.int64()),
        ("reference", pa.string()),
        ("gold_index", pa.int64()),
        ("correct", pa.bool_()),
        ("score", pa.float64()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("choice_logliks", pa.list_(pa.float64())),
        ("confidence", pa.float64()),
        ("gold_prob", pa.float64()),
        ("raw_output", pa.string()),
        ("extracted", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("tokens_evaluated", pa.int64()),
        ("ttft_s", pa.float64()),
        ("latency_s", pa.float64()),
        ("tpot_s", pa.float64()),
        ("wall_s", pa.float64()),
        ("energy_j", pa.float64()),
        ("mode", pa.string()),
        ("concurrency", pa.int64()),
        ("warmup", pa.bool_()),
        ("error", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
    ]
)

RUNS_SCHEMA = pa.schema(
    _RUN_COLS
    + [
        ("status", pa.string()),
        ("error", pa.string()),
        ("metric", pa.string()),
        ("primary", pa.bool_()),
        ("higher_is_better", pa.bool_()),
        ("value", pa.float64()),
        ("stderr", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("n", pa.int64()),
        ("n_errors", pa.int64()),
        ("num_fewshot", pa.int64()),
        ("item_limit", pa.int64()),
        ("model_params", pa.int64()),
        ("quant", pa.string()),
        ("model_file_mb", pa.float64()),
        ("latency_p50", pa.float64()),
        ("latency_p90", pa.float64()),
        ("latency_p95", pa.float64()),
        ("latency_p99", pa.float64()),
        ("ttft_p50", pa.float64()),
        ("ttft_p90", pa.float64()),
        ("tokens_per_s", pa.float64()),
        ("prompt_tokens_per_s", pa.float64()),
        ("decode_tokens_per_s", pa.float64()),
        ("items_per_s", pa.float64()),
        ("wall_s", pa.float64()),
        ("load_s", pa.float64()),
        ("mode", pa.string()),
        ("concurrency", pa.int64()),
        ("device", pa.string()),
        ("peak_rss_mb", pa.float64()),
        ("rss_sampled_peak_mb", pa.float64()),
        ("gpu_peak_mb", pa.float64()),
        ("energy_j", pa.float64()),
        ("usd_per_hour", pa.float64()),
        ("cost_usd", pa.float64()),
        ("usd_per_1k_items", pa.float64()),
        ("usd_per_correct", pa.float64()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("python_version", pa.string()),
        ("packages", pa.string()),  # JSON: {"llama-cpp-python": "0.3.36", ...}
        ("hardware_info", pa.string()),  # JSON: cpu, cores, memory, os, gpu
    ]
)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", name)[:80] or "_"


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def run_dir(root: Path, suite: str, run_id: str) -> Path:
    day = f"{run_id[0:4]}-{run_id[4:6]}-{run_id[6:8]}"
    return root / safe_name(suite) / day / run_id


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def rows_to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as a table of `schema`; missing keys become nulls, the `scores` dict a map."""
    cols = {name: [r.get(name) for r in rows] for name in schema.names}
    if "scores" in cols:
        cols["scores"] = [list(v.items()) if isinstance(v, Mapping) else v for v in cols["scores"]]
    return pa.Table.from_pydict(cols, schema=schema)


def write_table(path: Path, rows: Sequence[Mapping[str, Any]] | pa.Table, schema: pa.Schema) -> None:
    """Write rows as one Parquet file, atomically: a temp name in the same folder, then rename."""
    table = rows.cast(schema) if isinstance(rows, pa.Table) else rows_to_table(rows, schema)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(path / "run.json", json.dumps(manifest, indent=2, sort_keys=True).encode())


def read_manifest(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / "run.json").read_text()))


class RunWriter:
    """Appends sample parts for one (model, task) of a run and rewrites its summary."""

    def __init__(self, directory: Path, model: str, task: str) -> None:
        self.dir = directory
        self.stem = f"{safe_name(model)}-{safe_name(task)}"
        # Parts are named <seq>-<writer>: writers of other shards (other processes, other nodes)
        # append to the same (model, task) side by side without ever picking the same name.
        self.tag = f"{os.getpid()}{uuid.uuid4().hex[:6]}"
        prefix = f"samples-{self.stem}-"
        seqs = [p.stem[len(prefix) :].split("-")[0] for p in self.dir.glob(f"{prefix}*.parquet")]
        self.seq = max((int(x) for x in seqs if x.isdigit()), default=-1) + 1

    def append(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        path = self.dir / f"samples-{self.stem}-{self.seq:06d}-{self.tag}.parquet"
        write_table(path, rows, SAMPLES_SCHEMA)
        self.seq += 1
        return path

    def write_warmup(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        path = self.dir / f"warmup-{self.stem}-{self.seq:06d}-{self.tag}.parquet"
        write_table(path, rows, SAMPLES_SCHEMA)
        return path

    def write_summary(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        path = self.dir / f"runs-{self.stem}.parquet"
        write_table(path, rows, RUNS_SCHEMA)
        return path

    def sample_files(self) -> list[Path]:
        return sorted(self.dir.glob(f"samples-{self.stem}-*.parquet"))

    def done_items(self) -> set[str]:
        files = self.sample_files()
        if not files:
            return set()
        t = ds.dataset([str(f) for f in files], schema=SAMPLES_SCHEMA, format="parquet").to_table(
            columns=["item_id"]
        )
        return set(t.column("item_id").to_pylist())

    def read_samples(self, columns: list[str] | None = None) -> pa.Table:
        files = self.sample_files()
        if not files:
            return SAMPLES_SCHEMA.empty_table()
        return ds.dataset([str(f) for f in files], schema=SAMPLES_SCHEMA, format="parquet").to_table(
            columns=columns
        )


# ---------------------------------------------------------------------- the run's summary file

SUMMARY_FILE = "summary.parquet"


def consolidate(directory: Path) -> Path | None:
    """Write `summary.parquet`: every runs-* row of the run folder in one file (RUNS_SCHEMA).

    The runs-* files stay the record; the summary saves readers of many runs (the dashboard's
    first visit to a store) one Parquet footer per (model, task). Returns None for a folder
    without runs files.
    """
    files = sorted(directory.glob("runs-*.parquet"))
    if not files:
        return None
    newest = max(f.stat().st_mtime_ns for f in files)  # before reading: a later rewrite stays newer
    table = ds.dataset([str(f) for f in files], schema=RUNS_SCHEMA, format="parquet").to_table()
    path = directory / SUMMARY_FILE
    write_table(path, table, RUNS_SCHEMA)
    st = path.stat()
    if st.st_mtime_ns < newest:  # a source stamped ahead of this clock (another machine, a copy)
        os.utime(path, ns=(st.st_atime_ns, newest))
    return path


def try_consolidate(directory: Path) -> Path | None:
    """`consolidate` at the end of a run, where a failure (a full disk) must not fail the run: the
    summary only speeds reading, and without it readers use the runs-* files."""
    try:
        return consolidate(directory)
    except (OSError, pa.ArrowException):
        return None


def runs_sources(directory: Path) -> list[Path]:
    """The files that hold a run folder's runs rows: its summary when the summary is at least as
    new as every runs-* file (so a resumed or still running run that rewrote one since is read
    from its runs-* files), else the runs-* files."""
    summary = -1
    runs: dict[str, int] = {}
    try:
        with os.scandir(directory) as it:
            for e in it:
                if e.name == SUMMARY_FILE:
                    summary = e.stat().st_mtime_ns
                elif e.name.startswith("runs-") and e.name.endswith(".parquet"):
                    runs[e.name] = e.stat().st_mtime_ns
    except OSError:
        return []
    if runs and summary >= max(runs.values()):
        return [directory / SUMMARY_FILE]
    return [directory / name for name in sorted(runs)]


def consolidate_store(root: Path, *, dry_run: bool = False) -> list[Path]:
    """Write the summary of every run folder under `root` whose summary is missing or older than
    one of its runs-* files (runs from before summaries existed, copied stores, killed runs).
    A run being written (its lock held by a bench process) is left to that process."""
    import fcntl

    done = []
    for directory in sorted({Path(f).parent for f in _files(Path(root), "runs")}):
        if runs_sources(directory) == [directory / SUMMARY_FILE]:
            continue
        lock = directory / ".lock"
        with open(lock if lock.exists() else os.devnull) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if not dry_run:
                consolidate(directory)
        done.append(directory)
    return done


# ---------------------------------------------------------------------- reading the store


def _hidden(p: Path, root: Path) -> bool:
    """Dot-named folders (a run being deleted, temporary files) are not part of the store."""
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def _files(root: Path, prefix: str, run_ids: Iterable[str] | None = None) -> list[str]:
    if not root.exists():
        return []
    wanted = set(run_ids) if run_ids is not None else None
    out = []
    for p in root.rglob(f"{prefix}-*.parquet"):
        if _hidden(p, root) or (wanted is not None and p.parent.name not in wanted):
            continue
        out.append(str(p))
    return sorted(out)


def prune(root: Path, *, keep_last: int, suite: str | None = None, dry_run: bool = False) -> list[str]:
    """Remove all but the newest `keep_last` runs of each suite. Each run is first renamed to a
    dot-name (atomic: readers see it whole or not at all), then deleted."""
    import shutil
    from collections import defaultdict

    by_suite: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in list_runs(root):
        if suite is None or r.get("suite") == suite:
            by_suite[r.get("suite", "?")].append(r)
    removed = []
    for runs in by_suite.values():
        for r in runs[keep_last:]:  # list_runs is newest first
            path = Path(r["path"])
            removed.append(str(path))
            if dry_run:
                continue
            trash = path.with_name(f".deleting-{path.name}")
            os.replace(path, trash)
            shutil.rmtree(trash, ignore_errors=True)
    return removed


def samples_dataset(root: Path, run_ids: Iterable[str] | None = None) -> ds.Dataset:
    return ds.dataset(_files(Path(root), "samples", run_ids), schema=SAMPLES_SCHEMA, format="parquet")


def runs_dataset(root: Path, run_ids: Iterable[str] | None = None) -> ds.Dataset:
    return ds.dataset(_files(Path(root), "runs", run_ids), schema=RUNS_SCHEMA, format="parquet")


def list_runs(root: Path) -> list[dict[str, Any]]:
    """Every run's manifest, newest first."""
    out = []
    for m in Path(root).rglob("run.json"):
        if _hidden(m, Path(root)):
            continue
        try:
            d = json.loads(m.read_text())
        except (OSError, ValueError):
            continue
        d["path"] = str(m.parent)
        out.append(d)
    return sorted(out, key=lambda d: (d.get("created_at", ""), d.get("run_id", "")), reverse=True)


def find_run(root: Path, ref: str) -> dict[str, Any]:
    """A run by id, unique id prefix or path."""
    p = Path(ref)
    if (p / "run.json").is_file():
        d = read_manifest(p)
        d["path"] = str(p)
        return d
    runs = list_runs(root)
    hits = [r for r in runs if r.get("run_id", "").startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise BenchError(f"no run {ref!r} under {root}")
    raise BenchError(f"run id {ref!r} is ambiguous: {', '.join(r['run_id'] for r in hits[:5])}")
