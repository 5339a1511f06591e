"""Suite files: YAML -> yaml.safe_load -> pydantic models (extra="forbid").

Every error names the file, the field path and what is allowed, in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args

import yaml
from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, model_validator

import bench.backends  # registers the built-in backends
import bench.tasks  # noqa: F401  (registers the built-in task kinds)
from bench.errors import ConfigError
from bench.registry import BACKENDS, TASKS, did_you_mean, load_plugins
from bench.specs.base import (
    DatasetRef,
    DatasetTaskSpec,
    FieldMap,
    GenFieldMap,
    HubDataset,
    LocalDataset,
    ModelSpecBase,
    Strict,
    TaskSpecBase,
)
from bench.specs.load import LoadSpec

__all__ = [
    "DatasetRef",
    "Defaults",
    "FieldMap",
    "GenFieldMap",
    "Hardware",
    "HubDataset",
    "LocalDataset",
    "ModelSpec",
    "Suite",
    "TaskSpec",
    "load_suite",
    "parse_suite",
]

load_plugins()  # before the unions below are built from the registries


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


def _model_tag(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("backend", "llamacpp"))
    return str(getattr(v, "backend", "llamacpp"))


def _tagged_union(plugins: list[Any]) -> Any:
    """`A | B | ...` of the plugins' spec classes, each tagged with its registered name."""
    members = tuple(Annotated[p.spec, Tag(p.name)] for p in plugins)
    return Union[members] if len(members) > 1 else members[0]  # noqa: UP007 (built at run time)


if TYPE_CHECKING:
    ModelSpec = ModelSpecBase
else:  # every registered backend, built-in or plugin
    ModelSpec = Annotated[
        _tagged_union(BACKENDS.values()),
        Discriminator(_model_tag, custom_error_type="backend", custom_error_message="unknown backend"),
    ]


# ---------------------------------------------------------------- tasks


if TYPE_CHECKING:
    TaskSpec = TaskSpecBase
else:  # every registered task kind, built-in or plugin
    TaskSpec = Annotated[_tagged_union(TASKS.values()), Field(discriminator="kind")]


# ---------------------------------------------------------------- suite


class Suite(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    defaults: Defaults = Defaults()
    hardware: Hardware = Hardware()
    models: list[ModelSpec] = Field(min_length=1)
    tasks: list[TaskSpec] = Field(min_length=1)
    load: LoadSpec | None = None  # `bench load`: the sweep's levels and SLOs (bench.load)

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
        data = self.model_dump(mode="json")
        if data.get("load") is None:  # suites without a load block keep the hash they always had
            data.pop("load", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def suite_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    def effective_task(self, task: TaskSpecBase) -> dict[str, Any]:
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
        elif part in BACKENDS or part in TASKS:
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
    **{p.name: p.spec for p in BACKENDS.values()},
    **{p.name: p.spec for p in TASKS.values()},
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
            str(err["input"].get("backend")), BACKENDS.names()
        )
    if typ == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag")
        return f"{_fmt_loc(loc)}.kind: unknown task kind {tag!r}; {did_you_mean(str(tag), TASKS.names())}"
    if typ == "union_tag_not_found":
        return f"{_fmt_loc(loc)}.kind: missing; allowed: {', '.join(p.name for p in TASKS.values())}"
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
    _check_names(suite, source)
    return suite


def _check_names(suite: Suite, source: str) -> None:
    """Names that pydantic cannot check: catalog models without a path, catalog datasets."""
    from bench.catalog import DATASETS, MODELS, dataset_names

    for i, m in enumerate(suite.models):
        if m.backend == "llamacpp" and getattr(m, "path", None) is None and m.name not in MODELS:
            raise ConfigError(
                f"{source}: models[{i}].name: {m.name!r} is not a catalog model and has no path; "
                f"{did_you_mean(m.name, list(MODELS))}"
            )
        if (
            m.backend in ("vllm", "transformers")
            and getattr(m, "model", None) is None
            and m.name not in MODELS
        ):
            raise ConfigError(
                f"{source}: models[{i}].name: {m.name!r} is not a catalog model and has no model "
                f"(a hub id or folder); {did_you_mean(m.name, list(MODELS))}"
            )
    for i, t in enumerate(suite.tasks):
        if not isinstance(t, DatasetTaskSpec) or not isinstance(t.dataset, str):
            continue  # kinds without a dataset (lm_eval), local files, hub datasets
        if t.dataset not in DATASETS:
            raise ConfigError(
                f"{source}: tasks[{i}].dataset: unknown dataset {t.dataset!r}; {did_you_mean(t.dataset, dataset_names())}"
            )
        if t.split is not None and (problem := DATASETS[t.dataset].split_error(t.split)):
            raise ConfigError(f"{source}: tasks[{i}].split: {problem}")
        kind = DATASETS[t.dataset].kind
        kinds = TASKS.get(t.kind).dataset_kinds
        if kind not in kinds:
            usable = ", ".join(
                n for n, d in sorted(DATASETS.items()) if d.kind in kinds and not n.startswith("mmlu_")
            )
            raise ConfigError(
                f"{source}: tasks[{i}].dataset: {t.dataset!r} is a {kind} dataset, not usable by a task of kind "
                f"{t.kind!r} (usable: {usable or 'none of the catalog'})"
            )


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
