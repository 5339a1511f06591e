"""Find a secret anywhere bench writes: every value of every column of every Parquet file
(decoded, since zstd pages never hold a stored string literally), Parquet key-value metadata,
and every other file as text (run.json, logs, verdict.json, report.md, report.html, ...).

A truncated key is a leak too, so any 12-character piece of the secret counts."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PIECE = 12


def pieces(secret: str) -> set[str]:
    n = min(PIECE, len(secret))
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", errors="replace")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)
    elif value is not None:
        yield str(value)


def _parquet_texts(path: Path) -> Iterator[tuple[str, str]]:
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    for k, v in (f.metadata.metadata or {}).items():
        yield "metadata", k.decode("utf-8", "replace") + "=" + v.decode("utf-8", "replace")
    table = f.read()
    for name in table.column_names:
        for value in table.column(name).to_pylist():
            for s in _strings(value):
                yield name, s


def texts(path: Path) -> Iterator[tuple[str, str]]:
    """(where in the file, text) for everything a reader of `path` could see."""
    if path.suffix == ".parquet":
        yield from _parquet_texts(path)
        return
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    yield "text", raw.decode("utf-8", errors="replace")


def files_under(*roots: Path) -> list[Path]:
    return sorted(
        f for r in roots if r.exists() for f in ([r] if r.is_file() else r.rglob("*")) if f.is_file()
    )


def find(roots: Iterable[Path], secrets: Iterable[str], *outputs: str) -> list[str]:
    """Every place a piece of a secret appears: 'file [column]: ...context...'; `outputs` are
    captured terminal texts (stdout, stderr)."""
    needles = {p for s in secrets for p in pieces(s)}
    hits = []
    sources: list[tuple[str, Iterable[tuple[str, str]]]] = [
        (f"output {i}", [("text", o)]) for i, o in enumerate(outputs)
    ]
    sources += [(str(f), texts(f)) for f in files_under(*roots)]
    for label, found in sources:
        for where, text in found:
            for n in needles:
                at = text.find(n)
                if at >= 0:
                    hits.append(f"{label} [{where}]: ...{text[max(0, at - 40) : at + 40]!r}...")
                    break
    return hits
