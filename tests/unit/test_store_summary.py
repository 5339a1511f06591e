"""The run's summary.parquet: written at the end of `bench run`, equal to its runs-* files, never
read once a runs file is newer, and rebuilt for older stores by `bench consolidate`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bench import dashboard_data as dd
from bench import store
from bench.cli import app
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run
from tests.conftest import fake_suite

KEY = ["run_id", "model", "task", "metric"]


def _run(root: Path, data: Path) -> Path:
    plan = plan_run(parse_suite(fake_suite(data)), root)
    execute(plan, NullDisplay(), executor="inline")
    return plan.dir


def _sorted(df: pd.DataFrame, key: list[str] = KEY) -> pd.DataFrame:
    """Rows in key order, without the index's folder signature (it changes with every write)."""
    return df.drop(columns=["_sig"], errors="ignore").sort_values(key).reset_index(drop=True)


def _bump(path: Path, seconds: int = 5) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


def test_a_finished_run_has_a_summary_equal_to_its_runs_files(tmp_path: Path, mcq_jsonl: Path) -> None:
    d = _run(tmp_path, mcq_jsonl)
    summary = d / store.SUMMARY_FILE
    assert summary.is_file()
    assert pq.read_schema(summary).equals(store.RUNS_SCHEMA, check_metadata=False)
    runs = sorted(d.glob("runs-*.parquet"))
    assert len(runs) == 2  # two models x one task
    parts = pd.concat([pq.read_table(f).to_pandas() for f in runs])
    pd.testing.assert_frame_equal(_sorted(pq.read_table(summary).to_pandas()), _sorted(parts))
    assert store.runs_sources(d) == [summary]
    # the store's readers of runs-* files do not count the summary twice
    assert len(store.runs_dataset(tmp_path).to_table()) == len(parts)


def test_a_runs_file_newer_than_the_summary_is_read_instead(tmp_path: Path, mcq_jsonl: Path) -> None:
    d = _run(tmp_path, mcq_jsonl)
    index = tmp_path / "index.parquet"
    before = dd.load_primary_runs(tmp_path, index=index)
    assert sorted(before["model"]) == ["coin", "perfect"]
    # a resumed run rewrites one runs file after the summary: the new value must win
    f = d / "runs-perfect-custom.parquet"
    t = pq.read_table(f).to_pandas()
    t["value"] = 0.25
    store.write_table(f, pa.Table.from_pandas(t, preserve_index=False), store.RUNS_SCHEMA)
    _bump(f)
    assert store.runs_sources(d) == sorted(d.glob("runs-*.parquet"))
    _bump(d)  # a rename into the folder changes its mtime; make sure the index sees it here too
    after = dd.load_primary_runs(tmp_path, index=index).set_index("model")
    assert after.loc["perfect", "value"] == 0.25
    assert after.loc["coin", "value"] == before.set_index("model").loc["coin", "value"]


def test_dashboard_reads_summaries_and_runs_files_alike(
    tmp_path: Path, mcq_jsonl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _run(tmp_path / "a", mcq_jsonl)
    with_summary = dd.load_primary_runs(tmp_path / "a", index=False)
    (d / store.SUMMARY_FILE).unlink()
    without = dd.load_primary_runs(tmp_path / "a", index=False)
    key = ["run_id", "model", "task"]
    pd.testing.assert_frame_equal(_sorted(with_summary, key), _sorted(without, key))
    pytest.importorskip("duckdb")
    store.consolidate(d)
    monkeypatch.setattr(dd.reading, "DUCKDB_MIN_FILES", 1)  # the bulk path
    pd.testing.assert_frame_equal(
        _sorted(dd.load_primary_runs(tmp_path / "a", index=False), key), _sorted(without, key)
    )


def test_consolidate_fills_in_missing_and_stale_summaries_but_not_a_running_run(
    tmp_path: Path, mcq_jsonl: Path
) -> None:
    dirs = []
    for rid in ("20260101T000000Z-aaa001", "20260102T000000Z-aaa002", "20260103T000000Z-aaa003"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(store, "new_run_id", lambda now=None, rid=rid: rid)
            dirs.append(_run(tmp_path, mcq_jsonl))
    missing, stale, running = dirs
    (missing / store.SUMMARY_FILE).unlink()
    _bump(stale / "runs-coin-custom.parquet")
    (running / store.SUMMARY_FILE).unlink()
    cli = CliRunner()
    with open(running / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a `bench run` writing it holds it
        dry = cli.invoke(app, ["consolidate", str(tmp_path), "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "2 run(s) to consolidate" in dry.output and not (missing / store.SUMMARY_FILE).exists()
        r = cli.invoke(app, ["consolidate", str(tmp_path)])
        assert r.exit_code == 0, r.output
        assert f"wrote {missing / store.SUMMARY_FILE}" in r.output
        assert f"wrote {stale / store.SUMMARY_FILE}" in r.output and "2 run(s) consolidated" in r.output
        assert not (running / store.SUMMARY_FILE).exists()
    for d in (missing, stale):
        assert store.runs_sources(d) == [d / store.SUMMARY_FILE]
    again = cli.invoke(app, ["consolidate", str(tmp_path)])
    assert again.exit_code == 0 and "1 run(s) consolidated" in again.output  # the one no longer running
    assert store.consolidate(tmp_path / "nothing-here") is None


def test_a_failed_summary_never_fails_the_run_and_leaves_the_runs_files_in_charge(tmp_path: Path) -> None:
    (tmp_path / "runs-m-t.parquet").write_bytes(b"not parquet")
    with pytest.raises(pa.ArrowInvalid):
        store.consolidate(tmp_path)
    assert store.try_consolidate(tmp_path) is None
    assert store.runs_sources(tmp_path) == [tmp_path / "runs-m-t.parquet"]


@pytest.mark.parametrize("bulk", [False, True], ids=["pyarrow", "duckdb"])
def test_runs_files_of_an_older_schema_read_with_nulls_for_newer_columns(
    tmp_path: Path, bulk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store upgraded in place holds runs files without columns added since (latency_p95)."""
    if bulk:
        pytest.importorskip("duckdb")
        monkeypatch.setattr(dd.reading, "DUCKDB_MIN_FILES", 1)
    old_schema = pa.schema([f for f in store.RUNS_SCHEMA if f.name != "latency_p95"])
    row = {"suite": "s", "model": "m", "task": "t", "metric": "acc", "primary": True, "value": 0.5}
    for rid, schema, extra in (
        ("20260101T000000Z-old", old_schema, {}),
        ("20260102T000000Z-new", store.RUNS_SCHEMA, {"latency_p95": 2.0}),
    ):
        d = store.run_dir(tmp_path, "s", rid)
        d.mkdir(parents=True)
        pq.write_table(store.rows_to_table([{**row, "run_id": rid, **extra}], schema), d / "runs-m-t.parquet")
    got = dd.load_primary_runs(tmp_path, index=False).set_index("run_id")
    assert pd.isna(got.loc["20260101T000000Z-old", "latency_p95"])
    assert got.loc["20260102T000000Z-new", "latency_p95"] == 2.0
    assert list(got["value"]) == [0.5, 0.5]
