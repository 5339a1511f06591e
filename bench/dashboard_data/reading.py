"""Reading the results store for the dashboard: a scan of the run folders, the primary rows of
the runs tables (through each run's summary and a derived index), per-item rows and manifests."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench import store

# The runs-table columns the dashboard reads; packages/hardware_info JSON and the like stay on disk.
LEADERBOARD_RUN_COLUMNS: list[str] = [
    "run_id",
    "suite",
    "bench_version",
    "git_sha",
    "hardware",
    "task",
    "model",
    "backend",
    "status",
    "error",
    "metric",
    "higher_is_better",
    "value",
    "stderr",
    "ci_low",
    "ci_high",
    "ci_method",
    "n_scored",
    "n",
    "n_errors",
    "model_params",
    "quant",
    "latency_p50",
    "latency_p95",
    "tokens_per_s",
    "peak_rss_mb",
    "cost_usd",
    "usd_per_1k_items",
    "started_at",
]

DUCKDB_MIN_FILES = 64  # below this many runs files, pyarrow one by one is as fast as starting duckdb


@dataclass(frozen=True)
class RunDir:
    """A folder holding a run (run.json or result files), and what changes when it is written."""

    rel: str  # relative to the store root
    mtime_ns: int
    entries: int


def scan_store(root: str | Path) -> tuple[RunDir, ...]:
    """Every run folder under `root`, with its mtime and entry count, in path order.

    Every store write is a rename into a run folder, which bumps the folder's mtime (and a new
    file its entry count), so this changes whenever the store does, at the cost of one scandir per
    folder instead of one stat per file (a big store has 100k files). `root` may be the store, a
    suite folder or one run folder.
    """
    root = Path(root)
    out: list[RunDir] = []

    def walk(path: Path, depth: int) -> None:
        try:
            with os.scandir(path) as it:
                entries = list(it)
            st = path.stat()
        except OSError:
            return
        names = [e.name for e in entries]
        if "run.json" in names or any(n.startswith(("runs-", "samples-")) for n in names):
            out.append(RunDir(path.relative_to(root).as_posix(), st.st_mtime_ns, len(entries)))
        if depth >= 6:
            return
        for e in entries:
            if e.name.startswith(".") or e.name == "logs" or not e.is_dir(follow_symlinks=False):
                continue
            walk(Path(e.path), depth + 1)

    if root.is_dir():
        walk(root, 0)
    return tuple(sorted(out, key=lambda d: d.rel))


def signature_key(scan: Iterable[RunDir]) -> str:
    """A short hash of a store scan: the cache key of everything read from the store."""
    h = hashlib.sha1()
    for d in scan:
        h.update(f"{d.rel}\x1f{d.mtime_ns}\x1f{d.entries}\n".encode())
    return h.hexdigest()


def index_dir() -> Path:
    """Where the dashboard keeps its derived index of the runs tables (never inside the store)."""
    base = os.environ.get("BENCH_CACHE_DIR") or str(Path.home() / ".cache" / "bench")
    return Path(base) / "dashboard"


_INDEX_SCHEMA = pa.schema(
    [store.RUNS_SCHEMA.field(c) for c in LEADERBOARD_RUN_COLUMNS]
    + [pa.field("_dir", pa.string()), pa.field("_sig", pa.string())]
)


def _read_runs_files(sources: dict[str, str]) -> pa.Table:
    """Primary rows of these runs files ({path: its run folder, relative}), projected, with `_dir`.

    Per-file overhead dominates (footer decoding, ~1 ms a file on a small machine), so many files
    go through duckdb, which reads them in parallel. Files of an older schema version (a column
    added since) make duckdb bind by name, which reads every footer first (~0.3 s per 1,000
    files), so that is the second try, not the first. A few files, or no duckdb, go through
    pyarrow, which fills missing columns with nulls.
    """
    cols = LEADERBOARD_RUN_COLUMNS
    target = pa.schema([store.RUNS_SCHEMA.field(c) for c in cols] + [pa.field("_dir", pa.string())])
    if len(sources) >= DUCKDB_MIN_FILES and importlib.util.find_spec("duckdb") is not None:
        import duckdb

        sel = ", ".join(f'"{c}"' for c in cols)
        for by_name in ("false", "true"):
            try:
                with duckdb.connect() as con:
                    con.execute("SET enable_progress_bar = false")
                    query = con.sql(
                        f"SELECT {sel}, filename AS _dir FROM read_parquet($files, filename = true, "
                        f'union_by_name = {by_name}) WHERE "primary"',
                        params={"files": list(sources)},
                    )
                    # to_arrow_table (duckdb >= 1.4) was fetch_arrow_table before
                    fetch = getattr(query, "to_arrow_table", None) or query.fetch_arrow_table
                    t = fetch()
            except duckdb.Error:
                continue
            names = t.column("_dir").combine_chunks().dictionary_encode()
            dirs = pa.array([sources[f] for f in names.dictionary.to_pylist()], pa.string())
            t = t.set_column(t.schema.get_field_index("_dir"), "_dir", dirs.take(names.indices))
            return t.cast(target)
    parts = []
    for f, rel in sources.items():
        t = ds.dataset(f, schema=store.RUNS_SCHEMA, format="parquet").to_table(
            columns=cols, filter=ds.field("primary") == pa.scalar(True)
        )
        parts.append(t.append_column("_dir", pa.array([rel] * t.num_rows, pa.string())))
    return pa.concat_tables(parts) if parts else target.empty_table()


def load_primary_runs(
    root: str | Path, scan: Sequence[RunDir] | None = None, *, index: Path | bool | None = True
) -> pd.DataFrame:
    """Primary-metric rows of every runs table, only the columns the pages use, plus `_dir` (the
    run folder, relative) and `run_time`.

    Reading thousands of small Parquet files costs ~1 ms each whatever the columns, so a finished
    run is read from its one `summary.parquet` (see `store.runs_sources`), and the rows
    are kept in a derived index (one Parquet file under `index_dir()`, keyed by the store path)
    and only run folders whose mtime or entry count changed are read again. `index=False` reads
    everything; a read-only cache folder just means no index. `run_time` comes from the run id
    (bench's ids start with the UTC start time), else the task's start time.
    """
    root = Path(root)
    scan = scan_store(root) if scan is None else scan
    wanted = {d.rel: f"{d.mtime_ns}:{d.entries}" for d in scan}
    path: Path | None = None
    if index is True:
        path = (
            index_dir()
            / f"runs-index-v2-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]}.parquet"
        )
    elif isinstance(index, Path):
        path = index
    cached = _INDEX_SCHEMA.empty_table()
    if path is not None and path.is_file():
        try:
            cached = ds.dataset(str(path), schema=_INDEX_SCHEMA, format="parquet").to_table()
        except (OSError, pa.ArrowException):
            cached = _INDEX_SCHEMA.empty_table()
    have = dict(zip(cached.column("_dir").to_pylist(), cached.column("_sig").to_pylist(), strict=True))
    stale = [rel for rel, sig in wanted.items() if have.get(rel) != sig]
    keep = [rel for rel in wanted if rel not in stale]
    parts = [cached.filter(pc.is_in(cached.column("_dir"), pa.array(keep, pa.string())))]
    if stale:
        fresh = _read_runs_files({str(p): rel for rel in stale for p in store.runs_sources(root / rel)})
        sigs = [wanted.get(r, "") for r in fresh.column("_dir").to_pylist()]
        parts.append(fresh.append_column("_sig", pa.array(sigs, pa.string())))
        if path is not None:
            _write_index(path, pa.concat_tables(parts))
    table = pa.concat_tables(parts)
    df = table.to_pandas()
    parsed = pd.to_datetime(df["run_id"].str.slice(0, 16), format="%Y%m%dT%H%M%SZ", errors="coerce", utc=True)
    df["run_time"] = parsed.fillna(df["started_at"]) if len(df) else parsed
    return df


def _write_index(path: Path, table: pa.Table) -> None:
    """Write the index atomically (two sessions may race); an unwritable cache is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError:
        pass


def _run_dirs(root: Path, runs: pd.DataFrame, run_ids: Iterable[str]) -> list[Path]:
    """The folders of the given runs, from the `_dir` column of `load_primary_runs`."""
    dirs = runs.drop_duplicates("run_id").set_index("run_id")["_dir"]
    return [root / str(dirs[r]) for r in dict.fromkeys(run_ids) if r in dirs.index]


def read_samples(
    root: str | Path,
    runs: pd.DataFrame,
    run_ids: Iterable[str],
    columns: Sequence[str],
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-item rows of the given runs, models and tasks, with only `columns` (warm-up excluded).

    Files are picked by name (`samples-<model>-<task>-*.parquet`) in the runs' own folders, and
    the model/task filter is then pushed into the scan (names are sanitized, so two models can
    share a file stem).
    """
    root = Path(root)
    files: list[str] = []
    for d in _run_dirs(root, runs, run_ids):
        if models is None or tasks is None:
            files += [str(p) for p in d.glob("samples-*.parquet")]
            continue
        for m in models:
            for t in tasks:
                files += [
                    str(p) for p in d.glob(f"samples-{store.safe_name(m)}-{store.safe_name(t)}-*.parquet")
                ]
    cols = list(dict.fromkeys(["run_id", "model", "task", *columns]))
    if not files:
        return store.SAMPLES_SCHEMA.empty_table().select(cols).to_pandas()
    expr: ds.Expression | None = None
    if models is not None:
        expr = ds.field("model").isin(list(models))
    if tasks is not None:
        te = ds.field("task").isin(list(tasks))
        expr = te if expr is None else expr & te
    return store.read_samples(sorted(set(files)), cols, expr).to_pandas()  # latest attempts only


def read_manifests(root: str | Path, runs: pd.DataFrame, run_ids: Iterable[str]) -> pd.DataFrame:
    """created_at and the other provenance of the given runs, from their run.json files."""
    rows = []
    for d in _run_dirs(Path(root), runs, run_ids):
        try:
            m = json.loads((d / "run.json").read_text())
        except (OSError, ValueError):
            continue
        rows.append(
            {
                "run_id": m.get("run_id", d.name),
                "created_at": pd.to_datetime(m.get("created_at"), utc=True, errors="coerce"),
                "suite_hash": m.get("suite_hash"),
                "python_version": m.get("python_version"),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "created_at", "suite_hash", "python_version"])


def item_credit(rows: pd.DataFrame) -> pd.Series:
    """Per-item credit: `score` where present, else `correct` as 0/1."""
    if "score" in rows.columns:
        s = pd.to_numeric(rows["score"], errors="coerce")
        if "correct" in rows.columns:
            s = s.fillna(rows["correct"].map({True: 1.0, False: 0.0}))
        return s
    return rows["correct"].map({True: 1.0, False: 0.0})
