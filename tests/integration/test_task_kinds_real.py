"""Every task kind on the real SmolLM2 model through the runner: rows with raw outputs and extracted
answers, ROUGE that rouge-score reproduces from the stored outputs, and bench's native multiple
choice agreeing exactly with the same lm-eval task run through bench (`kind: lm_eval`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench import store
from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(
    tmp_path_factory: pytest.TempPathFactory, smollm2_path: str, monkeypatch_module: pytest.MonkeyPatch
) -> dict[str, Any]:
    pytest.importorskip("lm_eval")
    from tests.integration.lm_eval_util import write_check_task

    d = tmp_path_factory.mktemp("kinds")
    monkeypatch_module.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch_module.setenv("HF_DATASETS_CACHE", str(d / "hf"))
    lm_task = write_check_task("arc_easy", d)
    suite = parse_suite(
        {
            "name": "kinds",
            "defaults": {"limit": 2, "seed": 3, "batch_size": 2},
            "models": [{"name": "smollm2-135m"}],
            "tasks": [
                {"name": "arc_native", "kind": "mcq", "dataset": "arc_easy", "limit": 8},
                {
                    "name": "arc_lm_eval",
                    "kind": "lm_eval",
                    "task": lm_task,
                    "include_path": str(d),
                    "limit": 8,
                },
                {"name": "arc_letter", "kind": "mcq", "dataset": "arc_easy", "method": "generate"},
                {
                    "name": "gsm8k",
                    "kind": "math",
                    "dataset": "gsm8k",
                    "num_fewshot": 2,
                    "max_tokens": 48,
                    "chat": "never",
                },
                {"name": "xsum", "kind": "summarize", "dataset": "xsum", "max_tokens": 32},
                {"name": "squad", "kind": "qa", "dataset": "squad", "chat": "never"},
                {"name": "ppl", "kind": "perplexity", "dataset": "xsum", "max_chars": 600},
            ],
        }
    )
    plan = plan_run(suite, d / "results")
    result = execute(plan, NullDisplay(), executor="inline")
    samples = store.samples_dataset(d / "results").to_table().to_pandas()
    runs = store.runs_dataset(d / "results").to_table().to_pandas()
    return {"result": result, "samples": samples, "runs": runs}


def test_every_kind_ran_without_errors(run: dict[str, Any]) -> None:
    s: pd.DataFrame = run["samples"]
    assert not run["result"].model_errors
    assert s["error"].isna().all(), s[s.error.notna()][["task", "error"]]
    counts = s.groupby("task").size().to_dict()
    assert counts == {
        "arc_native": 8,
        "arc_lm_eval": 8,
        "arc_letter": 2,
        "gsm8k": 2,
        "xsum": 2,
        "squad": 2,
        "ppl": 2,
    }
    r = run["runs"]
    assert (r["status"] == "ok").all()
    assert set(r[r.primary]["metric"]) == {"acc", "exact_match_strict", "rougeL", "f1", "bits_per_byte"}


def test_generated_rows_keep_raw_output_and_extracted_answer(run: dict[str, Any]) -> None:
    s = run["samples"]
    gen = s[s.task.isin(["arc_letter", "gsm8k", "xsum", "squad"])]
    assert gen["raw_output"].notna().all() and (gen["output_tokens"] > 0).all()
    assert (gen["ttft_s"] > 0).all() and (gen["ttft_s"] <= gen["latency_s"]).all()
    gsm = s[s.task == "gsm8k"]
    assert gsm["method"].eq("generate").all() and gsm["prompt"].str.count("Q: ").eq(3).all()
    letter = s[s.task == "arc_letter"]
    assert letter["method"].eq("chat_letter").all()  # SmolLM2 is an instruct model with a chat template


def test_rouge_agrees_with_rouge_score_on_stored_outputs(run: dict[str, Any]) -> None:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    xs = run["samples"].query("task == 'xsum'")
    for _, row in xs.iterrows():
        want = scorer.score(row["reference"], row["extracted"])
        got = dict(row["scores"])
        for k in ("rouge1", "rouge2", "rougeL"):
            assert got[k] == pytest.approx(want[k].fmeasure)


def test_native_mcq_and_lm_eval_task_agree_exactly(run: dict[str, Any]) -> None:
    s = run["samples"]
    native = s[s.task == "arc_native"].set_index("item_index").sort_index()
    lm = s[s.task == "arc_lm_eval"].set_index("item_index").sort_index()
    assert list(native.index) == list(lm.index)
    for idx in native.index:
        a, b = dict(native.loc[idx, "scores"]), dict(lm.loc[idx, "scores"])
        assert a["acc"] == b["acc"] and a["acc_norm"] == b["acc_norm"], idx
        assert list(native.loc[idx, "choice_logliks"]) == pytest.approx(
            list(lm.loc[idx, "choice_logliks"]), abs=2e-3
        )
    r = run["runs"]
    acc = r[r.metric == "acc"].set_index("task")["value"]
    assert acc["arc_native"] == acc["arc_lm_eval"]
    assert acc["arc_native"] == pytest.approx(np.mean([dict(x)["acc"] for x in native["scores"]]))


def test_bits_per_byte_is_plausible_for_english(run: dict[str, Any]) -> None:
    bpb = run["runs"].query("metric == 'bits_per_byte'")["value"].iloc[0]
    assert 0.5 < bpb < 2.0  # a 135M model on news text; random guessing over bytes would be 8
