"""`bench run` end to end on the real SmolLM2 model and real ARC items, through the CLI.

Checks what a user gets: exit code, a leaderboard, Parquet that pandas reads with the documented
columns, numbers that an independent computation from the stored log-likelihoods reproduces, and
agreement with lm-eval's own evaluator on the same items through the same engine.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench import store
from bench.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
name: real-smoke
defaults: {limit: 6, seed: 11, batch_size: 4}
hardware: {name: ci-box, usd_per_hour: 0.36}
models:
  - {name: smollm2-135m, n_ctx: 2048}
tasks:
  - {name: arc_easy, kind: mcq, dataset: arc_easy}
  - {name: arc_challenge_2shot, kind: mcq, dataset: arc_challenge, num_fewshot: 2, limit: 4}
"""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, smollm2_path: str) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("cli")
    suite = d / "suite.yaml"
    suite.write_text(SUITE)
    out = d / "results"
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(suite), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {"proc": r, "root": out}


def _samples(root: Path) -> pd.DataFrame:
    files = sorted(root.rglob("samples-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _runs(root: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in sorted(root.rglob("runs-*.parquet"))], ignore_index=True)


def test_cli_run_succeeds_and_prints_a_leaderboard(cli_run: dict[str, Any]) -> None:
    r = cli_run["proc"]
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert "Accuracy" in r.stdout and "Efficiency" in r.stdout
    assert "smollm2-135m" in r.stdout and "arc_challenge_2shot" in r.stdout
    assert re.search(r"\d\.\d{3} \[\d\.\d{2}, \d\.\d{2}\]", r.stdout), r.stdout
    assert "wall time" in r.stdout


def test_parquet_has_the_documented_columns(cli_run: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()

    def documented(section: str) -> set[str]:
        body = readme.split(section, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
        names: set[str] = set()
        for line in body.splitlines():
            if line.startswith("| ") and not line.startswith("| column") and not line.startswith("| ---"):
                first = line.split("|")[1]
                names |= {n.strip().strip("`") for n in re.split(r"[,/]", first) if n.strip()}
        return names

    s = _samples(cli_run["root"])
    assert set(s.columns) == set(store.SAMPLES_SCHEMA.names)
    assert documented("### samples") == set(store.SAMPLES_SCHEMA.names)
    run_cols = documented("### runs")
    run_cols.discard("provenance and identity columns as above")
    expanded = set()
    for c in run_cols:
        expanded |= (
            {f"latency_{p}" for p in ("p50", "p90", "p95", "p99")} if c.startswith("latency_p50") else {c}
        )
    expanded |= {
        "run_id",
        "suite",
        "suite_hash",
        "seed",
        "bench_version",
        "git_sha",
        "hardware",
        "task",
        "task_kind",
        "dataset",
        "model",
        "backend",
        "latency_p90",
        "latency_p99",
    }
    assert set(store.RUNS_SCHEMA.names) <= expanded | {"p90", "p99"}


def test_every_row_is_complete_and_reproducible_from_its_logliks(cli_run: dict[str, Any]) -> None:
    s = _samples(cli_run["root"])
    assert len(s) == 6 + 4 and not s.duplicated(["model", "task", "item_id"]).any()
    assert s["error"].isna().all()
    assert (s["hardware"] == "ci-box").all() and (s["seed"] == 11).all()
    assert s["git_sha"].notna().all() and s["bench_version"].notna().all()
    assert (s["latency_s"] > 0).all() and (s["input_tokens"] > 0).all() and (s["tokens_evaluated"] > 0).all()
    by_task = {
        t: {r["id"]: r for r in load_dataset(d)}
        for t, d in (("arc_easy", "arc_easy"), ("arc_challenge_2shot", "arc_challenge"))
    }
    for _, row in s.iterrows():
        rec = by_task[row["task"]][row["item_id"]]
        lls = np.asarray(row["choice_logliks"])
        # lm-eval's definitions, computed here from the stored log-likelihoods alone
        acc = float(np.argmax(lls) == rec["answer"])
        lens = np.array([float(len(c)) for c in rec["choices"]])
        acc_norm = float(np.argmax(lls / lens) == rec["answer"])
        scores = dict(row["scores"])
        assert scores["acc"] == acc == row["score"] and scores["acc_norm"] == acc_norm
        assert row["gold_index"] == rec["answer"] and row["reference"] == rec["choices"][rec["answer"]]
        assert row["prediction"] == rec["choices"][int(np.argmax(lls))]
        p = np.exp(lls - lls.max()) / np.exp(lls - lls.max()).sum()
        assert row["confidence"] == pytest.approx(p.max())
    few = s[s.task == "arc_challenge_2shot"]
    assert few["prompt"].str.count("Question:").eq(3).all()  # two shots + the item
    runs = _runs(cli_run["root"])
    for (task, metric), g in runs.groupby(["task", "metric"]):
        vals = [dict(x)[metric] for x in s[s.task == task]["scores"]]
        assert g["value"].iloc[0] == pytest.approx(np.mean(vals))
        assert g["ci_low"].iloc[0] <= g["value"].iloc[0] <= g["ci_high"].iloc[0]
    assert runs["model_params"].iloc[0] == 134_515_008 and runs["quant"].iloc[0] == "Q4_1"
    assert (runs["cost_usd"] > 0).all() and (runs["peak_rss_mb"] > 50).all()


@pytest.mark.slow
def test_accuracy_agrees_exactly_with_lm_eval_evaluator(
    cli_run: dict[str, Any], smollm2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lm-eval's evaluator, with its own arc_easy task, scoring through bench's llama.cpp backend:
    its per-item acc/acc_norm must equal what bench stored, item by item."""
    pytest.importorskip("lm_eval")
    import lm_eval
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    from bench.backends.base import LoglikelihoodRequest
    from tests.integration.lm_eval_util import write_check_task

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))

    class BenchLM(LM):  # type: ignore[misc]
        def loglikelihood(self, requests: Any, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            reqs = [LoglikelihoodRequest(str(i), (tuple(r.args),)) for i, r in enumerate(requests)]
            return [(x.logliks[0], x.is_greedy[0]) for x in smollm2.loglikelihood(reqs)]

        def loglikelihood_rolling(self, requests: Any, disable_tqdm: bool = False) -> Any:
            raise NotImplementedError

        def generate_until(self, requests: Any, disable_tqdm: bool = False) -> Any:
            raise NotImplementedError

    task = write_check_task("arc_easy", tmp_path)
    res = lm_eval.simple_evaluate(
        model=BenchLM(),
        tasks=[task],
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
        limit=6,
        log_samples=True,
        bootstrap_iters=0,
    )
    assert res is not None
    theirs = {smp["doc_id"]: smp for smp in res["samples"][task]}
    ours = _samples(cli_run["root"]).query("task == 'arc_easy'").set_index("item_index")
    assert sorted(theirs) == sorted(ours.index)
    for doc_id, smp in theirs.items():
        row = ours.loc[doc_id]
        assert smp["acc"] == dict(row["scores"])["acc"], doc_id
        assert smp["acc_norm"] == dict(row["scores"])["acc_norm"], doc_id
        lm_lls = [float(r[0]) for r in smp["filtered_resps"]]
        assert lm_lls == pytest.approx(list(row["choice_logliks"]), abs=2e-3)
    acc = res["results"][task]["acc,none"]
    assert acc == pytest.approx(np.mean([dict(x)["acc"] for x in ours["scores"]]))
