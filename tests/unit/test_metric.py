"""A metric is one object: each kind's metrics, primary and direction come from its `Metric` list, and
bits per byte / perplexity have one definition, per item and per corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench import store
from bench.config import parse_suite
from bench.errors import DataError
from bench.metrics import Metric, Ratio, kinds, primary_of
from bench.metrics.text import bits_per_byte, byte_perplexity, nats_to_bits, perplexity, word_perplexity
from bench.registry import TASKS, TaskPlugin
from bench.runner import NullDisplay, execute, plan_run
from bench.specs.tasks import MathSpec, PerplexitySpec
from bench.tasks import create_task, task_primary_metric


def test_loglik_figures_at_the_edges() -> None:
    for fn in (bits_per_byte, byte_perplexity, word_perplexity):
        with pytest.raises(ValueError, match="must be positive, got 0"):
            fn(-3.0, 0)
    assert bits_per_byte(-0.0, 5) == 0.0 and word_perplexity(0.0, 3) == 1.0
    assert byte_perplexity(-1e6, 1) == math.inf  # overflows a float: inf, never an OverflowError
    with np.errstate(over="raise"):
        assert perplexity(np.array([1e6, 0.0])).tolist() == [math.inf, 1.0]
    ratio = Ratio("nll", "bytes", nats_to_bits)
    with pytest.raises(ValueError, match="bytes must be positive"):
        ratio.item(1.0, 0.0)
    # no items, or no bytes at all: no corpus figure (a null value), not a division by zero
    for num, den in [([], []), ([1.0, 2.0], [0.0, 0.0])]:
        est = ratio.estimate(np.array(num), np.array(den), seed=1)
        assert est.n == 0 and math.isnan(est.mean)


def test_an_empty_document_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "docs.jsonl"
    p.write_text(
        json.dumps({"id": "a", "text": "some words"}) + "\n" + json.dumps({"id": "b", "text": "  "}) + "\n"
    )
    spec = PerplexitySpec(name="p", kind="perplexity", dataset={"path": str(p)})
    task = create_task(spec, {"limit": None, "num_fewshot": 0, "seed": 1})
    with pytest.raises(DataError, match=r"record 1 \(id b\): no text in field 'text'"):
        task.items()


def test_perplexity_corpus_figures_are_sum_ratios_of_the_stored_items(tmp_path: Path) -> None:
    suite = {
        "name": "ppl",
        "defaults": {"seed": 3},
        "models": [{"name": "f", "backend": "fake"}],
        "tasks": [{"name": "p", "kind": "perplexity", "dataset": "squad", "limit": 25}],
    }
    execute(plan_run(parse_suite(suite), tmp_path), NullDisplay(), executor="inline")
    s = store.samples_dataset(tmp_path).to_table().to_pandas()
    r = store.runs_dataset(tmp_path).to_table().to_pandas().set_index("metric")
    scores = [dict(x) for x in s["scores"]]
    assert len(scores) == 25
    nll = sum(x["nll"] for x in scores)
    n_bytes = sum(x["bytes"] for x in scores)
    n_words = sum(x["words"] for x in scores)
    # bytes are the texts' UTF-8 bytes; the per-item figure is the same function of the item alone
    assert [x["bytes"] for x in scores] == [float(len(t.encode())) for t in s["prompt"]]
    assert list(s["score"]) == [bits_per_byte(-x["nll"], x["bytes"]) for x in scores]
    assert r.loc["bits_per_byte", "value"] == pytest.approx(nll / n_bytes / math.log(2), rel=1e-12)
    assert r.loc["byte_perplexity", "value"] == pytest.approx(math.exp(nll / n_bytes), rel=1e-12)
    assert r.loc["word_perplexity", "value"] == pytest.approx(math.exp(nll / n_words), rel=1e-12)
    assert r.loc["bits_per_byte", "value"] != pytest.approx(s["score"].mean(), rel=1e-9)  # not a mean
    assert not r["higher_is_better"].any() and r.loc["bits_per_byte", "primary"]
    assert set(r.index) == {m.name for m in kinds.PERPLEXITY}
    try:
        from lm_eval.api.metrics import bits_per_byte as lm_bpb
    except ImportError:
        return
    pairs = [(-x["nll"], int(x["bytes"])) for x in scores]
    assert r.loc["bits_per_byte", "value"] == pytest.approx(lm_bpb(pairs), rel=1e-12)


@pytest.mark.parametrize(
    ("dataset", "primary"), [("gsm8k", "exact_match_strict"), ("math500", "exact_match")]
)
def test_the_primary_metric_is_chosen_once(dataset: str, primary: str) -> None:
    """The registry (for rows written before a task exists) and the built task agree."""
    spec = MathSpec(name="m", kind="math", dataset=dataset)
    task = create_task(spec, {"limit": 1, "num_fewshot": 0, "seed": 1})
    assert task_primary_metric(spec) == task.primary_metric == primary
    assert tuple(task.metrics) == TASKS.get("math").metrics_for(spec)


def test_a_kind_declares_one_primary() -> None:
    two = (Metric("a", primary=True), Metric("b", primary=True))
    with pytest.raises(ValueError, match="more than one primary metric: a, b"):
        primary_of(two)
    with pytest.raises(ValueError, match="at least one metric"):
        primary_of(())
    assert primary_of((Metric("a"), Metric("b", primary=True))).name == "b"
    assert primary_of((Metric("a"), Metric("b"))).name == "a"
    spec = TASKS.get("mcq").spec
    with pytest.raises(ValueError, match="more than one primary"):
        TaskPlugin(name="mcq", spec=spec, factory=lambda s, **kw: None, metrics=two)  # type: ignore[arg-type,return-value]
    shorthand = TaskPlugin(name="mcq", spec=spec, factory=lambda s, **kw: None, primary_metric="hit")  # type: ignore[arg-type,return-value]
    assert shorthand.metrics == (Metric("hit", primary=True),)


TINY_LM_EVAL = """task: tiny_mc
dataset_path: json
dataset_kwargs: {data_files: {test: DATA}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{q}}"
doc_to_choice: "{{choices}}"
doc_to_target: label
metric_list:
  - {metric: acc, aggregation: mean, higher_is_better: false}
  - {metric: acc_norm, aggregation: mean, higher_is_better: true}
"""


def test_lm_eval_metrics_take_their_direction_from_the_task_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A direction only the lm-eval task states (acc declared lower-is-better) reaches the runs rows."""
    pytest.importorskip("lm_eval", reason="pip install 'bench[lmeval]'")
    for k, v in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "c"),
    }.items():
        monkeypatch.setenv(k, v)
    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(
            json.dumps({"q": f"Is {i} odd?", "choices": ["no", "yes"], "label": i % 2}) + "\n"
            for i in range(6)
        )
    )
    (tmp_path / "tiny.yaml").write_text(TINY_LM_EVAL.replace("DATA", str(data)))
    suite = {
        "name": "lm",
        "defaults": {"seed": 3},
        "models": [{"name": "f", "backend": "fake", "accuracy": 1.0}],
        "tasks": [
            {
                "name": "t",
                "kind": "lm_eval",
                "task": "tiny_mc",
                "include_path": str(tmp_path),
                "include_defaults": False,
            }
        ],
    }
    execute(plan_run(parse_suite(suite), tmp_path / "out"), NullDisplay(), executor="inline")
    r = store.runs_dataset(tmp_path / "out").to_table().to_pandas().set_index("metric")
    assert r["higher_is_better"].to_dict() == {"acc": False, "acc_norm": True}
    assert r["primary"].to_dict() == {"acc": True, "acc_norm": False}
    s = store.samples_dataset(tmp_path / "out").to_table().to_pandas()
    acc = [dict(x)["acc"] for x in s["scores"]]
    assert len(acc) == 6 and r.loc["acc", "value"] == pytest.approx(np.mean(acc))  # a mean of items


def test_a_task_that_could_not_run_records_its_primary_metrics_direction(tmp_path: Path) -> None:
    """The error row of a (model, task) that never ran says which way its metric points, as a row
    that ran would: a failed perplexity task must not read as higher-is-better."""
    from bench.summary import error_summary
    from bench.tasks import task_primary

    p = tmp_path / "docs.jsonl"
    p.write_text('{"id": "a", "text": "one two"}\n')
    spec = PerplexitySpec(name="p", kind="perplexity", dataset={"path": str(p)})
    (row,) = error_summary({"model": "m"}, task_primary(spec), "model failed to load: x")
    assert (row["metric"], row["higher_is_better"], row["status"]) == ("bits_per_byte", False, "error")
    mcq = parse_suite(
        {
            "name": "s",
            "models": [{"name": "f", "backend": "fake"}],
            "tasks": [{"name": "a", "kind": "mcq", "dataset": "arc_easy"}],
        }
    ).tasks[0]
    (row,) = error_summary({}, task_primary(mcq), "x")
    assert (row["metric"], row["higher_is_better"]) == ("acc", True)
