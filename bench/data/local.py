"""Custom datasets from local files: jsonl, json (a list of objects), csv, parquet, each maybe .gz.

Records come back raw; the task maps them to canonical form with its `fields`. Every error
names the file, and the line (or item) when one is at fault: the rows come back as `Records`,
which remember where each row starts, so a task's error about a record names its line too.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


class Records(list[dict[str, Any]]):
    """The rows of one file, and where each starts ("data.jsonl:7"; just the file for JSON lists
    and Parquet, whose rows have no lines): errors about a record then name a line to open."""

    def __init__(self, rows: Iterable[dict[str, Any]], origins: list[str]) -> None:
        super().__init__(rows)
        self.origins = origins


def record_where(records: list[dict[str, Any]], i: int, label: str) -> str:
    """How an error names record `i`: "data.jsonl:7: record 6" for a local file, else "label: record 6"."""
    origins = getattr(records, "origins", None)
    return f"{origins[i] if origins else label}: record {i}"


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


def _gunzip(path: Path, raw: bytes) -> bytes:
    """The content of a gzip file (members concatenated, as gzip does); a damaged or truncated
    file is one error, saying how many lines came out before the damage."""
    out, rest, chunk = bytearray(), raw, 1 << 16
    while rest:
        d, why = zlib.decompressobj(wbits=31), None
        if not rest.startswith(b"\x1f\x8b"):
            why = "not gzip data" if not out else "junk after the gzip data"
        else:
            try:
                for k in range(0, len(rest), chunk):
                    out += d.decompress(rest[k : k + chunk])
                    if d.eof:
                        break
            except zlib.error as e:
                why = f"damaged data ({e})"
            else:
                why = None if d.eof else "the file ends mid-stream (truncated)"
        if why:
            n = out.count(b"\n")
            raise DataError(f"{path}: corrupt gzip data" + (f" (after line {n})" if n else "") + f": {why}")
        rest = d.unused_data
    return bytes(out)


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return _gunzip(path, raw) if path.suffix.lower() == ".gz" else raw


def _read_text(path: Path) -> str:
    raw = _read_bytes(path)
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at byte column {col}); save the file as UTF-8"
        ) from None


def _jsonl(path: Path) -> Records:
    rows, origins = [], []
    # split on "\n" only: str.splitlines would also cut at U+2028, which JSON strings may hold
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        rows.append(obj)
        origins.append(f"{path}:{lineno}")
    return Records(rows, origins)


def _json(path: Path) -> Records:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of objects, got {type(data).__name__}")
    for i, obj in enumerate(data):
        if not isinstance(obj, dict):
            raise DataError(f"{path}: item {i}: expected a JSON object, got {type(obj).__name__}")
    return Records(data, [str(path)] * len(data))


def _csv(path: Path) -> Records:
    rows, origins = [], []
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    try:
        start = 2  # the line after the header; a quoted field may span lines
        for row in reader:
            if None in row:
                n = len(reader.fieldnames or [])
                raise DataError(f"{path}:{reader.line_num}: more fields than the header's {n}")
            rows.append(dict(row))
            origins.append(f"{path}:{start}")
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: invalid CSV: {e}") from None
    return Records(rows, origins)


def _parquet(path: Path) -> Records:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source: Any = pa.BufferReader(_read_bytes(path)) if path.suffix.lower() == ".gz" else path
    try:
        rows: list[dict[str, Any]] = pq.read_table(source).to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file: {str(e).splitlines()[0]}") from None
    return Records(rows, [str(path)] * len(rows))


_READERS = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet}


def load_local(path: str | Path, fmt: str = "auto") -> Records:
    """Raw records of a local file; `fmt` 'auto' decides by suffix (a trailing .gz is allowed)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"{p}: no such dataset file")
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt not in _READERS:
        raise DataError(f"{p}: unknown format {fmt!r}; allowed: auto, {', '.join(FORMATS)}")
    try:
        rows = _READERS[fmt](p)
    except OSError as e:  # unreadable file (permissions, a directory race)
        raise DataError(f"{p}: cannot read: {e}") from None
    if not rows:
        raise DataError(f"{p}: no records")
    return rows
