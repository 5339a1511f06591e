"""Named models and datasets. Light to import: nothing here loads an engine or reads data."""

from __future__ import annotations

from bench.catalog.datasets import DATASETS, DatasetEntry, dataset_names
from bench.catalog.models import MODELS, ModelEntry, cache_dir

__all__ = [
    "DATASETS",
    "MODELS",
    "DatasetEntry",
    "ModelEntry",
    "cache_dir",
    "dataset_names",
]
