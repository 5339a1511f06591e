"""The onnxruntime-genai backend against the Hugging Face model it was exported from.

A tiny Llama (byte-level BPE tokenizer, 2 layers, trained for a few seconds so that its greedy output
is real text ending in an end token) is built here, with no download, and converted by
onnxruntime-genai's own model builder at fp32: greedy generation must then match transformers token
for token, and log-likelihoods must match transformers' log-probabilities.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.backends.base import GenerateRequest, LoglikelihoodRequest, RollingRequest
from bench.backends.onnx_genai import OnnxGenAIBackend
from bench.errors import BackendError, BackendUnavailable

# the engine; torch, transformers and tokenizers make the reference model; onnx and onnx_ir are
# the model builder's own imports (onnx_ir is not a dependency of onnxruntime-genai itself)
_MISSING = [
    m
    for m in ("onnxruntime_genai", "torch", "transformers", "tokenizers", "onnx", "onnx_ir")
    if importlib.util.find_spec(m) is None
]
needs_engine = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime_genai") is None,
    reason="onnxruntime-genai is not installed (pip install 'bench[onnx]')",
)

SUBJECTS = ["the cat", "the dog", "a bird", "my friend", "the old man", "a small fox"]
VERBS = ["sat on", "ran to", "looked at", "jumped over", "walked past"]
OBJECTS = ["the mat", "the red door", "a green tree", "the river", "the big house"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
EOS = 1


def _build_hf_model(out: Path) -> None:
    """Tokenizer + Llama trained to continue the toy sentences and end each with </s>."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(0)
    sents = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(400)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<s>", "</s>", "<unk>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(sents, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)

    ids: list[int] = []
    for s in sents:
        ids += fast(s, add_special_tokens=False).input_ids + [EOS]
    data = torch.tensor(ids)
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(fast),
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=EOS,
        pad_token_id=3,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        starts = torch.randint(0, len(data) - 33, (16,), generator=g)
        batch = torch.stack([data[s : s + 32] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().save_pretrained(out)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if _MISSING:
        pytest.skip(f"not installed: {', '.join(_MISSING)} (pip install 'bench[onnx,transformers]' onnx-ir)")
    import torch

    # One thread: this model is far too small to gain from more, and on a busy 2-core machine
    # OpenMP's spinning threads made its training 15x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-llama")
    hf_dir, onnx_dir = root / "hf", root / "onnx"
    _build_hf_model(hf_dir)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder"]
    cmd += ["-i", str(hf_dir), "-o", str(onnx_dir), "-p", "fp32", "-e", "cpu", "-c", str(root / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, f"model builder failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    yield {"hf": hf_dir, "onnx": onnx_dir, "root": root}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend(tiny: dict[str, Path]) -> Iterator[OnnxGenAIBackend]:
    b = OnnxGenAIBackend(tiny["onnx"], model_name="tiny")
    yield b
    b.close()


@pytest.fixture(scope="module")
def hf(tiny: dict[str, Path]) -> tuple[Any, Any]:
    from transformers import AutoTokenizer, LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(tiny["hf"]).eval(), AutoTokenizer.from_pretrained(tiny["hf"])


def _hf_greedy(model: Any, ids: list[int], n: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=EOS, pad_token_id=3
        )
    new = out[0, len(ids) :].tolist()
    return new[: new.index(EOS)] if EOS in new else new


def _hf_logprobs(model: Any, ctx: list[int], cont: list[int]) -> tuple[float, bool]:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ctx + cont])).logits[0].double()
    rows = logits[len(ctx) - 1 : len(ctx) + len(cont) - 1]
    logp = torch.log_softmax(rows, dim=-1)
    ll = float(sum(logp[i, t] for i, t in enumerate(cont)))
    return ll, bool(all(int(rows[i].argmax()) == t for i, t in enumerate(cont)))


# ---------------------------------------------------------------------- generation


@pytest.mark.parametrize(
    "prompt", ["the cat", "a small fox jumped", "the old man walked past the big house. a"]
)
def test_greedy_generation_equals_transformers(
    backend: OnnxGenAIBackend, hf: tuple[Any, Any], prompt: str
) -> None:
    model, tok = hf
    ids = backend.tokenize(prompt)
    assert ids == tok(prompt, add_special_tokens=False).input_ids  # same tokenization, no BOS added
    got = backend.generate([GenerateRequest("g", prompt, max_tokens=24)])[0]
    assert got.error is None
    ref = _hf_greedy(model, ids, 24)
    assert got.output_tokens == len(ref) > 0
    assert got.text == tok.decode(ref)
    assert got.input_tokens == len(ids)
    # the toy model ends its sentence with </s>: an end token is a stop, not a length cut
    assert got.finish_reason == ("stop" if len(ref) < 24 else "length")


def test_stop_sequences_max_tokens_and_ttft(backend: OnnxGenAIBackend) -> None:
    prompt = "the dog"
    free = backend.generate([GenerateRequest("a", prompt, max_tokens=24)])[0]
    assert free.error is None and free.finish_reason == "stop" and free.output_tokens < 24
    assert free.text.endswith(".")
    assert free.ttft_s is not None and 0 < free.ttft_s <= free.latency_s

    limited = backend.generate([GenerateRequest("b", prompt, max_tokens=3)])[0]
    assert limited.output_tokens == 3 and limited.finish_reason == "length"
    assert free.text.startswith(limited.text) and len(limited.text) < len(free.text)

    word = free.text.split()[1]  # a word in the middle of the output
    stopped = backend.generate([GenerateRequest("c", prompt, max_tokens=24, stop=("zzz", word))])[0]
    assert stopped.finish_reason == "stop" and word not in stopped.text
    assert free.text.startswith(stopped.text) and stopped.output_tokens < free.output_tokens


def test_chat_messages_use_the_models_template(
    backend: OnnxGenAIBackend, hf: tuple[Any, Any], tiny: dict[str, Path]
) -> None:
    _, tok = hf
    messages = (("user", "the cat"),)
    want = tok.apply_chat_template(
        [{"role": "user", "content": "the cat"}], tokenize=False, add_generation_prompt=True
    )
    assert backend.render_chat(messages) == want
    assert backend.info().chat_template
    r = backend.generate([GenerateRequest("m", want, max_tokens=5, messages=messages)])[0]
    assert r.error is None and r.input_tokens == len(backend.tokenize(want))

    bare = tiny["root"] / "no-template"
    if not bare.exists():
        shutil.copytree(tiny["onnx"], bare)
        (bare / "chat_template.jinja").unlink()
        cfg = json.loads((bare / "tokenizer_config.json").read_text())
        cfg.pop("chat_template", None)
        (bare / "tokenizer_config.json").write_text(json.dumps(cfg))
    plain = OnnxGenAIBackend(bare, model_name="bare")
    assert not plain.info().chat_template
    r = plain.generate([GenerateRequest("m", want, max_tokens=5, messages=messages)])[0]
    assert r.error is not None and "no chat template" in r.error
    assert plain.generate([GenerateRequest("p", "the cat", max_tokens=3)])[0].error is None


# ---------------------------------------------------------------------- log-likelihoods


def test_loglikelihood_equals_transformers_and_ranks_choices_alike(
    backend: OnnxGenAIBackend, hf: tuple[Any, Any]
) -> None:
    model, _ = hf
    items = [
        ("the cat sat on", [" the mat.", " the river.", " jumped."]),
        ("a bird looked at ", ["a green tree.", "the big house.", "the the the"]),  # trailing space moves
        ("", ["the dog ran to the river.", "river the to ran dog the."]),  # empty context: BOS start
    ]
    reqs = [LoglikelihoodRequest(f"i{n}", tuple((c, x) for x in xs)) for n, (c, xs) in enumerate(items)]
    got = backend.loglikelihood(reqs)
    naive = 0
    for req, resp in zip(reqs, got, strict=True):
        assert resp.error is None, resp.error
        ref = []
        for (c, x), ll, greedy, n in zip(
            req.pairs, resp.logliks, resp.is_greedy, resp.continuation_tokens, strict=True
        ):
            ctx, cont = backend.encode_pair(c, x)
            assert n == len(cont) > 0
            ref_ll, ref_greedy = _hf_logprobs(model, ctx, cont)
            assert ll == pytest.approx(ref_ll, abs=1e-3), (c, x)
            assert greedy == ref_greedy
            ref.append(ref_ll)
            naive += len(ctx) + len(cont)
        assert np.argsort(resp.logliks).tolist() == np.argsort(ref).tolist()
    assert got[2].logliks[0] > got[2].logliks[1]  # the grammatical sentence is the likelier one
    # the shared context runs once per item: later choices re-run only its last token
    assert sum(r.tokens_evaluated for r in got) < naive
    assert got[0].input_tokens == len(backend.encode_pair(*reqs[0].pairs[0])[0]) + sum(
        got[0].continuation_tokens
    )


def test_lm_eval_encode_pair_moves_trailing_space(backend: OnnxGenAIBackend) -> None:
    assert backend.encode_pair("the cat sat on ", "the mat") == backend.encode_pair(
        "the cat sat on", " the mat"
    )
    assert backend.encode_pair("", "the mat")[0] == [0]  # BOS


def test_rolling_loglikelihood_equals_transformers_windows(
    tiny: dict[str, Path], hf: tuple[Any, Any]
) -> None:
    model, _ = hf
    small = OnnxGenAIBackend(tiny["onnx"], model_name="small", max_length=16)
    text = "the old man walked past the red door. a small fox jumped over the river. the cat sat."
    tokens = small.tokenize(text)
    # several windows of n_ctx - 1 = 15 tokens, the last one short: lm-eval conditions it on as
    # much preceding text as fits, not on one token
    assert len(tokens) > 15 and len(tokens) % 15 != 0, len(tokens)
    got = small.loglikelihood_rolling([RollingRequest("r", text)])[0]
    assert got.error is None and got.tokens == len(tokens)
    utils = pytest.importorskip("lm_eval.utils", reason="needs the lmeval extra")
    windows = [
        utils.make_disjoint_window(w)
        for w in utils.get_rolling_token_windows(tokens, prefix_token=0, max_seq_len=15, context_len=1)
    ]
    assert len(windows[-1][0]) > 1
    ref = sum(_hf_logprobs(model, list(c), list(x))[0] for c, x in windows)
    naive = sum(  # every window on the one token before it, the last one too
        _hf_logprobs(model, [0] if i == 0 else [tokens[i - 1]], tokens[i : i + 15])[0]
        for i in range(0, len(tokens), 15)
    )
    assert abs(naive - ref) > 0.1  # one token of context for the last window would be caught
    assert got.loglik == pytest.approx(ref, abs=1e-3)


def test_request_longer_than_context_is_an_item_error(tiny: dict[str, Path]) -> None:
    small = OnnxGenAIBackend(tiny["onnx"], model_name="small", max_length=16)
    long = "the cat sat on the mat. " * 10
    bad, ok = small.loglikelihood(
        [
            LoglikelihoodRequest("x", ((long, " yes"), (long, " no"))),
            LoglikelihoodRequest("y", (("the cat", " sat"), ("the cat", " ran"))),
        ]
    )
    assert bad.error is not None and "exceeds n_ctx=16" in bad.error
    assert ok.error is None and len(ok.logliks) == 2
    g = small.generate([GenerateRequest("z", long, max_tokens=4)])[0]
    assert g.error is not None and "exceeds n_ctx=16" in g.error


def test_info_describes_the_export(
    backend: OnnxGenAIBackend, hf: tuple[Any, Any], tiny: dict[str, Path]
) -> None:
    model, _ = hf
    info = backend.info()
    assert info.backend == "onnxruntime-genai" and info.name == "tiny"
    assert info.params == model.num_parameters()
    assert info.quant == "fp32" and info.device == "cpu" and info.family == "llama"
    assert info.n_ctx == 256 and info.loglikelihood and info.chat_template
    size = sum(p.stat().st_size for p in tiny["onnx"].iterdir() if ".onnx" in p.name)
    assert info.file_size == size > 4 * model.num_parameters()


# ---------------------------------------------------------------------- errors and the runner


def test_missing_engine_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'bench\[onnx\]'"):
        OnnxGenAIBackend("/nowhere", model_name="x")


@needs_engine
def test_folder_without_genai_config_is_a_backend_error(tiny: dict[str, Path]) -> None:
    with pytest.raises(BackendError, match=f"no genai_config.json in {tiny['hf']}"):
        OnnxGenAIBackend(tiny["hf"], model_name="hf-folder")
    with pytest.raises(BackendError, match="exceeds the model's context_length 256"):
        OnnxGenAIBackend(tiny["onnx"], model_name="big", max_length=4096)


def test_the_execution_provider_is_the_suites_choice(tiny: dict[str, Path]) -> None:
    with pytest.raises(BackendError, match=f"could not load {tiny['onnx']}: Unknown provider name 'bogus'"):
        OnnxGenAIBackend(tiny["onnx"], model_name="x", execution_provider="bogus")


def _suite(data: Path, models: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": "onnx",
        "defaults": {"seed": 1, "batch_size": 4, "warmup": 0},
        "models": models,
        "tasks": [
            {
                "name": "toy",
                "kind": "mcq",
                "dataset": {"path": str(data)},
                "fields": {"id": "id", "question": "q", "choices": "opts", "answer": "label"},
            }
        ],
    }


@needs_engine
def test_a_bad_folder_is_a_model_error_through_the_runner(tmp_path: Path) -> None:
    from bench.config import parse_suite
    from bench.runner import NullDisplay, execute, plan_run

    data = tmp_path / "toy.jsonl"
    data.write_text(json.dumps({"id": "a", "q": "the cat", "opts": ["sat", "ran"], "label": 0}) + "\n")
    models: list[dict[str, object]] = [
        {"name": "missing", "backend": "onnxruntime-genai", "path": str(tmp_path / "nope")},
        {"name": "not-onnx", "backend": "onnxruntime-genai", "path": str(tmp_path)},
    ]
    plan = plan_run(parse_suite(_suite(data, models)), tmp_path / "results")
    result = execute(plan, NullDisplay(), executor="inline")
    assert result.model_errors["missing"] == (
        f"missing: folder not found {tmp_path / 'nope'} (make one with python -m onnxruntime_genai.models.builder)"
    )
    assert f"no genai_config.json in {tmp_path}" in result.model_errors["not-onnx"]


def test_runner_end_to_end(tiny: dict[str, Path], tmp_path: Path) -> None:
    from bench import store
    from bench.config import parse_suite
    from bench.runner import NullDisplay, execute, plan_run

    data = tmp_path / "toy.jsonl"
    rows = []
    for i, (s, v, o) in enumerate(zip(SUBJECTS, VERBS * 2, OBJECTS * 2, strict=False)):
        rows.append({"id": f"t{i}", "q": f"{s} {v}", "opts": [f"{o}.", f"{o.split()[-1]} {v}"], "label": 0})
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    models: list[dict[str, object]] = [
        {"name": "tiny-onnx", "backend": "onnxruntime-genai", "path": str(tiny["onnx"])}
    ]
    plan = plan_run(parse_suite(_suite(data, models)), tmp_path / "results")
    result = execute(plan, NullDisplay(), executor="inline")
    assert not result.model_errors

    s = store.samples_dataset(tmp_path / "results").to_table().to_pandas()
    mine = s[s.model == "tiny-onnx"]
    assert len(mine) == len(rows) and mine["error"].isna().all()
    assert (mine["method"] == "loglikelihood").all()
    assert all(len(x) == 2 for x in mine["choice_logliks"])
    r = store.runs_dataset(tmp_path / "results").to_table().to_pandas()
    acc = r[(r.model == "tiny-onnx") & (r.metric == "acc")].iloc[0]
    assert acc["status"] == "ok" and acc["n"] == len(rows) and acc["n_errors"] == 0
    assert acc["model_params"] > 0 and acc["quant"] == "fp32" and acc["device"] == "cpu"
