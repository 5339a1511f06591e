"""Plugins: a backend and a task kind from modules outside bench (tests/plugins/), found through the
`bench.plugins` entry point group, run by `bench run` end to end. Nothing under bench/ names them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.registry import BackendPlugin, TaskPlugin, register_backend, register_task
from bench.specs import DatasetTaskSpec, ModelSpecBase

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
name: plugged
defaults: {seed: 1, batch_size: 2}
models:
  - {name: echo-plain, backend: echo}
  - {name: echo-upper, backend: echo, upper: true}
tasks:
  - {name: last, kind: lastword, dataset: {path: DATA}}
  - {name: last-nocase, kind: lastword, dataset: {path: DATA}, ignore_case: true}
"""

ITEMS = [  # the echo backend answers with the prompt's last word
    {"id": "a", "text": "the cat sat on the mat", "target": "mat"},
    {"id": "b", "text": "x y C", "target": "C"},
    {"id": "c", "text": "hello world", "target": "world"},
]


def _installed(site: Path) -> dict[str, str]:
    """A distribution on sys.path that declares the two plugins as entry points, as `pip install` makes."""
    info = site / "bench_test_plugins-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-test-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[bench.plugins]\necho = tests.plugins.echo_backend\nlastword = tests.plugins.lastword_task\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BENCH_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return env


def _bench(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=300, env=env
    )


def _suite(tmp_path: Path) -> tuple[Path, Path]:
    """The ITEMS as a dataset file and the SUITE reading it."""
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.replace("DATA", str(data)))
    return data, suite


def test_plugins_from_entry_points_run_through_bench_run(tmp_path: Path) -> None:
    env = _installed(tmp_path / "site")
    data, suite = _suite(tmp_path)

    ls = _bench(["ls", "backends"], env)
    assert ls.returncode == 0, ls.stderr
    assert any(line.startswith("echo ") and "last word" in line for line in ls.stdout.splitlines()), ls.stdout

    r = _bench(["run", str(suite), "-o", str(tmp_path / "out")], env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    runs = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "out").rglob("runs-*.parquet"))])
    primary = runs[runs["primary"]].set_index(["model", "task"])
    assert set(primary["metric"]) == {"exact"}
    # plain: mat, C, world all right; upper: MAT, C, WORLD: only C, unless case is ignored
    assert primary["value"].to_dict() == {
        ("echo-plain", "last"): 1.0,
        ("echo-plain", "last-nocase"): 1.0,
        ("echo-upper", "last"): pytest.approx(1 / 3),
        ("echo-upper", "last-nocase"): 1.0,
    }
    assert set(primary["dataset"]) == {str(data)}
    samples = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "out").rglob("samples-*.parquet"))])
    upper = samples[(samples["model"] == "echo-upper") & (samples["task"] == "last")].set_index("item_id")
    assert upper["prediction"].to_dict() == {"a": "MAT", "b": "C", "c": "WORLD"}


def test_plugin_registry_feeds_validation_and_ray_resources(tmp_path: Path) -> None:
    """The suite's unions and Ray's resource request come from the plugin's one registration."""
    env = _installed(tmp_path / "site")
    code = (
        "from bench.config import parse_suite\n"
        "from bench.errors import ConfigError\n"
        "from bench.executors.ray import resources\n"
        "s = parse_suite({'name': 'p', 'models': [{'name': 'e', 'backend': 'echo'}],"
        " 'tasks': [{'name': 't', 'kind': 'lastword', 'dataset': {'path': 'x.jsonl'}}]})\n"
        "print('SPECS', type(s.models[0]).__name__, type(s.tasks[0]).__name__)\n"
        "print('RES', resources(s.models[0]))\n"
        "try:\n"
        "    parse_suite({'name': 'p', 'models': [{'name': 'e', 'backend': 'echo', 'uper': True}],"
        " 'tasks': [{'name': 't', 'kind': 'lastword', 'dataset': 'arc_easy'}]})\n"
        "except ConfigError as e:\n"
        "    print('ERR', e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert "SPECS EchoSpec LastWordSpec" in r.stdout
    assert "RES {'num_cpus': 0.5, 'num_gpus': 0.0}" in r.stdout
    assert "ERR <suite>: models[0].uper: unknown field; did you mean 'upper'?" in r.stdout


def test_a_catalog_dataset_the_kind_cannot_use_is_one_line(tmp_path: Path) -> None:
    """A kind that lists no catalog dataset kinds: a clear error, not a KeyError traceback."""
    env = _installed(tmp_path / "site")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: p\nmodels: [{name: e, backend: echo}]\ntasks: [{name: t, kind: lastword, dataset: arc_easy}]\n"
    )
    r = _bench(["validate", str(suite)], env)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().endswith(
        "tasks[0].dataset: 'arc_easy' is a mcq dataset, not usable by a task of kind 'lastword' "
        "(usable: none of the catalog)"
    ), r.stderr


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "BENCH_PLUGINS": "tests.plugins.no_such_module", "PYTHONPATH": str(ROOT)}
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: p\nmodels: [{name: f, backend: fake}]\ntasks: [{name: t, kind: mcq, dataset: arc_easy}]\n"
    )
    r = _bench(["validate", str(suite)], env)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert (
        "plugin BENCH_PLUGINS module 'tests.plugins.no_such_module' failed to load: ModuleNotFoundError"
        in r.stderr
    )


def test_a_spec_must_carry_its_registered_name() -> None:
    class Spec(ModelSpecBase):
        backend: str = "x"

    class TSpec(DatasetTaskSpec):
        kind: str = "y"

    with pytest.raises(ValueError, match=r"Spec.backend must be Literal\['x'\]"):
        register_backend(
            BackendPlugin(name="x", spec=Spec, factory=lambda s, seed: None, probe=lambda: (True, ""))
        )
    with pytest.raises(ValueError, match=r"TSpec.kind must be Literal\['y'\]"):
        register_task(TaskPlugin(name="y", spec=TSpec, factory=lambda s, **kw: None, primary_metric="m"))


def test_a_plugin_kinds_metric_objects_set_the_runs_rows(tmp_path: Path) -> None:
    """lastword declares three `Metric`s: their directions and aggregations reach the runs rows."""
    env = _installed(tmp_path / "site")
    _, suite = _suite(tmp_path)
    r = _bench(["run", str(suite), "-o", str(tmp_path / "out")], env)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "out").rglob("runs-*.parquet"))])
    rows = runs.set_index(["model", "task", "metric"]).sort_index()
    assert set(runs["metric"]) == {"exact", "length_gap", "char_error_rate"}
    assert runs.groupby("metric")["higher_is_better"].agg(set).to_dict() == {
        "exact": {True},
        "length_gap": {False},
        "char_error_rate": {False},
    }
    assert runs.groupby("metric")["primary"].agg(set).to_dict() == {
        "exact": {True},
        "length_gap": {False},
        "char_error_rate": {False},
    }
    samples = pd.concat([pd.read_parquet(f) for f in sorted((tmp_path / "out").rglob("samples-*.parquet"))])
    for (model, task), s in samples.groupby(["model", "task"]):
        scores = [dict(x) for x in s["scores"]]
        wrong, total = sum(x["wrong_chars"] for x in scores), sum(x["target_chars"] for x in scores)
        cer = rows.loc[(model, task, "char_error_rate")]
        assert cer["value"] == pytest.approx(wrong / total) and cer["ci_method"] == "ratio_bootstrap"
        gap = rows.loc[(model, task, "length_gap")]
        assert gap["value"] == pytest.approx(np.mean([x["length_gap"] for x in scores]))
    # upper: MAT/mat, C/C, WORLD/world: 3 + 0 + 5 of 9 characters wrong (a mean of items would be 2/3)
    assert rows.loc[("echo-upper", "last", "char_error_rate"), "value"] == pytest.approx(8 / 9)
    assert rows.loc[("echo-upper", "last-nocase", "char_error_rate"), "value"] == 0.0
