"""Custom datasets from local files: jsonl, json (a list of objects), csv, parquet.

Records come back raw; the task maps them to canonical form with its `fields`. Every error
names the file, and the line (or item) when one is at fault.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import IO, Any

from bench.errors import DataError

FORMATS = ("jsonl", "json", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the name; set format to one of {', '.join(FORMATS)}"
        )
    return fmt


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            rows.append(obj)
    return rows


def _json(path: Path) -> list[dict[str, Any]]:
    with _open_text(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise DataError(f"{path}: item {i}: expected a JSON object, got {type(obj).__name__}")
    return data


def _csv(path: Path) -> list[dict[str, Any]]:
    rows = []
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        try:
            for row in reader:
                if None in row:
                    n = len(reader.fieldnames or [])
                    raise DataError(f"{path}:{reader.line_num}: more fields than the header's {n}")
                rows.append(dict(row))
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: invalid CSV: {e}") from None
    return rows


def _parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file: {str(e).splitlines()[0]}") from None
    return rows


_READERS = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet}


def load_local(path: str | Path, fmt: str = "auto") -> list[dict[str, Any]]:
    """Raw records of a local file; `fmt` 'auto' decides by suffix (a trailing .gz is allowed)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: no such dataset file")
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt not in _READERS:
        raise DataError(f"{p}: unknown format {fmt!r}; allowed: auto, {', '.join(FORMATS)}")
    try:
        rows = _READERS[fmt](p)
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a UTF-8 text file (format {fmt})") from None
    except (OSError, EOFError) as e:  # gzip and friends
        raise DataError(f"{p}: cannot read: {e}") from None
    if not rows:
        raise DataError(f"{p}: no records")
    return rows
