"""The harness itself, driven by the scripted fake backend: plan, batches, store, resume, failures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.config import Suite, parse_suite
from bench.runner import NullDisplay, apply_overrides, execute, plan_run
from tests.conftest import fake_suite


def _run(suite: Suite, root: Path, executor: str = "inline", **kw: object):  # type: ignore[no-untyped-def]
    plan = plan_run(suite, root, **kw)  # type: ignore[arg-type]
    display = NullDisplay()
    result = execute(plan, display, executor=executor)  # type: ignore[arg-type]
    return plan, result, display


def _samples(root: Path) -> pd.DataFrame:
    return store.samples_dataset(root).to_table().to_pandas()


def _runs(root: Path) -> pd.DataFrame:
    return store.runs_dataset(root).to_table().to_pandas()


def test_inline_run_writes_one_row_per_item_with_provenance(tmp_path: Path, mcq_jsonl: Path) -> None:
    suite = parse_suite(fake_suite(mcq_jsonl))
    _, result, display = _run(suite, tmp_path)
    s = _samples(tmp_path)
    assert len(s) == 2 * 23
    assert not s.duplicated(["model", "task", "item_id"]).any()
    perfect = s[s.model == "perfect"]
    assert perfect["correct"].all() and (perfect["score"] == 1.0).all()
    coin = s[s.model == "coin"]
    # accuracy 0.0 never plants the gold, so correctness comes from random log-likelihoods only
    assert 0 <= coin["score"].mean() < 1
    # prediction is the argmax choice; reference is the gold choice text
    row = perfect.iloc[0]
    assert row["prediction"] == row["reference"] == ["a", "bb", "ccc"][int(row["gold_index"])]
    assert len(row["choice_logliks"]) == 3
    assert dict(row["scores"]).keys() == {"acc", "acc_norm"}
    for col in ("run_id", "suite_hash", "bench_version", "hardware", "seed"):
        assert s[col].notna().all(), col
    assert (s["hardware"] == "test-box").all() and (s["seed"] == 3).all()
    assert (s["suite_hash"] == suite.suite_hash()).all()
    assert s["prompt"].str.startswith("Question: What is item").all()

    r = _runs(tmp_path)
    acc = r[(r.metric == "acc")].set_index("model")
    assert acc.loc["perfect", "value"] == 1.0 and acc.loc["perfect", "n"] == 23
    assert acc.loc["coin", "value"] == pytest.approx(coin["score"].mean())
    lo, hi = acc.loc["coin", "ci_low"], acc.loc["coin", "ci_high"]
    assert lo <= acc.loc["coin", "value"] <= hi and hi > lo
    assert set(r.metric) == {"acc", "acc_norm"}
    assert (r["status"] == "ok").all()
    assert r["cost_usd"].notna().all() and (r["usd_per_hour"] == 3.6).all()
    assert display.events[0]["type"] == "run_start"
    assert not result.model_errors


def test_failed_items_are_recorded_and_the_run_goes_on(tmp_path: Path, mcq_jsonl: Path) -> None:
    models = [
        {"name": "flaky", "backend": "fake", "accuracy": 1.0, "fail_items": ["q03-gold:0", "q07-gold:1"]}
    ]
    _run(parse_suite(fake_suite(mcq_jsonl, models=models)), tmp_path)
    s = _samples(tmp_path)
    assert len(s) == 23
    errs = s[s.error.notna()]
    assert sorted(errs.item_id) == ["q03-gold:0", "q07-gold:1"]
    assert errs["score"].isna().all()
    acc = _runs(tmp_path).query("metric == 'acc'").iloc[0]
    assert acc["n"] == 23 and acc["n_errors"] == 2 and acc["value"] == 1.0


def test_resume_skips_stored_items_and_ends_with_one_row_each(tmp_path: Path, mcq_jsonl: Path) -> None:
    suite = parse_suite(fake_suite(mcq_jsonl, batch_size=5))
    plan, _, _ = _run(suite, tmp_path)
    full = _samples(tmp_path).sort_values(["model", "item_id"]).reset_index(drop=True)
    # lose the last two batches of one model, as a killed run would, plus a stray temp file
    parts = sorted(plan.dir.glob("samples-perfect-custom-*.parquet"))
    for p in parts[-2:]:
        p.unlink()
    (plan.dir / ".tmp-deadbeef-samples-perfect-custom-000009.parquet").write_bytes(b"partial")
    plan2, _, display = _run(suite, tmp_path, resume=True)
    assert plan2.run_id == plan.run_id and plan2.resumed
    starts = [e for e in display.events if e["type"] == "task_start"]
    assert {(e["model"], e["done"]) for e in starts} == {("perfect", 15), ("coin", 23)}
    again = _samples(tmp_path).sort_values(["model", "item_id"]).reset_index(drop=True)
    assert len(again) == 46 and not again.duplicated(["model", "task", "item_id"]).any()
    pd.testing.assert_series_equal(again["score"], full["score"])
    assert not list(plan.dir.glob(".tmp-*"))


def test_resume_refuses_another_suite(tmp_path: Path, mcq_jsonl: Path) -> None:
    suite = parse_suite(fake_suite(mcq_jsonl))
    plan, _, _ = _run(suite, tmp_path)
    other = apply_overrides(suite, limit=5)
    assert other.suite_hash() != suite.suite_hash()
    # --resume finds no run with this hash, so a new run starts
    plan2 = plan_run(other, tmp_path, resume=True)
    assert plan2.run_id != plan.run_id and not plan2.resumed
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="different suite"):
        plan_run(other, tmp_path, run_id=plan.run_id)


def test_overrides_filter_models_and_limit(tmp_path: Path, mcq_jsonl: Path) -> None:
    suite = apply_overrides(parse_suite(fake_suite(mcq_jsonl)), limit=4, models=["coin"])
    _run(suite, tmp_path)
    s = _samples(tmp_path)
    assert set(s.model) == {"coin"} and len(s) == 4
    assert list(s.sort_values("item_index").item_id) == [
        "q00-gold:0",
        "q01-gold:1",
        "q02-gold:2",
        "q03-gold:0",
    ]
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'coin'"):
        apply_overrides(parse_suite(fake_suite(mcq_jsonl)), models=["con"])


def test_worker_processes_isolate_a_crash_and_a_bad_model(tmp_path: Path, mcq_jsonl: Path) -> None:
    models = [
        {"name": "crasher", "backend": "fake", "accuracy": 1.0, "crash_items": ["q09-gold:0"]},
        {"name": "missing-file", "backend": "llamacpp", "path": str(tmp_path / "nope.gguf")},
        {"name": "fine", "backend": "fake", "accuracy": 1.0},
    ]
    _, result, _ = _run(parse_suite(fake_suite(mcq_jsonl, models=models, batch_size=4)), tmp_path, "process")
    assert "killed by signal 9" in result.model_errors["crasher"]
    assert "nope.gguf" in result.model_errors["missing-file"]
    s = _samples(tmp_path)
    assert len(s[s.model == "fine"]) == 23
    # the crashed worker kept the batches it finished before the crash (items 0-7)
    assert len(s[s.model == "crasher"]) == 8
    r = _runs(tmp_path).query("metric == 'acc'").set_index("model")
    assert r.loc["fine", "status"] == "ok"
    assert r.loc["crasher", "status"] == "error" and "killed by signal 9" in r.loc["crasher", "error"]
    assert r.loc["missing-file", "status"] == "error"


def test_parquet_files_read_back_with_the_documented_schema(tmp_path: Path, mcq_jsonl: Path) -> None:
    plan, _, _ = _run(parse_suite(fake_suite(mcq_jsonl)), tmp_path)
    for f in plan.dir.glob("samples-*.parquet"):
        assert pq.read_schema(f).equals(store.SAMPLES_SCHEMA, check_metadata=False)
    for f in plan.dir.glob("runs-*.parquet"):
        assert pq.read_schema(f).equals(store.RUNS_SCHEMA, check_metadata=False)
    manifest = store.read_manifest(plan.dir)
    assert manifest["suite_hash"] == plan.suite_hash and "packages" in manifest
    assert store.find_run(tmp_path, plan.run_id[:12])["run_id"] == plan.run_id


def test_cli_leaderboard_names_only_the_failed_model(tmp_path: Path, mcq_jsonl: Path) -> None:
    """One model that cannot load next to one that runs: the printed tables say '-' where the
    failed model has no value (never 'nan'), and only the failed model's error is printed."""
    import yaml
    from click.testing import CliRunner

    from bench.cli import app

    models = [
        {"name": "fine", "backend": "fake", "accuracy": 1.0},
        {"name": "missing-file", "backend": "llamacpp", "path": str(tmp_path / "nope.gguf")},
    ]
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump(fake_suite(mcq_jsonl, models=models)))
    r = CliRunner().invoke(app, ["run", str(suite), "-o", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert r.exit_code == 1, r.output
    assert "nan" not in r.output.lower(), r.output
    tail = r.output.split("* on the accuracy / cost Pareto front")[1].splitlines()
    errors = [line for line in tail if line.startswith(("fine:", "missing-file:"))]
    assert len(errors) == 1 and errors[0].startswith("missing-file:") and "nope.gguf" in errors[0], r.output
