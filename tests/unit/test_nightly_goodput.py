"""Nightly's goodput verdicts: the band and the one-request floor on hand-made level rows, and
two real sweeps of the same suite (`bench load`'s run_sweep against the zero server on
127.0.0.1): a slower server tonight makes goodput regress, and the other way round improve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.config import parse_suite
from bench.load.sweep import run_sweep
from bench.nightly import Tolerances, judge
from bench.nightly_goodput import judge_level
from bench.nightly_report import write_reports
from tests.load_sweeps import qa_items, sweep_suite, zero_server

SLO_TEXT = "ttft_s<=0.35,e2e_s<=1"


def _row(goodput: float, duration: float = 10.0, slo: str = SLO_TEXT, share: float = 1.0) -> dict[str, Any]:
    return {
        "model": "m", "task": "t", "level": "c4", "goodput_per_s": goodput, "duration_s": duration,
        "slo": slo, "slo_share": share, "n_requests": 40,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        (_row(4.0), _row(2.0), "regressed"),  # -50%
        (_row(4.0), _row(6.0), "improved"),
        (_row(4.0), _row(3.8), "unchanged"),  # -5%: inside the ±10% band
        (_row(4.0), _row(4.3), "unchanged"),
        (_row(3.0, duration=1.0), _row(2.0, duration=1.0), "unchanged"),  # one request in a 1 s level
        (_row(3.0, duration=1.0), _row(1.0, duration=1.0), "regressed"),  # two requests
        (_row(0.0), _row(2.0), "improved"),  # nothing met the SLO before
        (_row(0.0), _row(0.0), "unchanged"),
        (_row(4.0, slo="e2e_s<=2"), _row(1.0), "unchanged"),  # another SLO: not compared
    ],
)
def test_goodput_band_and_one_request_floor(
    before: dict[str, Any], after: dict[str, Any], verdict: str
) -> None:
    f = judge_level(before, after, 0.10)
    assert (f.verdict, f.aspect, f.before, f.after) == (
        verdict,
        "goodput_per_s@c4",
        before["goodput_per_s"],
        after["goodput_per_s"],
    )
    if before["slo"] != after["slo"]:
        assert f.detail.startswith("not compared: SLO") and f.change is None
    elif before["goodput_per_s"]:
        assert f.change == pytest.approx(after["goodput_per_s"] / before["goodput_per_s"] - 1)


def test_a_slower_server_tonight_regresses_goodput(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "results"
    data = qa_items(tmp_path / "items.jsonl", n=8)
    load = {"synchronous": False, "concurrencies": [4], "requests": 8, "slo": {"e2e_s": 0.3}, "timeout_s": 10}
    # the URL comes from the environment, so both nights run the same suite (same hash)
    suite = parse_suite(sweep_suite("nightly-load", data, [{"name": "m", "base_url_env": "ZERO_URL"}], load))
    ids = []
    for ttft in (0.02, 0.45):  # baseline: 50 ms a request; tonight: past the 0.3 s SLO
        with zero_server(ttft, 0.01) as url:
            monkeypatch.setenv("ZERO_URL", url)
            result = run_sweep(suite, root)
        assert not result.errors, result.errors
        ids.append(result.run_id)

    v = judge(root, ids[1], Tolerances())
    assert v.baseline_run_id == ids[0] and v.baseline_reason == "same suite hash"
    (f,) = [f for f in v.findings if f.aspect.startswith("goodput")]
    assert (f.model, f.task, f.aspect, f.verdict) == ("m", "colours", "goodput_per_s@c4", "regressed")
    assert f.after == pytest.approx(float(result.levels.iloc[0]["goodput_per_s"])) and f.after == 0.0
    assert f.before is not None and f.before > 4.0 and f.change == pytest.approx(-1.0)
    assert v.to_dict()["status"] == "regressed"
    out = write_reports(root, v, tmp_path / "reports")
    md = (out / "report.md").read_text()
    assert "| m | colours | goodput_per_s@c4 | REGRESSED |" in md

    first = judge(root, ids[0], Tolerances())  # no earlier run: the levels are new
    assert first.baseline_run_id is None
    assert [(f.aspect, f.verdict) for f in first.findings] == [("goodput_per_s@c4", "new")]
    back = judge(root, ids[0], Tolerances(), baseline=ids[1])  # the fast night against the slow one
    (g,) = [f for f in back.findings if f.aspect.startswith("goodput")]
    assert g.verdict == "improved" and g.before == 0.0 and g.after == f.before
    loose = judge(root, ids[1], Tolerances(goodput=1.0))  # a band of -100%: no drop can pass it
    assert [f.verdict for f in loose.findings if f.aspect.startswith("goodput")] == ["unchanged"]
