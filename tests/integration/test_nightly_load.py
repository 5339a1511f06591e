"""Nightly latency verdicts on a shared machine: CPU-burning processes stand in for another job
(a package install, another team's tests) during one of two runs.

Pairing items does not remove load that changes over time, so without the machine calibration a
noise-only rerun of the real SmolLM2 model reads as "improved" or "regressed" at tiny p-values.
With it the rerun stays "unchanged", while a real slowdown is still "regressed" when the load was
in the baseline (and a real speed-up "improved" when the load is tonight).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import fake_suite

BURN = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def background_load(seconds: float = 240.0) -> Iterator[None]:
    """Two CPU-burning processes per CPU this process may use; each ends by itself after
    `seconds` at the latest, and all are stopped when the block ends."""
    n = 2 * len(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-c", BURN.format(s=seconds)]) for _ in range(n)]
    time.sleep(0.5)  # running before the run's first timing
    try:
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=30)


def _night(suite: Path, tmp: Path, n: int, *extra: str) -> tuple[int, dict[str, Any], str]:
    reports = tmp / f"reports-{n}"
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "nightly", str(suite), "-o", str(tmp / "results")]
        + ["--reports", str(reports), *extra],
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert r.returncode in (0, 1), r.stdout + r.stderr[-3000:]
    return r.returncode, json.loads((reports / "verdict.json").read_text()), r.stdout


def _finding(v: dict[str, Any], aspect: str) -> dict[str, Any]:
    return next(f for f in v["findings"] if f["aspect"] == aspect)


SMOLLM2 = """
name: nightly-load
defaults: {seed: 3, mode: latency, warmup: 2}
hardware: {name: ci-box, usd_per_hour: 0.36}
models:
  - {name: smollm2-135m, n_ctx: 512, n_threads: 1}
tasks:
  - {name: arc_easy, kind: mcq, dataset: arc_easy, limit: 24}
"""


@pytest.mark.slow
def test_a_noise_only_rerun_of_a_real_model_under_background_load_stays_unchanged(
    tmp_path: Path, smollm2_path: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(SMOLLM2)
    with background_load():
        _night(suite, tmp_path, 1)
    code, v, out = _night(suite, tmp_path, 2)  # the same model and settings on a quieter machine
    lat = _finding(v, "latency_p50")
    # the load was real: tonight's items ran faster, paired and significant, and the calibration saw it
    assert lat["change"] < -0.10 and lat["p_value"] < 0.05 and lat["calibration"] < 0.9, lat
    assert lat["verdict"] == "unchanged", {
        k: lat[k] for k in ("change", "calibration", "detail")
    }  # not read as faster
    assert _finding(v, "usd_per_1k_items")["verdict"] == "unchanged"
    assert "machine x0." in out

    with background_load():
        code, v, out = _night(suite, tmp_path, 3)  # the same again, loaded tonight
    lat = _finding(v, "latency_p50")
    assert lat["change"] > 0.10 and lat["p_value"] < 0.05 and lat["calibration"] > 1.1, lat
    assert lat["verdict"] == "unchanged", lat
    assert _finding(v, "usd_per_1k_items")["verdict"] == "unchanged"
    assert code == 0 and v["status"] == "ok", v


def _short(f: dict[str, Any]) -> str:
    """The numbers a failing verdict assertion needs, without pytest's truncation of a long dict."""
    return ", ".join(
        f"{k}={f.get(k)}"
        for k in ("verdict", "before", "after", "change", "p_value", "p_adjusted", "calibration")
    )


def _fake(tmp: Path, delay_s: float) -> Path:
    items = tmp / "items.jsonl"
    items.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"q{i:02d}-gold:{i % 3}",
                    "q": f"Item {i}?",
                    "opts": ["a", "bb", "ccc"],
                    "label": i % 3,
                }
            )
            + "\n"
            for i in range(30)
        )
    )
    d = fake_suite(items, models=[{"name": "m", "backend": "fake", "accuracy": 0.9, "delay_s": delay_s}])
    d["name"] = "nightly-load-fake"
    p = tmp / f"fake-{delay_s}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_load_cannot_hide_a_real_change_in_the_other_direction(tmp_path: Path) -> None:
    """The calibration widens the band only on the side the load could explain: a baseline slowed
    by load does not hide tonight's slowdown, tonight's load does not hide a speed-up."""
    wide = ("--cost-tolerance", "5")  # machine-time cost of the fake is the harness's own CPU time
    # 20 ms against 100 ms: the load adds its own wake-up and harness delay to each sleeping item
    # (on a CI box a loaded 20 ms fake read close to a quiet 40 ms one), never 80 ms of it
    with background_load():
        _night(_fake(tmp_path, 0.02), tmp_path, 1, *wide)
    code, v, _ = _night(_fake(tmp_path, 0.1), tmp_path, 2, *wide)  # five times as slow, quiet machine
    lat = _finding(v, "latency_p50")
    assert lat["calibration"] < 0.9 and lat["verdict"] == "regressed" and code == 1, _short(lat)
    slow_run = v["run_id"]

    with background_load():
        # five times as fast, loaded machine; against night 2 (by default the baseline would be night 1,
        # the newest run of the same suite hash)
        code, v, _ = _night(_fake(tmp_path, 0.02), tmp_path, 3, *wide, "--baseline", slow_run)
    lat = _finding(v, "latency_p50")
    assert lat["calibration"] > 1.1 and lat["verdict"] == "improved", _short(lat)
