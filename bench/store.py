"""The results store: Parquet files under results/, append-only and atomic.

Layout: <root>/<suite>/<YYYY-MM-DD>/<run_id>/
    run.json                              the run's manifest (suite, hash, provenance)
    samples-<model>-<task>-<seq>-<writer>.parquet  one row per item, written per batch
    runs-<model>-<task>.parquet           one row per metric of (model, task), rewritten at task end
    summary.parquet                       every runs-* row of the run in one file, written at run end
Every file is written under a dot-prefixed temporary name and renamed into place, so a killed run
never leaves a broken file. A resumed run skips the (model, task, item) rows already answered and
re-runs the ones stored with an error; every reader goes through `read_samples`, which keeps one row
per (run, model, task, item): its latest attempt.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench.errors import BenchError
from bench.schema import RUNS_SCHEMA, SAMPLES_SCHEMA, SCHEMA_VERSION

__all__ = [
    "RUNS_SCHEMA",
    "SAMPLES_SCHEMA",
    "SAMPLE_KEY",
    "SCHEMA_VERSION",
    "SUMMARY_FILE",
    "RunWriter",
    "Samples",
    "consolidate",
    "consolidate_store",
    "find_run",
    "list_runs",
    "new_run_id",
    "prune",
    "read_manifest",
    "read_samples",
    "rows_to_table",
    "run_dir",
    "runs_dataset",
    "runs_sources",
    "safe_name",
    "samples_dataset",
    "try_consolidate",
    "write_json",
    "write_manifest",
    "write_table",
]


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

    def attempts(self) -> dict[str, tuple[int, bool]]:
        """Each stored item's latest attempt number and whether it was answered (no error)."""
        t = self.read_samples(["item_id", "attempt", "error"])
        return {
            i: (a or 1, e is None)
            for i, a, e in zip(*(t.column(c).to_pylist() for c in t.column_names), strict=True)
        }

    def done_items(self) -> set[str]:
        """Items a resume skips: those whose latest attempt has no error (errors are re-run)."""
        return {i for i, (_, ok) in self.attempts().items() if ok}

    def read_samples(self, columns: list[str] | None = None) -> pa.Table:
        return read_samples([str(f) for f in self.sample_files()], columns)

    def drop_superseded(self) -> int:
        """Rewrite the parts that hold rows a later attempt replaced, without those rows, so the
        files themselves (read by pyarrow, pandas or duckdb directly) keep one row per item.

        A row goes only when a later attempt of its item is in another file, and every file is
        replaced atomically, so a kill at any point loses nothing: `read_samples` hides what is
        left over and the next resume finishes the job. A part left without rows stays as an
        empty file, so a reader that has just listed the folder never finds it missing.
        Returns the number of rows dropped."""
        files = self.sample_files()
        parts = [_read_parts([str(f)], [*SAMPLE_KEY, "attempt", "started_at"]) for f in files]
        if not parts:
            return 0
        sizes = [p.num_rows for p in parts]
        keep = set(_latest_rows(pa.concat_tables(parts)))
        dropped, start = 0, 0
        for f, n in zip(files, sizes, strict=True):
            mine = [i - start for i in range(start, start + n) if i in keep]
            start += n
            if len(mine) < n:
                write_table(f, _read_parts([str(f)], None).take(pa.array(mine, pa.int64())), SAMPLES_SCHEMA)
                dropped += n - len(mine)
        return dropped


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


SAMPLE_KEY = ("run_id", "model", "task", "item_id")


def _read_parts(files: Sequence[str], columns: Sequence[str] | None, filter: Any = None) -> pa.Table:
    """The raw rows of sample files, older files' missing columns as nulls; every attempt."""
    if not files:
        t = SAMPLES_SCHEMA.empty_table()
        return t if columns is None else t.select(list(columns))
    dataset = ds.dataset(list(files), schema=SAMPLES_SCHEMA, format="parquet")
    return dataset.to_table(columns=None if columns is None else list(columns), filter=filter)


def _latest_rows(table: pa.Table) -> list[int]:
    """Positions, in order, of each (run, model, task, item)'s latest attempt in `table` (which
    has the SAMPLE_KEY, attempt and started_at columns): the highest attempt (null counts as 1),
    then the latest start, then the later position."""
    import pandas as pd

    keys = pd.DataFrame({k: table.column(k).to_numpy(zero_copy_only=False) for k in SAMPLE_KEY})
    if not keys.duplicated().any():
        return list(range(table.num_rows))
    keys["_attempt"] = table.column("attempt").fill_null(1).to_numpy(zero_copy_only=False)
    started = table.column("started_at").cast(pa.int64()).fill_null(-(2**62))
    keys["_started"] = started.to_numpy(zero_copy_only=False)
    order = keys.sort_values(["_attempt", "_started"], kind="stable")
    return sorted(order.drop_duplicates(list(SAMPLE_KEY), keep="last").index)


def read_samples(files: Sequence[str], columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
    """Rows of sample files with one row per (run, model, task, item): its latest attempt.

    The one place where retried items are resolved; every reader in bench goes through it.
    `filter` is pushed into the scan, so it may only name SAMPLE_KEY columns (a condition on any
    other column, such as `error`, would pick among an item's attempts: apply it afterwards)."""
    want = list(columns) if columns is not None else SAMPLES_SCHEMA.names
    extra = [c for c in (*SAMPLE_KEY, "attempt", "started_at") if c not in want]
    t = _read_parts(files, [*want, *extra], filter)
    rows = _latest_rows(t)
    return (t if len(rows) == t.num_rows else t.take(pa.array(rows, pa.int64()))).select(want)


@dataclass(frozen=True)
class Samples:
    """The sample files of a store (or of some runs in it), read through `read_samples`."""

    files: tuple[str, ...]

    def to_table(self, columns: Sequence[str] | None = None, filter: Any = None) -> pa.Table:
        return read_samples(self.files, columns, filter)


def samples_dataset(root: Path, run_ids: Iterable[str] | None = None) -> Samples:
    return Samples(tuple(_files(Path(root), "samples", run_ids)))


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
