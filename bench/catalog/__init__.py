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
        if isinstance(t.dataset, str) and t.dataset not in DATASETS:
            raise ConfigError(
                f"{source}: tasks[{i}].dataset: unknown dataset {t.dataset!r}; "
                f"{did_you_mean(t.dataset, dataset_names())}"
            )
        if isinstance(t.dataset, str):
            entry = DATASETS[t.dataset]
            if t.kind == "mcq" and entry.kind != "mcq":
                raise ConfigError(
                    f"{source}: tasks[{i}].dataset: {t.dataset!r} is a {entry.kind} dataset, "
                    f"not usable by a task of kind 'mcq'"
                )
