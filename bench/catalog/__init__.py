"""Named models and datasets. Light to import: nothing here loads an engine or reads data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.catalog.datasets import DATASETS, DatasetEntry, dataset_names
from bench.catalog.models import MODELS, ModelEntry, cache_dir
from bench.errors import ConfigError
from bench.registry import did_you_mean

if TYPE_CHECKING:
    from bench.config import Suite

__all__ = [
    "DATASETS",
    "MODELS",
    "DatasetEntry",
    "ModelEntry",
    "cache_dir",
    "check_suite_names",
    "dataset_names",
]


def check_suite_names(suite: Suite, source: str) -> None:
    """Names that pydantic cannot check: catalog models without a path, catalog datasets."""
    for i, m in enumerate(suite.models):
        if m.backend == "llamacpp" and getattr(m, "path", None) is None and m.name not in MODELS:
            raise ConfigError(
                f"{source}: models[{i}].name: {m.name!r} is not a catalog model and has no path; "
                f"{did_you_mean(m.name, list(MODELS))}"
            )
    for i, t in enumerate(suite.tasks):
        if t.kind == "lm_eval" or not isinstance(t.dataset, str):
            continue
        if t.dataset not in DATASETS:
            raise ConfigError(
                f"{source}: tasks[{i}].dataset: unknown dataset {t.dataset!r}; {did_you_mean(t.dataset, dataset_names())}"
            )
        kind = DATASETS[t.dataset].kind
        if kind not in _USABLE[t.kind]:
            usable = ", ".join(
                n
                for n, d in sorted(DATASETS.items())
                if d.kind in _USABLE[t.kind] and not n.startswith("mmlu_")
            )
            raise ConfigError(
                f"{source}: tasks[{i}].dataset: {t.dataset!r} is a {kind} dataset, not usable by a task of kind "
                f"{t.kind!r} (usable: {usable})"
            )


# Which catalog dataset kinds each task kind can run.
_USABLE = {
    "mcq": {"mcq"},
    "math": {"math"},
    "summarize": {"summarization"},
    "qa": {"qa"},
    "perplexity": {"summarization", "qa", "math", "mcq"},
}
