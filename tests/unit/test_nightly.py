"""`bench nightly`: verdicts against the previous comparable run, reports, exit codes; `bench gc`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from bench import store
from tests.conftest import fake_suite


def _suite(tmp: Path, data: Path, accuracy: float) -> Path:
    d = fake_suite(data, models=[{"name": "m", "backend": "fake", "accuracy": accuracy}], batch_size=8)
    d["name"] = "nightly"
    p = tmp / f"nightly-{accuracy}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _nightly(suite: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", "nightly", str(suite), "-o", str(root), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _big_jsonl(tmp: Path, n: int = 120) -> Path:
    p = tmp / "items.jsonl"
    p.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": f"q{i:03d}-gold:{i % 3}",
                    "q": f"Item {i}?",
                    "opts": ["a", "bb", "ccc"],
                    "label": i % 3,
                }
            )
            for i in range(n)
        )
        + "\n"
    )
    return p


def test_same_configuration_twice_is_unchanged_and_a_worse_model_regresses(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path)
    root = tmp_path / "results"
    good = _suite(tmp_path, data, 0.9)
    first = _nightly(good, root)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "no earlier run of this suite" in first.stdout

    second = _nightly(good, root)
    assert second.returncode == 0, second.stdout + second.stderr[-2000:]
    reports = sorted((root / "reports" / "nightly").iterdir())
    v = json.loads((reports[-1] / "verdict.json").read_text())
    assert v["status"] == "ok" and v["baseline_reason"] == "same suite hash"
    acc = [f for f in v["findings"] if f["aspect"] == "accuracy"]
    assert acc and all(f["verdict"] == "unchanged" for f in acc) and acc[0]["change"] == 0.0

    worse = _nightly(_suite(tmp_path, data, 0.1), root)
    assert worse.returncode == 1, worse.stdout + worse.stderr[-2000:]
    v = json.loads((reports[-1] / "verdict.json").read_text())
    reg = next(f for f in v["findings"] if f["aspect"] == "accuracy")
    assert reg["verdict"] == "regressed" and reg["p_value"] < 0.05 and reg["change"] < 0
    assert reg["ci"][1] < 0 and reg["n"] == 120
    md = (reports[-1] / "report.md").read_text()
    assert "REGRESSED" in md and "samples-<model>-<task>" in md and "Tonight's leaderboard" in md
    page = (reports[-1] / "report.html").read_text()
    assert "plotly" in page.lower() and "REGRESSED" in page and "<table>" in page
    assert "<script src=" not in page and len(page) > 1_000_000  # self-contained: plotly.js is inlined


def test_gc_keeps_the_newest_runs_and_leaves_others_alone(tmp_path: Path) -> None:
    from bench.config import parse_suite
    from bench.runner import NullDisplay, execute, plan_run

    data = _big_jsonl(tmp_path, 6)
    root = tmp_path / "results"
    ids = []
    for name in ("a", "a", "a", "b"):
        d = fake_suite(data, models=[{"name": "m", "backend": "fake"}])
        d["name"] = name
        plan = plan_run(parse_suite(d), root)
        execute(plan, NullDisplay(), executor="inline")
        ids.append(plan.run_id)
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "gc", "--keep-last", "1", "-o", str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    left = {x["run_id"] for x in store.list_runs(root)}
    assert left == {ids[2], ids[3]}
    assert set(store.samples_dataset(root).to_table(columns=["run_id"]).column("run_id").to_pylist()) == left
    assert not list(root.rglob(".deleting-*"))
