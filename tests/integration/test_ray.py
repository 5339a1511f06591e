"""The Ray executor on a local Ray instance started here: (model x task x shard) tasks write into
the same store, and the rows equal the local executor's, item by item."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bench import store
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run
from tests.conftest import fake_suite

ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'bench[ray]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def _rows(root: Path) -> pd.DataFrame:
    s = store.samples_dataset(root).to_table().to_pandas()
    return s.sort_values(["model", "task", "item_id"]).reset_index(drop=True)


def test_ray_shards_equal_the_local_executor(
    local_ray: None, tmp_path: Path, mcq_jsonl: Path, smollm2_path: str
) -> None:
    from bench.executors.ray import execute_ray

    d = fake_suite(
        mcq_jsonl,
        models=[
            {"name": "scripted", "backend": "fake", "accuracy": 0.6},
            {"name": "smollm2-135m", "n_threads": 1},
        ],
        limit=9,
    )
    d["tasks"] = [*d["tasks"], {"name": "arc", "kind": "mcq", "dataset": "arc_easy", "limit": 5}]  # type: ignore[list-item]
    suite = parse_suite(d)
    local_root, ray_root = tmp_path / "local", tmp_path / "ray"
    execute(plan_run(suite, local_root), NullDisplay(), executor="inline")
    plan = plan_run(suite, ray_root)
    display = NullDisplay()
    result = execute_ray(plan, display, shards=3)
    assert not result.model_errors
    a, b = _rows(local_root), _rows(ray_root)
    assert len(b) == len(a) == 2 * (9 + 5) and not b.duplicated(["model", "task", "item_id"]).any()
    pd.testing.assert_series_equal(a["item_id"], b["item_id"])
    pd.testing.assert_series_equal(a["score"], b["score"])
    for x, y in zip(a["choice_logliks"], b["choice_logliks"], strict=True):
        assert list(x) == list(y)
    ra = (
        store.runs_dataset(local_root)
        .to_table()
        .to_pandas()
        .set_index(["model", "task", "metric"])
        .sort_index()
    )
    rb = (
        store.runs_dataset(ray_root)
        .to_table()
        .to_pandas()
        .set_index(["model", "task", "metric"])
        .sort_index()
    )
    pd.testing.assert_series_equal(ra["value"], rb["value"])
    pd.testing.assert_series_equal(ra["n"], rb["n"])
    assert rb["peak_rss_mb"].notna().all() and (rb["status"] == "ok").all()
    assert len(list(plan.dir.glob("shard-*.json"))) == 2 * 2 * 3
    # the run's summary holds exactly the runs rows, as after a local run
    summary = pq.read_table(plan.dir / store.SUMMARY_FILE).to_pandas().set_index(["model", "task", "metric"])
    pd.testing.assert_series_equal(summary.sort_index()["value"], rb["value"])
    assert store.runs_sources(plan.dir) == [plan.dir / store.SUMMARY_FILE]


def test_resources_follow_the_backend() -> None:
    from bench.config import parse_suite as ps
    from bench.executors.ray import resources

    s = ps(
        {
            "name": "r",
            "models": [
                {"name": "smollm2-135m", "n_threads": 3},
                {"name": "v", "backend": "vllm", "model": "m", "tensor_parallel_size": 2},
                {"name": "t", "backend": "transformers", "model": "m", "device": "cuda:0"},
                {"name": "o", "backend": "openai", "model": "m", "base_url": "http://x/v1"},
            ],
            "tasks": [{"name": "a", "kind": "mcq", "dataset": "arc_easy"}],
        }
    )
    assert [resources(m) for m in s.models] == [
        {"num_cpus": 3.0, "num_gpus": 0.0},
        {"num_cpus": 1, "num_gpus": 2.0},
        {"num_cpus": 1, "num_gpus": 1.0},
        {"num_cpus": 1.0, "num_gpus": 0.0},
    ]
