"""The transformers backend against plain torch, on a tiny GPT-2 built and briefly trained at test time
(nothing is downloaded). Every figure the backend reports is recomputed here the naive way: one
sequence at a time, the whole sequence through the model, no batching, no cache."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from bench import store  # noqa: E402
from bench.backends.base import GenerateRequest, LoglikelihoodRequest, RollingRequest  # noqa: E402
from bench.backends.transformers import TransformersBackend  # noqa: E402
from bench.config import parse_suite  # noqa: E402
from bench.errors import BackendError  # noqa: E402
from bench.runner import NullDisplay, execute, plan_run  # noqa: E402

SUBJECTS = [
    "the cat",
    "the dog",
    "a bird",
    "the old man",
    "my sister",
    "a small fox",
    "the river",
    "the teacher",
]
VERBS = ["sat on", "ran to", "looked at", "jumped over", "walked past", "slept near", "sang to", "painted"]
OBJECTS = [
    "the mat",
    "the red house",
    "a tall tree",
    "the blue sky",
    "the green hill",
    "a quiet town",
    "the lake",
]
# The template starts with BOS: the backend must not add a second one.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@dataclass(frozen=True)
class Tiny:
    plain: Path  # GPT-2 style: the tokenizer adds no special tokens
    bos: Path  # Llama style: the tokenizer adds BOS, and has a chat template
    params: int


def _sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}." for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiny]:
    """A byte-level BPE (vocab 300) and a 2-layer GPT-2 trained for 30 steps: enough that greedy
    decoding writes sentences and ends them with EOS, so stops and EOS are exercised for real."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 6x faster than 2 threads on a 2-core machine
    d = tmp_path_factory.mktemp("tiny-gpt2")
    sents = _sentences(400)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(sents, trainer)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"}
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, **specials)

    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=64,
        vocab_size=len(tok),
        n_positions=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    stream: list[int] = []
    for s in sents:
        stream += [tok.bos_token_id, *tok.encode(s), tok.eos_token_id]
    data = torch.tensor(stream)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(30):
        starts = torch.randint(0, len(stream) - 65, (16,), generator=gen)
        x = torch.stack([data[i : i + 64] for i in starts])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    tok.save_pretrained(d / "plain")
    model.save_pretrained(d / "plain")

    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.bos_token_id)]
    )
    bos_tok = PreTrainedTokenizerFast(tokenizer_object=bpe, **specials)
    bos_tok.chat_template = CHAT_TEMPLATE
    bos_tok.save_pretrained(d / "bos")
    model.save_pretrained(d / "bos")
    yield Tiny(d / "plain", d / "bos", sum(p.numel() for p in model.parameters()))
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ref(tiny: Tiny) -> Any:
    """The reference model, loaded on its own (not the backend's object)."""
    return transformers.AutoModelForCausalLM.from_pretrained(tiny.plain, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def plain(tiny: Tiny) -> Iterator[TransformersBackend]:
    b = TransformersBackend(str(tiny.plain), model_name="tiny", device="cpu", batch_size=3)
    yield b
    b.close()


@pytest.fixture(scope="module")
def bos(tiny: Tiny) -> Iterator[TransformersBackend]:
    b = TransformersBackend(str(tiny.bos), model_name="tiny-bos", device="cpu", batch_size=3)
    yield b
    b.close()


def naive_logprob(model: Any, ids: Sequence[int], n_cont: int) -> tuple[float, bool]:
    """log p(last n_cont tokens | the ones before), running the whole sequence at once."""
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([list(ids)])).logits[0].float(), dim=-1)
    positions = range(len(ids) - n_cont, len(ids))
    total = sum(float(lp[p - 1, ids[p]]) for p in positions)
    return total, all(int(lp[p - 1].argmax()) == ids[p] for p in positions)


def lm_eval_tokens(tok: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval 0.4.13 HFLM, spelled out: an empty context is BOS; trailing spaces move to the
    continuation; the tokenizer's own special tokens on the context and the whole."""
    if not context:
        return [tok.bos_token_id], tok.encode(continuation, add_special_tokens=False)
    stripped = context.rstrip()
    continuation = context[len(stripped) :] + continuation
    ctx = tok.encode(stripped)
    return ctx, tok.encode(stripped + continuation)[len(ctx) :]


PAIRS = [
    ("the cat sat on", " the mat."),
    ("the cat sat on ", "the mat."),  # trailing space: moves to the continuation
    ("", "the dog ran to the lake."),  # empty context: conditioned on BOS
    ("a bird sang to the teacher.", " my sister painted the red house."),
    ("the old man walked past", " a quiet town."),
]
REQS = [
    LoglikelihoodRequest("r0", (PAIRS[0], PAIRS[1])),
    LoglikelihoodRequest("r1", (PAIRS[2],)),
    LoglikelihoodRequest("r2", (PAIRS[3], PAIRS[4], PAIRS[0])),
]


# ---------------------------------------------------------------------- 1. log-likelihoods


@pytest.mark.parametrize("which", ["plain", "bos"])
def test_loglikelihood_equals_naive_reference(which: str, tiny: Tiny, ref: Any, request: Any) -> None:
    backend: TransformersBackend = request.getfixturevalue(which)
    tok = backend.tokenizer
    out = backend.loglikelihood(REQS)
    for req, resp in zip(REQS, out, strict=True):
        assert resp.error is None
        assert resp.latency_s > 0
        distinct: set[tuple[int, ...]] = set()
        for (context, continuation), ll, n in zip(
            req.pairs, resp.logliks, resp.continuation_tokens, strict=True
        ):
            ctx, cont = lm_eval_tokens(tok, context, continuation)
            assert (ctx, cont) == backend.encode_pair(context, continuation)
            assert n == len(cont)
            assert ll == pytest.approx(naive_logprob(ref, ctx + cont, len(cont))[0], abs=1e-4)
            distinct.add(tuple(ctx))
        assert resp.input_tokens == sum(map(len, distinct)) + sum(resp.continuation_tokens)
    # The tokenizer's convention decides BOS; an empty context is BOS either way.
    bos_id = tok.bos_token_id
    assert (backend.encode_pair(*PAIRS[0])[0][0] == bos_id) == (which == "bos")
    assert backend.encode_pair(*PAIRS[2])[0] == [bos_id]
    assert tok.decode(backend.encode_pair(*PAIRS[1])[1][:1]).startswith(" ")


def test_batching_and_order_do_not_change_results(plain: TransformersBackend) -> None:
    def flat(out: Sequence[Any]) -> list[float]:
        return [x for r in out for x in r.logliks]

    base = flat(plain.loglikelihood(REQS))
    before = plain.batch_size
    try:
        for bs in (1, 3, 8):
            plain.batch_size = bs
            assert flat(plain.loglikelihood(REQS)) == pytest.approx(base, abs=1e-4)
            assert flat(plain.loglikelihood(REQS[::-1])[::-1]) == pytest.approx(base, abs=1e-4)
    finally:
        plain.batch_size = before


def test_one_token_choices_share_one_forward_pass(plain: TransformersBackend, ref: Any) -> None:
    """Like HFLM's logits cache: choices of one token after the same context need one sequence."""
    tok = plain.tokenizer
    req = LoglikelihoodRequest("q", (("the dog ran", " to"), ("the dog ran", " the"), ("the dog ran", " a")))
    ctx = tok.encode("the dog ran")
    assert all(len(tok.encode(c)) == 1 for _, c in req.pairs)  # precondition of this test
    (resp,) = plain.loglikelihood([req])
    assert resp.tokens_evaluated == len(ctx)
    for (_, c), ll in zip(req.pairs, resp.logliks, strict=True):
        assert ll == pytest.approx(naive_logprob(ref, ctx + tok.encode(c), 1)[0], abs=1e-4)


def test_a_bad_request_is_its_own_error(plain: TransformersBackend) -> None:
    out = plain.loglikelihood([REQS[0], LoglikelihoodRequest("empty", (("the cat", ""),)), REQS[1]])
    assert out[1].error is not None and "encodes to no tokens" in out[1].error
    assert out[0].error is None and out[2].error is None and len(out[0].logliks) == 2


# ---------------------------------------------------------------------- 2. is_greedy


def test_is_greedy_on_the_models_own_continuation(plain: TransformersBackend, ref: Any) -> None:
    tok = plain.tokenizer
    prompt = "the cat sat on"
    ids = tok.encode(prompt)
    greedy = ref.generate(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        max_new_tokens=3,
        pad_token_id=tok.pad_token_id,
    )[0, len(ids) :].tolist()
    text = tok.decode(greedy)
    assert plain.encode_pair(prompt, text)[1] == greedy  # precondition: the text re-encodes the same
    other = tok.decode([*greedy[:-1], (greedy[-1] + 1) % len(tok)])
    (resp,) = plain.loglikelihood([LoglikelihoodRequest("g", ((prompt, text), (prompt, other)))])
    assert resp.is_greedy == [True, False]
    assert resp.logliks[0] > resp.logliks[1]


# ---------------------------------------------------------------------- 3. generation


def _reference_generation(ref: Any, tok: Any, ids: list[int], n: int) -> list[int]:
    out = ref.generate(
        input_ids=torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        do_sample=False,
        max_new_tokens=n,
        pad_token_id=tok.pad_token_id,
    )
    return [int(t) for t in out[0, len(ids) :]]


def test_generate_matches_model_generate(plain: TransformersBackend, ref: Any) -> None:
    tok = plain.tokenizer
    prompt = "the cat sat on"
    want = _reference_generation(ref, tok, tok.encode(prompt), 20)
    assert want[-1] == tok.eos_token_id and len(want) >= 5  # precondition: the model ends its sentence
    full = tok.decode(want, skip_special_tokens=True)
    stop_word = full.split()[1]  # a word in the middle of the output
    reqs = [
        GenerateRequest("eos", prompt, max_tokens=20),
        GenerateRequest("stop", prompt, max_tokens=20, stop=("\n", stop_word)),
        GenerateRequest("length", prompt, max_tokens=3),
    ]
    eos, stop, length = plain.generate(reqs)
    assert (eos.error, eos.text, eos.finish_reason) == (None, full, "stop")
    assert eos.output_tokens == len(want) - 1  # EOS ends the output; it is not part of it
    assert eos.input_tokens == len(tok.encode(prompt))
    assert (stop.text, stop.finish_reason) == (full[: full.index(stop_word)], "stop")
    assert stop.output_tokens < eos.output_tokens
    assert (length.text, length.finish_reason, length.output_tokens) == (tok.decode(want[:3]), "length", 3)
    for r in (eos, stop, length):
        assert r.ttft_s is not None and 0 < r.ttft_s <= r.latency_s
    sampled, empty = plain.generate(
        [GenerateRequest("t", prompt, max_tokens=4, temperature=1.0), GenerateRequest("e", "", max_tokens=4)]
    )
    assert sampled.error is None and 0 < sampled.output_tokens <= 4
    assert empty.error is None and empty.input_tokens == 1  # an empty prompt starts from BOS


# ---------------------------------------------------------------------- 4. chat


def test_chat_messages_use_the_chat_template(bos: TransformersBackend, ref: Any) -> None:
    tok = bos.tokenizer
    messages = (("system", "answer briefly"), ("user", "the cat sat on"))
    req = GenerateRequest("c", "the cat sat on", max_tokens=12, messages=messages)
    rendered = tok.apply_chat_template(
        [{"role": r, "content": c} for r, c in messages], add_generation_prompt=True, tokenize=False
    )
    want_ids = tok.encode(rendered, add_special_tokens=False)
    assert bos.prompt_tokens(req) == want_ids
    assert want_ids[0] == tok.bos_token_id and want_ids.count(tok.bos_token_id) == 1  # BOS once
    (resp,) = bos.generate([req])
    assert resp.error is None and resp.input_tokens == len(want_ids)
    want = _reference_generation(ref, tok, want_ids, 12)
    assert resp.text == tok.decode(want, skip_special_tokens=True)
    assert bos.info().chat_template


def test_chat_without_template_is_an_error_response(plain: TransformersBackend) -> None:
    reqs = [
        GenerateRequest("c", "hi", max_tokens=4, messages=(("user", "hi"),)),
        GenerateRequest("p", "the dog", max_tokens=4),
    ]
    chat, text = plain.generate(reqs)
    assert chat.error is not None and "no chat template" in chat.error
    assert text.error is None and text.output_tokens > 0
    assert not plain.info().chat_template


# ---------------------------------------------------------------------- 5. rolling and truncation


def test_rolling_loglikelihood_equals_naive_windows(tiny: Tiny, ref: Any) -> None:
    L = 32
    b = TransformersBackend(str(tiny.plain), device="cpu", max_length=L, batch_size=2)
    try:
        text = " ".join(_sentences(12, seed=5))
        tokens = b.tokenizer.encode(text)
        assert len(tokens) > 3 * L  # precondition: several windows, the last one partial
        # Tokens t[s:e] in chunks of L, each predicted from the last L tokens of [BOS] + t before e.
        seq = [b.tokenizer.bos_token_id, *tokens]
        want, fed = 0.0, 0
        for s in range(0, len(tokens), L):
            e = min(s + L, len(tokens))
            inp = seq[max(0, e - L) : e + 1]  # inputs seq[..e), plus the last target
            want += naive_logprob(ref, inp, e - s)[0]
            fed += len(inp) - 1
        short = RollingRequest("short", "the cat sat.")
        out = b.loglikelihood_rolling([RollingRequest("long", text), short])
        assert out[0].error is None
        assert out[0].loglik == pytest.approx(want, abs=1e-3)
        assert (out[0].tokens, out[0].tokens_evaluated) == (len(tokens), fed)
        short_ids = [b.tokenizer.bos_token_id, *b.tokenizer.encode(short.text)]
        assert out[1].loglik == pytest.approx(naive_logprob(ref, short_ids, len(short_ids) - 1)[0], abs=1e-4)

        # A pair longer than max_length keeps its last max_length + 1 tokens, as lm-eval does.
        ctx, cont = b.encode_pair(text, " the mat.")
        (resp,) = b.loglikelihood([LoglikelihoodRequest("long", ((text, " the mat."),))])
        assert resp.logliks[0] == pytest.approx(
            naive_logprob(ref, (ctx + cont)[-(L + 1) :], len(cont))[0], abs=1e-4
        )
        assert resp.tokens_evaluated == L
    finally:
        b.close()


# ---------------------------------------------------------------------- 6-7. through the runner


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_runner_end_to_end(tiny: Tiny, tmp_path: Path) -> None:
    subjects = SUBJECTS[:4]
    mcq = _write_jsonl(
        tmp_path / "mcq.jsonl",
        [
            {"id": f"q{i}", "q": f"Who sat on the mat? {i}", "opts": subjects, "label": i % 4}
            for i in range(6)
        ],
    )
    ppl = _write_jsonl(
        tmp_path / "ppl.jsonl", [{"id": f"t{i}", "text": s} for i, s in enumerate(_sentences(4, 9))]
    )
    suite = parse_suite(
        {
            "name": "tiny-transformers",
            "defaults": {"seed": 3, "batch_size": 4},
            "models": [
                {"name": "tiny", "backend": "transformers", "model": str(tiny.plain), "device": "cpu"}
            ],
            "tasks": [
                {
                    "name": "mcq",
                    "kind": "mcq",
                    "dataset": {"path": str(mcq)},
                    "fields": {"id": "id", "question": "q", "choices": "opts", "answer": "label"},
                },
                {"name": "ppl", "kind": "perplexity", "dataset": {"path": str(ppl)}},
            ],
        }
    )
    result = execute(plan_run(suite, tmp_path / "results"), NullDisplay(), executor="inline")
    assert not result.model_errors
    samples = store.samples_dataset(tmp_path / "results").to_table().to_pandas()
    runs = store.runs_dataset(tmp_path / "results").to_table().to_pandas()
    assert samples.groupby("task").size().to_dict() == {"mcq": 6, "ppl": 4}
    assert samples["error"].isna().all(), samples["error"].dropna().tolist()
    assert (samples["latency_s"] > 0).all() and (samples["tokens_evaluated"] > 0).all()
    assert set(samples.query("task == 'mcq'")["method"]) == {"loglikelihood"}
    assert (runs["status"] == "ok").all()
    assert set(runs["model_params"]) == {tiny.params}
    assert set(runs["device"]) == {"cpu"} and set(runs["quant"]) == {"fp32"}
    assert runs["items_per_s"].gt(0).all() and runs["model_file_mb"].gt(0).all()
    bpb = runs.query("metric == 'bits_per_byte'")["value"].iloc[0]
    assert 0 < bpb < 8


def test_missing_model_folder_is_a_recorded_model_error(tmp_path: Path, tiny: Tiny) -> None:
    ghost = tmp_path / "no-such-model"
    with pytest.raises(BackendError, match="no-such-model"):
        TransformersBackend(str(ghost), device="cpu")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(BackendError, match="broken"):
        TransformersBackend(str(broken), device="cpu")
    suite = parse_suite(
        {
            "name": "ghost",
            "models": [{"name": "ghost", "backend": "transformers", "model": str(ghost), "device": "cpu"}],
            "tasks": [
                {"name": "ppl", "kind": "perplexity", "dataset": {"path": str(tmp_path / "none.jsonl")}}
            ],
        }
    )
    result = execute(plan_run(suite, tmp_path / "results"), NullDisplay(), executor="inline")
    assert "ghost" in result.model_errors and "model folder not found" in result.model_errors["ghost"]


def test_missing_torch_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from bench.errors import BackendUnavailable

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(BackendUnavailable, match=r"bench\[transformers\]"):
        TransformersBackend("anything", device="cpu")
