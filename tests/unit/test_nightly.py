"""`bench nightly`: verdicts against the previous comparable run for accuracy, latency, cost and
memory, failures, `--baseline`, `--no-run`, the machine calibration, reports, exit codes; `bench gc`.

Every report goes to a folder the test names (`--reports`), so nothing depends on the date the
runs happen to fall on (three runs across midnight UTC used to read the previous day's folder).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import store
from bench.nightly import load_verdict
from tests.conftest import fake_suite

ITEM_IDS = [f"q{i:03d}-gold:{i % 3}" for i in range(120)]


def _suite(tmp: Path, data: Path, *, usd_per_hour: float = 3.6, **model: Any) -> Path:
    spec = {"name": "m", "backend": "fake", "accuracy": 0.9, **model}
    d = fake_suite(data, models=[spec], batch_size=8)
    d["name"] = "nightly"
    d["hardware"]["usd_per_hour"] = usd_per_hour
    body = yaml.safe_dump(d)
    p = tmp / f"nightly-{hashlib.sha256(body.encode()).hexdigest()[:12]}.yaml"
    p.write_text(body)
    return p


def _nightly(suite: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", "nightly", str(suite), "-o", str(root), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


class Night:
    """Runs `bench nightly` into one results folder, each night's reports in a folder of its own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "results"
        self.nights = 0

    def run(self, suite: Path, *extra: str, code: int | None = 0) -> dict[str, Any]:
        self.nights += 1
        self.reports = self.tmp / f"reports-{self.nights}"
        r = _nightly(suite, self.root, "--reports", str(self.reports), *extra)
        self.out = r.stdout + r.stderr
        if code is not None:
            assert r.returncode == code, self.out[-3000:]
        return json.loads((self.reports / "verdict.json").read_text())


def _big_jsonl(tmp: Path, n: int = 120) -> Path:
    p = tmp / "items.jsonl"
    p.write_text(
        "\n".join(
            json.dumps({"id": ITEM_IDS[i], "q": f"Item {i}?", "opts": ["a", "bb", "ccc"], "label": i % 3})
            for i in range(n)
        )
        + "\n"
    )
    return p


def _finding(v: dict[str, Any], aspect: str) -> dict[str, Any]:
    return next(f for f in v["findings"] if f["aspect"] == aspect)


def test_same_configuration_twice_is_unchanged_and_a_worse_model_regresses(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path)
    night = Night(tmp_path)
    good = _suite(tmp_path, data)
    first = night.run(good)
    assert "no earlier run of this suite" in night.out and first["baseline_run_id"] is None

    v = night.run(good)
    assert v["status"] == "ok" and v["baseline_reason"] == "same suite hash"
    assert v["baseline_run_id"] == first["run_id"]
    acc = [f for f in v["findings"] if f["aspect"] == "accuracy"]
    assert acc and all(f["verdict"] == "unchanged" for f in acc) and acc[0]["change"] == 0.0

    v = night.run(_suite(tmp_path, data, accuracy=0.1), code=1)
    reg = _finding(v, "accuracy")
    assert reg["verdict"] == "regressed" and reg["p_value"] < 0.05 and reg["change"] < 0
    assert reg["ci"][1] < 0 and reg["n"] == 120
    md = (night.reports / "report.md").read_text()
    assert "REGRESSED" in md and "samples-<model>-<task>" in md and "Tonight's leaderboard" in md
    page = (night.reports / "report.html").read_text()
    assert "plotly" in page.lower() and "REGRESSED" in page and "<table>" in page
    assert "<script src=" not in page and len(page) > 1_000_000  # self-contained: plotly.js is inlined


def test_latency_verdicts_follow_the_fakes_delay_and_carry_the_calibration(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path, 30)
    night = Night(tmp_path)
    wide = ("--cost-tolerance", "5")  # machine-time cost follows the harness's own CPU time: not under test
    night.run(_suite(tmp_path, data, delay_s=0.02), *wide)
    v = night.run(_suite(tmp_path, data, delay_s=0.02), *wide)
    assert _finding(v, "latency_p50")["verdict"] == "unchanged", _finding(v, "latency_p50")

    # four times as slow: a real slowdown, larger than any load the other processes on a shared
    # 2-core machine put on the calibration between two runs (a band widened by it may hide 2x)
    v = night.run(_suite(tmp_path, data, delay_s=0.08), *wide, code=1)
    lat = _finding(v, "latency_p50")
    assert lat["verdict"] == "regressed" and lat["p_value"] < 0.05 and lat["n"] == 30, lat
    assert 0.078 < lat["after"] < 0.1 and 0.018 < lat["before"] < 0.035
    assert lat["calibration"] is not None and lat["calibration"] > 0
    assert "machine calibration: tonight" in night.out and "latency_p50" in night.out

    # what the run stored: calibration timings before, during and after each task
    row = store.runs_dataset(night.root, [v["run_id"]]).to_table().to_pylist()[0]
    assert row["calib_n"] >= 2 and 0 < row["calib_min_s"] <= row["calib_s"] <= row["calib_max_s"] < 5
    cal = v["calibration"]
    assert cal["run_s"] == pytest.approx(row["calib_s"]) and cal["ratio"] == pytest.approx(lat["calibration"])
    md = (night.reports / "report.md").read_text()
    assert "## Machine calibration" in md and f"{row['calib_s']:.4f} s" in md
    assert f"x{lat['calibration']:.2f}" in md

    # back to fast, against the slow night (the default baseline is the newest run of the same
    # configuration, the first fast night): improved, exit 0
    slow = v["run_id"]
    v = night.run(_suite(tmp_path, data, delay_s=0.02), *wide, "--baseline", slow)
    assert v["baseline_run_id"] == slow and v["baseline_reason"] == "chosen with --baseline"
    assert _finding(v, "latency_p50")["verdict"] == "improved" and v["status"] == "ok"


def test_cost_verdicts_follow_token_prices_and_the_hourly_rate(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path, 30)
    night = Night(tmp_path)
    cheap = {"input_per_mtok": 100.0}
    night.run(_suite(tmp_path, data, usd_per_hour=0.0, price=cheap))
    v = night.run(_suite(tmp_path, data, usd_per_hour=0.0, price=cheap))
    assert _finding(v, "usd_per_1k_items")["verdict"] == "unchanged"
    v = night.run(_suite(tmp_path, data, usd_per_hour=0.0, price={"input_per_mtok": 300.0}), code=1)
    cost = _finding(v, "usd_per_1k_items")
    assert cost["verdict"] == "regressed" and cost["change"] == pytest.approx(2.0), cost
    assert v["baseline_reason"].startswith("same suite name, different configuration")
    assert cost["calibration"] == 1.0  # token prices only: machine load cannot enter this cost

    # machine time: the same 20 ms per item at 10x the hourly rate
    night.run(_suite(tmp_path, data, usd_per_hour=3.6, delay_s=0.02), code=None)
    v = night.run(_suite(tmp_path, data, usd_per_hour=36.0, delay_s=0.02), "--latency-tolerance", "5", code=1)
    cost = _finding(v, "usd_per_1k_items")
    assert cost["verdict"] == "regressed" and 5 < cost["change"] + 1 < 15, cost
    assert _finding(v, "latency_p50")["verdict"] == "unchanged"


def test_memory_verdicts_follow_what_the_model_holds(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path, 12)
    night = Night(tmp_path)
    night.run(_suite(tmp_path, data))
    v = night.run(_suite(tmp_path, data, hold_mb={"loglikelihood": 400}), code=1)
    mem = _finding(v, "peak_rss_mb")
    assert mem["verdict"] == "regressed" and mem["after"] - mem["before"] > 300, mem
    v = night.run(_suite(tmp_path, data), "--baseline", v["run_id"])
    mem = _finding(v, "peak_rss_mb")
    assert mem["verdict"] == "improved" and mem["before"] - mem["after"] > 300, mem


def test_a_model_that_fails_tonight_regresses_and_one_that_recovers_improves(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path, 20)
    night = Night(tmp_path)
    night.run(_suite(tmp_path, data))
    v = night.run(_suite(tmp_path, data, fail_items=ITEM_IDS[:20]), code=1)
    f = _finding(v, "accuracy")
    assert f["verdict"] == "regressed" and f["after"] is None and f["before"] > 0.5
    assert f["detail"] == "failed tonight: fake failure" and "regressed m · custom · accuracy" in night.out
    assert v["status"] == "regressed" and v["n_regressed"] == 1
    v = night.run(_suite(tmp_path, data), "--baseline", v["run_id"])
    f = _finding(v, "accuracy")
    assert f["verdict"] == "improved" and f["detail"] == "failed in the baseline, runs now"


def test_baseline_and_no_run(tmp_path: Path) -> None:
    data = _big_jsonl(tmp_path, 60)
    night = Night(tmp_path)
    good, bad = _suite(tmp_path, data), _suite(tmp_path, data, accuracy=0.1)
    a = night.run(good)["run_id"]
    b = night.run(bad, code=1)["run_id"]
    c = night.run(good)  # the default baseline: the newest run of the same configuration, not the bad one
    assert c["baseline_run_id"] == a and c["baseline_reason"] == "same suite hash"
    assert _finding(c, "accuracy")["verdict"] == "unchanged" and _finding(c, "accuracy")["change"] == 0.0
    n_runs = len(store.list_runs(night.root))

    v = night.run(good, "--no-run", "--baseline", b)  # tonight's stored run against the bad night
    assert v["run_id"] == c["run_id"] and v["baseline_run_id"] == b
    assert v["baseline_reason"] == "chosen with --baseline"
    assert _finding(v, "accuracy")["verdict"] == "improved" and _finding(v, "accuracy")["change"] > 0.5
    assert len(store.list_runs(night.root)) == n_runs  # --no-run ran nothing

    v = night.run(bad, "--no-run")  # the newest run of the suite, whichever file names it
    assert v["run_id"] == c["run_id"] and v["baseline_run_id"] == a
    assert len(store.list_runs(night.root)) == n_runs


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--no-run",), "--no-run: no stored run of suite 'nightly'"),
        (("--baseline", "20990101T000000Z-nosuch"), "--baseline: no run '20990101T000000Z-nosuch'"),
    ],
)
def test_bad_nightly_arguments_are_one_line_before_anything_runs(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    root = tmp_path / "results"
    r = _nightly(_suite(tmp_path, _big_jsonl(tmp_path, 5)), root, *extra)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not store.list_runs(root)  # nothing ran


def test_a_baseline_of_another_suite_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from bench.config import parse_suite
    from bench.runner import NullDisplay, execute, plan_run

    data = _big_jsonl(tmp_path, 5)
    root = tmp_path / "results"
    d = fake_suite(data, models=[{"name": "m", "backend": "fake"}])
    d["name"] = "other"
    plan = plan_run(parse_suite(d), root)
    execute(plan, NullDisplay(), executor="inline")
    r = _nightly(_suite(tmp_path, data), root, "--baseline", plan.run_id)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip() == f"error: --baseline: run {plan.run_id} is of suite 'other', not 'nightly'"
    assert [x["run_id"] for x in store.list_runs(root)] == [plan.run_id]


@pytest.mark.parametrize(
    ("ratio", "machine", "verdict"),
    [
        (1.05, 1.0, "unchanged"),
        (1.2, 1.0, "regressed"),
        (0.8, 1.0, "improved"),
        (1.2, None, "regressed"),  # no calibration: the plain tolerance
        # tonight's machine 1.5x slower: the load may explain up to 1.5 ** 1.5 = 1.84x (plus the
        # 10% tolerance); 2.2x is more than the load
        (1.5, 1.5, "unchanged"),
        (1.95, 1.5, "unchanged"),
        (2.2, 1.5, "regressed"),
        (0.8, 1.5, "improved"),  # faster on a slower machine
        # the baseline was slowed (tonight's machine 0.6x, up to 0.46x for a sustained job): 0.5x is
        # the load, 0.4x is more, and 1.2x is a real slowdown
        (0.6, 0.6, "unchanged"),
        (0.5, 0.6, "unchanged"),
        (0.4, 0.6, "improved"),
        (1.2, 0.6, "regressed"),
    ],
)
def test_load_verdict_credits_the_machine_change_either_way(
    ratio: float, machine: float | None, verdict: str
) -> None:
    assert load_verdict(ratio, machine, 0.10) == verdict


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
