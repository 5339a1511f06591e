"""Suite files: YAML -> yaml.safe_load -> pydantic models (extra="forbid").

Every error names the file, the field path and what is allowed, in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from bench.errors import ConfigError
from bench.registry import did_you_mean


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- hardware and defaults


class Hardware(Strict):
    """What the machine costs; used for the cost of self-hosted runs."""

    name: str = Field(default="auto", description="profile name; 'auto' describes this machine")
    usd_per_hour: float = Field(default=0.0, ge=0)


class Defaults(Strict):
    limit: int | None = Field(default=None, ge=1, description="items per task; null for all")
    seed: int = 1234
    num_fewshot: int = Field(default=0, ge=0)
    batch_size: int = Field(default=8, ge=1, description="items handed to the backend per call")
    mode: Literal["throughput", "latency"] = Field(
        default="throughput",
        description="throughput: the engine's batching/concurrency; latency: one request at a time",
    )
    warmup: int = Field(default=1, ge=0, description="items run once before measuring, kept apart")


# ---------------------------------------------------------------- models


class Price(Strict):
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)


class _ModelBase(Strict):
    name: str = Field(min_length=1)
    price: Price | None = None
    max_memory_mb: float | None = Field(
        default=None, gt=0, description="kill the model's worker when its resident memory exceeds this"
    )


class LlamaCppModel(_ModelBase):
    """A GGUF model run in process by llama-cpp-python. Catalog names need no path."""

    backend: Literal["llamacpp"] = "llamacpp"
    path: str | None = Field(default=None, description="a GGUF file; catalog models resolve it themselves")
    n_ctx: int = Field(default=2048, ge=64)
    n_threads: int | None = Field(default=None, ge=1, description="decode threads; default: cores - 1")
    n_threads_batch: int | None = Field(default=None, ge=1, description="prompt threads; default: n_threads")
    n_batch: int = Field(default=512, ge=1)


class FakeModel(_ModelBase):
    """A scripted model for testing the harness itself; never a stand-in for a real backend."""

    backend: Literal["fake"]
    accuracy: float = Field(default=0.5, ge=0, le=1, description="chance of ranking the gold choice first")
    fail_items: list[str] = Field(default_factory=list, description="item ids that raise an error")
    delay_s: float = Field(default=0.0, ge=0)
    crash_items: list[str] = Field(default_factory=list, description="item ids that SIGKILL the worker")


PRESETS = ("openai", "vllm", "llamacpp-server", "ollama", "tgi", "nim", "github-models", "azure-ai")


class OpenAIModel(_ModelBase):
    """Any OpenAI-compatible server: vLLM serve, llama.cpp server, Ollama, TGI, NIM, hosted APIs."""

    backend: Literal["openai"]
    model: str = Field(min_length=1, description="the model id the server knows")
    preset: (
        Literal["openai", "vllm", "llamacpp-server", "ollama", "tgi", "nim", "github-models", "azure-ai"]
        | None
    ) = Field(default=None, description="fills base_url, api_key_env and endpoint for a known server")
    base_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:8000/v1")
    base_url_env: str | None = Field(default=None, description="read base_url from this environment variable")
    api_key_env: str | None = Field(
        default=None, description="read the API key from this environment variable"
    )
    endpoint: Literal["auto", "completions", "chat"] = Field(
        default="auto", description="auto: /v1/completions when the server has it, else /v1/chat/completions"
    )
    max_concurrency: int = Field(default=4, ge=1, description="requests in flight (throughput mode)")
    timeout_s: float = Field(default=120.0, gt=0, description="per request")
    max_retries: int = Field(default=5, ge=0, description="on 429, 5xx, timeouts and connection errors")
    params: int | None = Field(default=None, ge=1, description="parameter count, for the leaderboard")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="extra fields for every request")


class VLLMModel(_ModelBase):
    """vLLM in process (`vllm.LLM`), on GPUs."""

    backend: Literal["vllm"]
    model: str = Field(min_length=1, description="a hub id or a local folder")
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    dtype: str = "auto"
    max_model_len: int | None = Field(default=None, ge=64)
    quantization: str | None = None
    trust_remote_code: bool = False
    enforce_eager: bool = False
    params: int | None = Field(default=None, ge=1)


class TransformersModel(_ModelBase):
    """Hugging Face transformers (torch), on CPU or CUDA."""

    backend: Literal["transformers"]
    model: str = Field(min_length=1, description="a hub id or a local folder")
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    batch_size: int = Field(default=8, ge=1, description="sequences per forward pass")
    max_length: int | None = Field(default=None, ge=16, description="context length; default: the model's")
    trust_remote_code: bool = False
    gguf_file: str | None = Field(default=None, description="load this GGUF file of the repo (dequantized)")


class OnnxGenAIModel(_ModelBase):
    """ONNX Runtime GenAI (a folder with genai_config.json), the CPU/edge route."""

    backend: Literal["onnxruntime-genai"]
    path: str = Field(min_length=1, description="the model folder made by onnxruntime_genai's builder")
    execution_provider: str = Field(default="cpu", description="cpu, cuda, dml, ...")
    max_length: int | None = Field(default=None, ge=16)


MODEL_BACKENDS = ("llamacpp", "openai", "vllm", "transformers", "onnxruntime-genai", "fake")


def _model_tag(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("backend", "llamacpp"))
    return str(getattr(v, "backend", "llamacpp"))


ModelSpec = Annotated[
    Annotated[LlamaCppModel, Tag("llamacpp")]
    | Annotated[OpenAIModel, Tag("openai")]
    | Annotated[VLLMModel, Tag("vllm")]
    | Annotated[TransformersModel, Tag("transformers")]
    | Annotated[OnnxGenAIModel, Tag("onnxruntime-genai")]
    | Annotated[FakeModel, Tag("fake")],
    Discriminator(_model_tag, custom_error_type="backend", custom_error_message="unknown backend"),
]


# ---------------------------------------------------------------- datasets and tasks


class LocalDataset(Strict):
    """A local jsonl / json / csv / parquet file."""

    path: str
    format: Literal["auto", "jsonl", "json", "csv", "parquet"] = "auto"


class HubDataset(Strict):
    """A Hugging Face hub dataset, loaded with `datasets` (needs the hub)."""

    hub: str
    config: str | None = None
    split: str = "test"
    revision: str | None = None


DatasetRef = str | LocalDataset | HubDataset


class FieldMap(Strict):
    """Where a custom dataset keeps the parts of a multiple-choice item."""

    id: str | None = None
    question: str = "question"
    choices: str = "choices"
    answer: str = "answer"


class _TaskBase(Strict):
    name: str = Field(min_length=1)
    dataset: DatasetRef
    split: str | None = Field(default=None, description="catalog split; default: the dataset's own")
    limit: int | None = Field(default=None, ge=1)
    num_fewshot: int | None = Field(default=None, ge=0)
    seed: int | None = None
    batch_size: int | None = Field(default=None, ge=1)
    mode: Literal["throughput", "latency"] | None = None


class _Generative(Strict):
    """Options shared by the tasks that ask the model to write."""

    prompt: str | None = Field(default=None, description="Jinja template of the request; default: the kind's")
    max_tokens: int | None = Field(default=None, ge=1, description="generation limit; default: the kind's")
    stop: list[str] | None = Field(default=None, description="stop sequences; default: the kind's")
    chat: Literal["auto", "always", "never"] = Field(
        default="auto", description="wrap the prompt in the model's chat template: auto = when it has one"
    )
    system: str | None = Field(default=None, description="system message when the chat template is used")
    cot: bool = Field(default=False, description="ask for step-by-step reasoning before the answer")


class MCQTask(_TaskBase, _Generative):
    """Multiple choice: by log-likelihood of each choice (lm-eval's acc / acc_norm), or asked
    generatively ("answer with the letter") for backends that give no log-likelihoods."""

    kind: Literal["mcq"]
    method: Literal["loglikelihood", "generate", "auto"] = Field(
        default="auto", description="auto: log-likelihoods where the backend gives them, else generate"
    )
    fields: FieldMap | None = Field(default=None, description="for custom datasets: where the parts are")
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    fewshot_sampler: Literal["random", "first_n"] | None = Field(
        default=None,
        description="how shots are drawn: seeded random, or the first n (lm-eval's MMLU); "
        "default: first_n from a dedicated few-shot split, else random",
    )


class GenFieldMap(Strict):
    """Where a custom dataset keeps the parts of a generative item."""

    id: str | None = None
    input: str = Field(default="question", description="the question / document")
    target: str = Field(default="answer", description="the reference answer / summary (a list for QA)")
    context: str | None = Field(default=None, description="QA: the passage")


class MathTask(_TaskBase, _Generative):
    """Math word problems: gsm8k (numbers; strict and flexible match) or math500 (LaTeX, equivalence)."""

    kind: Literal["math"]
    answer_format: Literal["number", "latex"] | None = Field(
        default=None, description="how answers compare; default: number for gsm8k, latex for math500"
    )
    fields: GenFieldMap | None = None


class SummarizeTask(_TaskBase, _Generative):
    """Documents in, summaries out, scored with ROUGE-1/2/L, output length and compression ratio."""

    kind: Literal["summarize"]
    fields: GenFieldMap | None = None


class QATask(_TaskBase, _Generative):
    """Extractive question answering (squad, drop) scored by exact match and token F1."""

    kind: Literal["qa"]
    fields: GenFieldMap | None = None


class PerplexityTask(_TaskBase):
    """Log-likelihood of whole texts: bits per byte, byte and word perplexity."""

    kind: Literal["perplexity"]
    text_field: str | None = Field(
        default=None, description="the field with the text; default: the dataset's"
    )
    max_chars: int | None = Field(
        default=None, ge=1, description="truncate each text to this many characters"
    )


class LmEvalTask(Strict):
    """An lm-eval-harness task (its prompts, filters and metrics) run through bench's backends."""

    kind: Literal["lm_eval"]
    name: str = Field(min_length=1)
    task: str = Field(min_length=1, description="the lm-eval task name")
    include_path: str | None = Field(default=None, description="a folder of extra lm-eval task YAMLs")
    include_defaults: bool = Field(
        default=False, description="also index lm-eval's 14k built-in tasks (slow)"
    )
    limit: int | None = Field(default=None, ge=1)
    num_fewshot: int | None = Field(default=None, ge=0)
    seed: int | None = None
    batch_size: int | None = Field(default=None, ge=1)
    mode: Literal["throughput", "latency"] | None = None


TASK_KINDS = ("mcq", "math", "summarize", "qa", "perplexity", "lm_eval")

TaskSpec = Annotated[
    MCQTask | MathTask | SummarizeTask | QATask | PerplexityTask | LmEvalTask, Field(discriminator="kind")
]
AnyTask = MCQTask | MathTask | SummarizeTask | QATask | PerplexityTask | LmEvalTask


# ---------------------------------------------------------------- suite


class Suite(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    defaults: Defaults = Defaults()
    hardware: Hardware = Hardware()
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        for what, names in (
            ("models", [m.name for m in self.models]),
            ("tasks", [t.name for t in self.tasks]),
        ):
            seen: set[str] = set()
            for i, n in enumerate(names):
                if n in seen:
                    raise ValueError(f"{what}[{i}].name: {n!r} is used twice; names must be unique")
                seen.add(n)
        return self

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def suite_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def effective_task(self, task: AnyTask) -> dict[str, Any]:
        """A task's settings with the suite defaults filled in."""
        d = self.defaults
        return {
            "limit": task.limit if task.limit is not None else d.limit,
            "num_fewshot": task.num_fewshot if task.num_fewshot is not None else d.num_fewshot,
            "seed": task.seed if task.seed is not None else d.seed,
            "batch_size": task.batch_size if task.batch_size is not None else d.batch_size,
            "mode": task.mode or d.mode,
            "warmup": d.warmup,
        }


# ---------------------------------------------------------------- loading and errors


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in MODEL_BACKENDS or part in TASK_KINDS:
            continue  # union tags add noise, the user never wrote them
        elif isinstance(part, str) and part.startswith(("function-", "str", "LocalDataset", "HubDataset")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The pydantic model classes reachable inside a field annotation (lists, unions, Annotated)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for a in get_args(ann):
        out += _models_in(a)
    return out


_TAGGED: dict[str, type[BaseModel]] = {
    "llamacpp": LlamaCppModel,
    "openai": OpenAIModel,
    "vllm": VLLMModel,
    "transformers": TransformersModel,
    "onnxruntime-genai": OnnxGenAIModel,
    "fake": FakeModel,
    "mcq": MCQTask,
    "math": MathTask,
    "summarize": SummarizeTask,
    "qa": QATask,
    "perplexity": PerplexityTask,
    "lm_eval": LmEvalTask,
}


def _model_fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The allowed field names at a location, for "did you mean" on unknown keys."""
    classes: list[type[BaseModel]] = [Suite]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in _TAGGED:
            classes = [_TAGGED[part]]
            continue
        nxt: list[type[BaseModel]] = []
        for cls in classes:
            if part in cls.model_fields:
                nxt += _models_in(cls.model_fields[part].annotation)
        classes = nxt
    return sorted({f for cls in classes for f in cls.model_fields})


def _explain(err: Any) -> str:
    loc = tuple(err["loc"])
    typ = err["type"]
    if typ == "extra_forbidden":
        allowed = _model_fields_at(loc)
        hint = did_you_mean(str(loc[-1]), allowed) if allowed else ""
        return f"{_fmt_loc(loc)}: unknown field{'; ' + hint if hint else ''}"
    if typ == "backend":
        return f"{_fmt_loc(loc)}.backend: unknown backend {err['input'].get('backend')!r}; " + did_you_mean(
            str(err["input"].get("backend")), MODEL_BACKENDS
        )
    if typ == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        return f"{_fmt_loc(loc)}.kind: unknown task kind {tag!r}; {did_you_mean(str(tag), TASK_KINDS)}"
    if typ == "union_tag_not_found":
        return f"{_fmt_loc(loc)}.kind: missing; allowed: {', '.join(TASK_KINDS)}"
    if typ == "missing":
        return f"{_fmt_loc(loc)}: required field is missing"
    return f"{_fmt_loc(loc)}: {err['msg']}"


def parse_suite(data: Any, source: str = "<suite>") -> Suite:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a suite must be a mapping with name, models and tasks")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        errs = e.errors()
        # Prefer the most specific error: unions report one error per branch.
        first = sorted(errs, key=lambda x: (x["type"] in ("union_tag_not_found",), -len(x["loc"])))[0]
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        raise ConfigError(f"{source}: {_explain(first)}{more}") from None
    from bench.catalog import check_suite_names

    check_suite_names(suite, source)
    return suite


def load_suite(path: str | Path) -> Suite:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such suite file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}{where}: invalid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a UTF-8 text file") from None
    return parse_suite(data, str(p))
