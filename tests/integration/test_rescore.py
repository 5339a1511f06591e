"""`bench rescore` against a full re-run, on the real SmolLM2 GGUF through llama.cpp.

A run scores gsm8k with bench's strict rule ("The answer is N" / "#### N") and ARC-Easy by
log-likelihood; the rescore changes the strict rule to "the last number in the output" (a suite
setting of the test plugin kind tests/plugins/regex_math.py, changed with --set) while the model
file is unreadable, so no model can load; a second full run is made with the changed rule. Greedy
decoding on llama.cpp gives the same outputs, so every per-item score and every aggregate of the
rescore must equal the re-run's, and the efficiency figures must be the source run's.

Slow (marked): two real runs of 5 gsm8k items at 64 tokens and 4 ARC items, about 90 s on a loaded
2-core machine; no shorter run has an item whose score the rule change moves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from bench import store
from bench.schema import RUNS_SCHEMA

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LAST_NUMBER = r"(-?[0-9][0-9.,]*)[^0-9]*$"
SUITE = """
name: rescore-real
defaults: {{warmup: 0}}
models:
  - name: smollm2-135m
    path: {path}
    n_threads: 1
tasks:
  - name: gsm8k
    kind: regex_math
    dataset: gsm8k
    limit: 5
    max_tokens: 64
{regex}
  - name: arc
    kind: mcq
    dataset: arc_easy
    limit: 4
"""


def _bench(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_PLUGINS": "tests.plugins.regex_math", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def _run(suite: Path, res: Path) -> str:
    r = _bench(["run", str(suite), "-o", str(res)])
    assert r.returncode == 0, r.stdout + r.stderr
    return str(store.list_runs(res)[0]["run_id"])


def _samples(res: Path, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    t = store.samples_dataset(res, [run_id]).to_table()
    return {(r["task"], r["item_id"]): r for r in t.to_pylist()}


def _runs(res: Path, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    files = store.runs_sources(Path(store.find_run(res, run_id)["path"]))
    t = ds.dataset([str(f) for f in files], schema=RUNS_SCHEMA, format="parquet").to_table()
    return {(r["task"], r["metric"]): r for r in t.to_pylist()}


def test_rescore_with_a_changed_rule_equals_a_rerun_and_loads_no_model(
    smollm2_path: str, tmp_path: Path
) -> None:
    model = tmp_path / "model.gguf"
    shutil.copyfile(smollm2_path, model)
    res = tmp_path / "results"
    before = tmp_path / "before.yaml"
    before.write_text(SUITE.format(path=model, regex=""))
    src = _run(before, res)

    model.chmod(0)  # no engine can read the weights while rescoring
    try:
        r = _bench(["rescore", src, "-o", str(res), "--set", f"tasks.gsm8k.answer_regex='{LAST_NUMBER}'"])
    finally:
        model.chmod(0o644)
    assert r.returncode == 0, r.stdout + r.stderr
    rescored = next(x["run_id"] for x in store.list_runs(res) if x["run_id"] != src)
    manifest = store.find_run(res, rescored)
    assert not (Path(manifest["path"]) / "logs").exists()  # no model worker was started
    derived = manifest["derived_from"]
    assert derived["run_id"] == src and derived["how"] == "rescore"
    assert derived["set"] == [f"tasks.gsm8k.answer_regex='{LAST_NUMBER}'"]
    assert len(derived["scoring_code_sha256"]) == 16
    by_task = {t["task"]: t for t in derived["tasks"]}
    assert by_task["arc"]["status"] == "rescored" and by_task["arc"]["moved"] == {}
    assert by_task["gsm8k"]["status"] == "rescored"
    moved = by_task["gsm8k"]["moved"]
    assert set(moved) == {"exact_match_strict"}, moved  # flexible match is the same rule as before
    assert (
        f"{moved['exact_match_strict']['before']:.4g} -> {moved['exact_match_strict']['after']:.4g}"
        in r.stdout
    )

    after = tmp_path / "after.yaml"
    after.write_text(SUITE.format(path=model, regex=f"    answer_regex: '{LAST_NUMBER}'"))
    rerun = _run(after, res)

    a, b, s = _samples(res, rescored), _samples(res, rerun), _samples(res, src)
    assert set(a) == set(b) == set(s) and len(a) == 9
    for key in a:
        assert a[key]["raw_output"] == b[key]["raw_output"] == s[key]["raw_output"], (
            key
        )  # greedy: same outputs
        if key[0] == "arc":  # log-likelihoods of the same weights and the same tokens
            assert a[key]["choice_logliks"] == pytest.approx(b[key]["choice_logliks"], abs=1e-6), key
        for col in ("scores", "extracted", "prediction", "pred_index", "correct", "score", "reference"):
            assert a[key][col] == b[key][col], (key, col)
        for col in ("latency_s", "ttft_s", "input_tokens", "output_tokens", "wall_s", "finish_reason"):
            assert a[key][col] == s[key][col], (key, col)  # measured in the source run, copied
    strict_moved = [k for k in a if k[0] == "gsm8k" and a[k]["scores"] != s[k]["scores"]]
    assert strict_moved, "the changed rule must change some item's score for this test to mean anything"

    ra, rb, rs = _runs(res, rescored), _runs(res, rerun), _runs(res, src)
    assert set(ra) == set(rb) == set(rs)
    for key in ra:
        for col in (
            "value",
            "ci_low",
            "ci_high",
            "stderr",
            "n_scored",
            "n",
            "n_errors",
            "primary",
            "status",
            "usd_per_correct",
        ):
            assert ra[key][col] == rb[key][col], (key, col)
        for col in (
            "latency_p50",
            "tokens_per_s",
            "wall_s",
            "peak_rss_mb",
            "cost_usd",
            "load_s",
            "model_params",
        ):
            assert ra[key][col] == rs[key][col], (key, col)
    assert ra[("gsm8k", "exact_match_strict")]["value"] != rs[("gsm8k", "exact_match_strict")]["value"]

    # compare, report and nightly read the rescored run like any other
    c = _bench(["compare", src, rescored, "--json", "-o", str(res)])
    assert c.returncode == 0, c.stderr
    rows = {t["task"]: t for t in json.loads(c.stdout)[0]["tasks"]}
    assert rows["gsm8k"]["a"] == rs[("gsm8k", "exact_match_strict")]["value"]
    assert rows["gsm8k"]["b"] == ra[("gsm8k", "exact_match_strict")]["value"]
    assert rows["arc"]["diff"] == 0.0
    rep = _bench(["report", rescored, "-o", str(res)])
    assert rep.returncode == 0 and "gsm8k" in rep.stdout and "arc" in rep.stdout, rep.stderr

    from bench.nightly import judge

    v = judge(res, rescored, baseline=src)
    acc = {f.task: f for f in v.findings if f.aspect == "accuracy"}
    assert acc["gsm8k"].after == ra[("gsm8k", "exact_match_strict")]["value"]
    assert acc["arc"].verdict == "unchanged"
