"""The dashboard's data layer: reads the results store with pushdown and computes every table and
curve the pages show.

No streamlit here, so each number on a page can be checked against the store in a unit test. Reads
are narrow on purpose: the leaderboard needs only the primary rows of the runs tables (a few
columns), and per-item rows are read only for the runs, models and tasks a page asks about, by
file name first (the store names files after model and task) and then with a pyarrow filter.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench import store
from bench.errors import BenchError
from bench.metrics.stats import paired_comparison
from bench.report import pareto_front

__all__ = [
    "LEADERBOARD_RUN_COLUMNS",
    "PARETO_AXES",
    "Filters",
    "RunDir",
    "app_path",
    "cascade_curve",
    "default_suite",
    "drilldown_table",
    "good_enough",
    "history_changes",
    "history_table",
    "index_dir",
    "launch",
    "leaderboard_table",
    "load_primary_runs",
    "pair_filter",
    "pareto_points",
    "read_manifests",
    "read_samples",
    "run_label",
    "scan_store",
    "select_results",
    "signature_key",
    "size_class",
    "small_model_table",
    "tie_ranks",
]

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
    "n",
    "n_errors",
    "model_params",
    "quant",
    "latency_p50",
    "latency_p90",
    "tokens_per_s",
    "peak_rss_mb",
    "cost_usd",
    "usd_per_1k_items",
    "started_at",
]

# x axes of the Pareto plots: column of the leaderboard table -> axis title.
PARETO_AXES: dict[str, str] = {
    "usd_per_1k_items": "$ per 1k items",
    "latency_p50": "latency p50 (s per item)",
    "peak_rss_mb": "peak memory (MB)",
    "params": "parameters",
}

DEFAULT_SIZE_THRESHOLD = 8e9
DUCKDB_MIN_FILES = 64  # below this many runs files, pyarrow one by one is as fast as starting duckdb
Z95 = 1.959963984540054


# ---------------------------------------------------------------------- reading the store


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
    go through duckdb, which reads them in parallel; a few, or files of another schema version,
    through pyarrow, which fills missing columns with nulls.
    """
    cols = LEADERBOARD_RUN_COLUMNS
    target = pa.schema([store.RUNS_SCHEMA.field(c) for c in cols] + [pa.field("_dir", pa.string())])
    files = list(sources)
    if len(files) >= DUCKDB_MIN_FILES and importlib.util.find_spec("duckdb") is not None:
        import duckdb

        try:
            with duckdb.connect() as con:
                con.execute("SET enable_progress_bar = false")
                sel = ", ".join(f'"{c}"' for c in cols)
                query = con.sql(
                    f'SELECT {sel}, filename AS _dir FROM read_parquet($files, filename = true) WHERE "primary"',
                    params={"files": files},
                )
                # to_arrow_table (duckdb >= 1.4) was fetch_arrow_table before
                fetch = getattr(query, "to_arrow_table", None) or query.fetch_arrow_table
                t = fetch()
            names = t.column("_dir").combine_chunks().dictionary_encode()
            dirs = pa.array([sources[f] for f in names.dictionary.to_pylist()], pa.string())
            t = t.set_column(t.schema.get_field_index("_dir"), "_dir", dirs.take(names.indices))
            return t.cast(target)
        except duckdb.Error:
            pass
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
            index_dir() / f"runs-index-{hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]}.parquet"
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
    dataset = ds.dataset(sorted(set(files)), schema=store.SAMPLES_SCHEMA, format="parquet")
    return dataset.to_table(columns=cols, filter=expr).to_pandas()


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


# ---------------------------------------------------------------------- leaderboard


def size_class(params: pd.Series, threshold: float = DEFAULT_SIZE_THRESHOLD) -> pd.Series:
    """'SLM' below the parameter threshold, 'LLM' at or above it, 'unknown' without a count
    (hosted APIs do not say)."""
    p = pd.to_numeric(params, errors="coerce")
    out = pd.Series("unknown", index=params.index, dtype=object)
    out[p < threshold] = "SLM"
    out[p >= threshold] = "LLM"
    return out


def run_label(run_id: str) -> str:
    """'2026-11-27 11:42 · <run_id>' for a bench run id, the id itself otherwise."""
    try:
        t = pd.to_datetime(run_id[:16], format="%Y%m%dT%H%M%SZ")
    except (ValueError, TypeError):
        return run_id
    return f"{t:%Y-%m-%d %H:%M} · {run_id}"


def default_suite(runs: pd.DataFrame) -> str | None:
    """The suite of the newest run."""
    if runs.empty:
        return None
    newest = runs.sort_values(["run_time", "run_id"]).iloc[-1]
    return str(newest["suite"])


@dataclass(frozen=True)
class Filters:
    """What the sidebar selects. Empty tuples mean 'all'. `run_id` None means the newest result
    of every (model, hardware, task) within the suite and dates."""

    suite: str | None = None
    run_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    tasks: tuple[str, ...] = ()
    backends: tuple[str, ...] = ()
    hardware: tuple[str, ...] = ()
    size_classes: tuple[str, ...] = ()
    size_threshold: float = DEFAULT_SIZE_THRESHOLD


def select_results(runs: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """The primary rows the leaderboard shows: filtered, one per (model, hardware, task)."""
    df = runs
    if f.suite is not None:
        df = df[df["suite"] == f.suite]
    if f.run_id is not None:
        df = df[df["run_id"] == f.run_id]
    if f.date_from is not None:
        df = df[df["run_time"].dt.date >= f.date_from]
    if f.date_to is not None:
        df = df[df["run_time"].dt.date <= f.date_to]
    if f.tasks:
        df = df[df["task"].isin(f.tasks)]
    if f.backends:
        df = df[df["backend"].isin(f.backends)]
    if f.hardware:
        df = df[df["hardware"].isin(f.hardware)]
    df = df.assign(size_class=size_class(df["model_params"], f.size_threshold))
    if f.size_classes:
        df = df[df["size_class"].isin(f.size_classes)]
    df = df.sort_values(["run_time", "run_id"]).drop_duplicates(["model", "hardware", "task"], keep="last")
    return df.reset_index(drop=True)


def tie_ranks(
    mean: Sequence[float] | pd.Series,
    ci_low: Sequence[float] | pd.Series,
    ci_high: Sequence[float] | pd.Series,
    higher_is_better: bool = True,
) -> pd.Series:
    """Rank = 1 + the number of entries significantly better, so differences inside the noise tie.

    "Significantly better" is the conservative non-overlap rule on 95% CIs (j's lower bound above
    i's upper bound), which needs only the stored intervals. Entries without a mean get no rank.
    """
    m = np.asarray(mean, dtype=float)
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    lo = np.where(np.isnan(lo), m, lo)
    hi = np.where(np.isnan(hi), m, hi)
    ranks: list[Any] = []
    for i in range(m.size):
        if np.isnan(m[i]):
            ranks.append(pd.NA)
            continue
        ok = ~np.isnan(m)
        better = (lo > hi[i]) if higher_is_better else (hi < lo[i])
        ranks.append(1 + int(np.count_nonzero(better & ok)))
    return pd.Series(ranks, dtype="Int64")


def _wmean(values: pd.Series, weights: pd.Series) -> float:
    ok = values.notna() & weights.notna()
    w = weights[ok].astype(float)
    if not ok.any() or w.sum() == 0:
        return math.nan
    return float((values[ok].astype(float) * w).sum() / w.sum())


def _first(values: pd.Series) -> Any:
    v = values.dropna()
    return v.iloc[0] if len(v) else None


def leaderboard_table(selected: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, hardware): every task's primary value with its CI, the suite average,
    the efficiency columns and a CI-aware rank; sorted by rank then average.

    The suite average is the macro average over the tasks whose metric is higher-is-better, only
    for entries with an ok result on all of them. Its CI is the normal interval from the stored
    standard errors (stderr of a mean of independent means: sqrt(sum se^2) / T), so the page
    needs no per-item rows; with one task it is that task's own bootstrap CI.
    Columns per task T: `T`, `T lo`, `T hi`, `T 95% CI` (text); the average is `avg`.
    """
    if selected.empty:
        return pd.DataFrame(columns=["rank", "model", "label", "avg", "avg lo", "avg hi"])
    tasks = list(dict.fromkeys(selected.sort_values("task")["task"]))
    averaged = sorted(set(selected.loc[selected["higher_is_better"].fillna(True).astype(bool), "task"]))
    rows: list[dict[str, Any]] = []
    for (model, hardware), g in selected.groupby(["model", "hardware"], sort=True, dropna=False):
        row: dict[str, Any] = {"model": model, "hardware": hardware}
        ok = g[g["status"] == "ok"].set_index("task")
        for t in tasks:
            r = ok.loc[t] if t in ok.index else None
            v = float(r["value"]) if r is not None and pd.notna(r["value"]) else math.nan
            lo = float(r["ci_low"]) if r is not None and pd.notna(r["ci_low"]) else math.nan
            hi = float(r["ci_high"]) if r is not None and pd.notna(r["ci_high"]) else math.nan
            row[t], row[f"{t} lo"], row[f"{t} hi"] = v, lo, hi
            row[f"{t} 95% CI"] = f"[{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else ""
        have = [t for t in averaged if not math.isnan(row[t])]
        if averaged and len(have) == len(averaged):
            vals = [row[t] for t in averaged]
            avg = float(np.mean(vals))
            if len(averaged) == 1:
                lo, hi = row[f"{averaged[0]} lo"], row[f"{averaged[0]} hi"]
            else:
                se = math.sqrt(sum(float(ok.loc[t, "stderr"] or 0.0) ** 2 for t in averaged)) / len(averaged)
                lo, hi = avg - Z95 * se, avg + Z95 * se
        else:
            avg = lo = hi = math.nan
        row["avg"], row["avg lo"], row["avg hi"] = avg, lo, hi
        row["avg 95% CI"] = f"[{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else ""
        row["params"] = _first(g["model_params"])
        row["size_class"] = _first(g["size_class"]) if "size_class" in g else None
        row["quant"] = _first(g["quant"])
        row["backend"] = _first(g["backend"])
        row["latency_p50"] = _wmean(g["latency_p50"], g["n"])
        row["latency_p90"] = _wmean(g["latency_p90"], g["n"])
        row["tokens_per_s"] = _wmean(g["tokens_per_s"], g["n"])
        row["peak_rss_mb"] = float(g["peak_rss_mb"].max()) if g["peak_rss_mb"].notna().any() else math.nan
        row["usd_per_1k_items"] = _wmean(g["usd_per_1k_items"], g["n"])
        row["cost_usd"] = float(g["cost_usd"].sum(min_count=1))
        row["items"] = int(g["n"].fillna(0).sum())
        row["errors"] = int(g["n_errors"].fillna(0).sum()) + int((g["status"] != "ok").sum())
        row["error"] = _first(g["error"])
        row["run_id"] = str(g.sort_values("run_time")["run_id"].iloc[-1])
        row["runs"] = int(g["run_id"].nunique())
        row["date"] = g["run_time"].max()
        rows.append(row)
    board = pd.DataFrame(rows)
    dup = board["model"].duplicated(keep=False)
    board["label"] = np.where(dup, board["model"] + " @ " + board["hardware"].astype(str), board["model"])
    board.insert(0, "rank", tie_ranks(board["avg"], board["avg lo"], board["avg hi"]))
    board = board.sort_values(["rank", "avg", "label"], ascending=[True, False, True], na_position="last")
    return board.reset_index(drop=True)


def pareto_points(board: pd.DataFrame, x: str, y: str = "avg") -> pd.DataFrame:
    """Leaderboard entries with both coordinates, `on_front` marking those that no other entry
    beats on accuracy `y` (higher) and `x` (lower) at once; sorted by x for drawing the front."""
    cols = ["label", "model", x, y, f"{y} lo", f"{y} hi"]
    extra = [
        c
        for c in ("params", "quant", "backend", "hardware", "latency_p50", "usd_per_1k_items")
        if c not in cols
    ]
    pts = board[[c for c in cols + extra if c in board.columns]].copy()
    pts = pts[pd.to_numeric(pts[x], errors="coerce").notna() & pd.to_numeric(pts[y], errors="coerce").notna()]
    front = pareto_front([(str(r["label"]), float(r[y]), float(r[x])) for _, r in pts.iterrows()])
    pts["on_front"] = pts["label"].isin(front)
    pts = pts.sort_values([x, y], ascending=[True, False]).reset_index(drop=True)
    return pts


# ---------------------------------------------------------------------- is a small model enough?


def _score_col(rows: pd.DataFrame) -> pd.Series:
    """Per-item credit: `score` where present, else `correct` as 0/1."""
    if "score" in rows.columns:
        s = pd.to_numeric(rows["score"], errors="coerce")
        if "correct" in rows.columns:
            s = s.fillna(rows["correct"].map({True: 1.0, False: 0.0}))
        return s
    return rows["correct"].map({True: 1.0, False: 0.0})


def good_enough(
    primary: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """For one task: every model against the best one, paired on the items both scored.

    `primary` has one row per model (model, value, higher_is_better, model_params,
    usd_per_1k_items); `scores` has model, item_id and score. A model is `enough` when it is not
    significantly worse than the best: p >= alpha, or its mean difference is not in the worse
    direction. Errors (null scores) are left out of the pairing.
    """
    p = primary[primary["value"].notna()].drop_duplicates("model")
    cols = ["model", "value", "params", "usd_per_1k_items", "n_shared", "diff", "p_value", "best", "enough"]
    if p.empty:
        return pd.DataFrame(columns=cols)
    hib = bool(p["higher_is_better"].fillna(True).iloc[0])
    best = str(p.sort_values("value", ascending=not hib).iloc[0]["model"])
    sc = scores.assign(score=_score_col(scores)).dropna(subset=["score"])
    by_model = {m: g.drop_duplicates("item_id").set_index("item_id")["score"] for m, g in sc.groupby("model")}
    ref = by_model.get(best, pd.Series(dtype=float))
    rows = []
    for _, r in p.iterrows():
        m = str(r["model"])
        s = by_model.get(m, pd.Series(dtype=float))
        shared = s.index.intersection(ref.index)
        if m == best:
            n, diff, pv = len(shared), 0.0, 1.0
        elif len(shared) == 0:
            n, diff, pv = 0, math.nan, math.nan
        else:
            res = paired_comparison(
                s.loc[shared].to_numpy(float), ref.loc[shared].to_numpy(float), seed=seed, n_boot=200
            )
            n, diff, pv = res.n, res.diff, res.p_value
        worse = (diff < 0) if hib else (diff > 0)
        enough = m == best or (n > 0 and (not pv < alpha or not worse))
        rows.append(
            {
                "model": m,
                "value": float(r["value"]),
                "params": r.get("model_params"),
                "usd_per_1k_items": r.get("usd_per_1k_items"),
                "n_shared": n,
                "diff": diff,
                "p_value": pv,
                "best": m == best,
                "enough": bool(enough),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def small_model_table(
    primary: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """Per task: the best model, and the smallest and the cheapest model that is not significantly
    worse than it (see `good_enough`). `primary`: primary rows of one run; `scores`: its items."""
    out = []
    for task, g in primary.groupby("task", sort=True):
        ge = good_enough(g, scores[scores["task"] == task], alpha=alpha, seed=seed)
        if ge.empty:
            continue
        ok = ge[ge["enough"]]
        best = ge[ge["best"]].iloc[0]
        by_size = ok.dropna(subset=["params"]).sort_values(["params", "value"], ascending=[True, False])
        by_cost = ok.dropna(subset=["usd_per_1k_items"]).sort_values(
            ["usd_per_1k_items", "value"], ascending=[True, False]
        )
        sm = by_size.iloc[0] if len(by_size) else None
        ch = by_cost.iloc[0] if len(by_cost) else None
        out.append(
            {
                "task": task,
                "best": best["model"],
                "best value": best["value"],
                "smallest enough": None if sm is None else sm["model"],
                "smallest value": math.nan if sm is None else sm["value"],
                "smallest params": math.nan if sm is None else sm["params"],
                "smallest p": math.nan if sm is None else sm["p_value"],
                "cheapest enough": None if ch is None else ch["model"],
                "cheapest value": math.nan if ch is None else ch["value"],
                "cheapest $/1k": math.nan if ch is None else ch["usd_per_1k_items"],
                "cheapest p": math.nan if ch is None else ch["p_value"],
            }
        )
    return pd.DataFrame(out)


def cascade_curve(
    slm_rows: pd.DataFrame,
    llm_rows: pd.DataFrame,
    slm_cost_per_item: float,
    llm_cost_per_item: float,
    thresholds: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Accuracy and cost of "the SLM answers, the LLM takes the items it is unsure of".

    Per item (item_id, score or correct, confidence), on the items both models scored: at
    threshold t the SLM's answer is kept where its confidence >= t (a missing confidence always
    defers), else the LLM's. Cost per item = SLM cost + deferral rate x LLM cost, because the
    SLM runs on every item. t = 0 is the SLM alone (plus nothing), t above every confidence the
    LLM after the SLM.
    """
    a = slm_rows.assign(s=_score_col(slm_rows)).dropna(subset=["s"])
    b = llm_rows.assign(s=_score_col(llm_rows)).dropna(subset=["s"])
    for label, df in (("slm_rows", a), ("llm_rows", b)):
        if df["item_id"].duplicated().any():
            raise ValueError(f"{label} has duplicate item ids")
    m = a[["item_id", "s", "confidence"]].merge(b[["item_id", "s"]], on="item_id", suffixes=("_slm", "_llm"))
    conf = pd.to_numeric(m["confidence"], errors="coerce").to_numpy(float)
    s_slm = m["s_slm"].to_numpy(float)
    s_llm = m["s_llm"].to_numpy(float)
    rows = []
    for t in thresholds:
        keep = conf >= float(t)  # NaN >= t is False: no confidence, defer
        n = len(m)
        acc = float(np.where(keep, s_slm, s_llm).mean()) if n else math.nan
        defer = float(1.0 - keep.mean()) if n else math.nan
        cost = slm_cost_per_item + defer * llm_cost_per_item
        rows.append(
            {
                "threshold": float(t),
                "accuracy": acc,
                "deferral_rate": defer,
                "cost_per_item": cost,
                "usd_per_1k_items": cost * 1000.0,
                "n": n,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- drill-down


def _right(rows: pd.DataFrame) -> pd.Series:
    """Whether each row got full credit; None for failed items (they are neither right nor wrong)."""
    s = _score_col(rows)
    out = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    ok = s.notna()
    if "error" in rows.columns:
        ok &= rows["error"].isna()
    out[ok] = s[ok] >= 1.0
    return out


PairMode = Literal["all", "a_wrong_b_right", "a_right_b_wrong", "disagree"]


def pair_filter(samples: pd.DataFrame, model_a: str, model_b: str, mode: PairMode) -> list[str]:
    """Item ids of one task where A and B differ as asked; items either model failed are left out
    of every mode but 'all'."""
    a = samples[samples["model"] == model_a].drop_duplicates("item_id").set_index("item_id")
    b = samples[samples["model"] == model_b].drop_duplicates("item_id").set_index("item_id")
    ids = a.index.intersection(b.index)
    if mode == "all":
        return [str(i) for i in ids]
    ra, rb = _right(a).loc[ids], _right(b).loc[ids]
    known = ra.notna() & rb.notna()
    if mode == "a_wrong_b_right":
        keep = known & ~ra.fillna(True) & rb.fillna(False)
    elif mode == "a_right_b_wrong":
        keep = known & ra.fillna(False) & ~rb.fillna(True)
    elif mode == "disagree":
        keep = known & (ra.fillna(False) != rb.fillna(False))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return [str(i) for i in ids[keep.to_numpy(bool)]]


def drilldown_table(samples: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """One row per item: prompt and reference, then per model its output, extracted answer,
    correctness, latency and tokens. `output` is the generated text where there is one, else the
    chosen answer (log-likelihood multiple choice generates nothing)."""
    base_cols = ["item_id", "prompt", "reference"]
    base = samples.sort_values("item_id").drop_duplicates("item_id")[
        [c for c in base_cols if c in samples.columns]
    ]
    out = base.set_index("item_id")
    for m in models:
        g = samples[samples["model"] == m].drop_duplicates("item_id").set_index("item_id")
        raw = g["raw_output"] if "raw_output" in g else pd.Series(None, index=g.index, dtype=object)
        part = pd.DataFrame(
            {
                f"{m} output": raw.where(raw.notna(), g["prediction"]),
                f"{m} extracted": g.get("extracted"),
                f"{m} correct": _right(g),
                f"{m} latency_s": g.get("latency_s"),
                f"{m} in_tok": g.get("input_tokens"),
                f"{m} out_tok": g.get("output_tokens"),
                f"{m} error": g.get("error"),
            },
            index=g.index,
        )
        out = out.join(part, how="left")
    return out.reset_index()


# ---------------------------------------------------------------------- history


def history_table(
    runs: pd.DataFrame, model: str, task: str, manifests: pd.DataFrame | None = None
) -> pd.DataFrame:
    """A model's primary result on a task in every run, oldest first, with the run's provenance."""
    h = runs[(runs["model"] == model) & (runs["task"] == task)].copy()
    if manifests is not None and not manifests.empty:
        h = h.merge(manifests[["run_id", "created_at"]], on="run_id", how="left")
        h["created_at"] = h["created_at"].fillna(h["run_time"])
    else:
        h["created_at"] = h["run_time"]
    keep = [
        "run_id",
        "created_at",
        "suite",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "latency_p50",
        "latency_p90",
        "git_sha",
        "bench_version",
        "hardware",
        "status",
    ]
    return h.sort_values(["created_at", "run_id"])[keep].reset_index(drop=True)


def history_changes(
    history: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """`history` with, per run, the paired comparison against the previous run on shared items.

    `scores`: run_id, item_id, score (or correct). Adds prev_run_id, n_shared, diff (this run
    minus the previous), p_value and `changed` (p < alpha). The first run and runs sharing no item
    with their predecessor have no test.
    """
    sc = scores.assign(score=_score_col(scores)).dropna(subset=["score"])
    per_run = {r: g.drop_duplicates("item_id").set_index("item_id")["score"] for r, g in sc.groupby("run_id")}
    out = history.copy()
    prev_ids: list[Any] = [None]
    n_sh: list[int] = [0]
    diffs: list[float] = [math.nan]
    pvals: list[float] = [math.nan]
    ids = list(out["run_id"])
    for prev, cur in itertools.pairwise(ids):
        a = per_run.get(cur, pd.Series(dtype=float))
        b = per_run.get(prev, pd.Series(dtype=float))
        shared = a.index.intersection(b.index)
        prev_ids.append(prev)
        n_sh.append(len(shared))
        if len(shared) == 0:
            diffs.append(math.nan)
            pvals.append(math.nan)
            continue
        r = paired_comparison(
            a.loc[shared].to_numpy(float), b.loc[shared].to_numpy(float), seed=seed, n_boot=200
        )
        diffs.append(r.diff)
        pvals.append(r.p_value)
    out["prev_run_id"] = prev_ids[: len(out)]
    out["n_shared"] = n_sh[: len(out)]
    out["diff"] = diffs[: len(out)]
    out["p_value"] = pvals[: len(out)]
    out["changed"] = out["p_value"] < alpha
    return out


# ---------------------------------------------------------------------- launching


def app_path() -> Path:
    """dashboard/app.py of the checkout bench is imported from (an editable install)."""
    import bench

    return Path(bench.__file__).resolve().parent.parent / "dashboard" / "app.py"


def launch(results_dir: str, host: str = "127.0.0.1", port: int = 8501, headless: bool = True) -> int:
    """Serve the dashboard with streamlit until interrupted; returns streamlit's exit code.

    The app only reads the store. Raises BenchError (exit 2 in the CLI) when streamlit is not
    installed or the app file is not there (a non-editable install does not ship dashboard/).
    """
    if importlib.util.find_spec("streamlit") is None:
        raise BenchError("the dashboard needs streamlit, plotly and duckdb: pip install 'bench[dashboard]'")
    app = app_path()
    if not app.is_file():
        raise BenchError(
            f"dashboard app not found at {app}; install bench from a checkout (pip install -e .)"
        )
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true" if headless else "false",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--results",
        str(Path(results_dir).resolve()),
    ]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
