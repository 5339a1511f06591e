"""Specs: what a suite file says, one pydantic class per backend and per task kind.

A spec says what to run; the runtime object (a bench.backends backend, a bench.tasks task) runs it.
Light to import (pydantic only). A plugin subclasses ModelSpecBase or DatasetTaskSpec / TaskSpecBase.
"""

from bench.specs.base import (
    DatasetRef,
    DatasetTaskSpec,
    FieldMap,
    GenerativeOptions,
    GenFieldMap,
    HubDataset,
    LocalDataset,
    ModelSpecBase,
    Price,
    Strict,
    TaskSpecBase,
    dataset_label,
)

__all__ = [
    "DatasetRef",
    "DatasetTaskSpec",
    "FieldMap",
    "GenFieldMap",
    "GenerativeOptions",
    "HubDataset",
    "LocalDataset",
    "ModelSpecBase",
    "Price",
    "Strict",
    "TaskSpecBase",
    "dataset_label",
]
