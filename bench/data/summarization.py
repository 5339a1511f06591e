"""XSum and CNN/DailyMail: offline copies read in place, or the Hugging Face hub.

The offline files (`{"id", "document", "summary"}` per line) are looked up, in order, in
$BENCH_SUMMARIZATION_DIR, then `../shared/data/summarization` beside the working directory and
beside the bench checkout. They are read where they are, never copied. Without them, the hub
copies (EdinburghNLP/xsum, abisee/cnn_dailymail 3.0.0) are used when `datasets` is installed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bench
from bench.errors import DataError

ENV = "BENCH_SUMMARIZATION_DIR"
FILES = {"xsum": "xsum.jsonl", "cnn_dailymail": "cnn_dailymail.jsonl"}
HUB = {
    "xsum": ("EdinburghNLP/xsum", None, "document", "summary", "id"),
    "cnn_dailymail": ("abisee/cnn_dailymail", "3.0.0", "article", "highlights", "id"),
}


def candidate_dirs() -> list[Path]:
    out = []
    if os.environ.get(ENV):
        out.append(Path(os.environ[ENV]))
    out.append(Path.cwd().parent / "shared" / "data" / "summarization")
    out.append(Path(bench.__file__).resolve().parents[2] / "shared" / "data" / "summarization")
    return out


def local_file(name: str) -> Path | None:
    for d in candidate_dirs():
        p = d / FILES[name]
        if p.is_file():
            return p
    return None


def status(name: str) -> str:
    if local_file(name) is not None:
        return "available"
    import importlib.util

    return "hub (needs the hub)" if importlib.util.find_spec("datasets") else f"missing: set {ENV}"


def load(name: str, split: str) -> list[dict[str, Any]]:
    path = local_file(name)
    if path is not None:
        from bench.data.local import load_local

        local = load_local(path, "jsonl")
        return [_canonical(name, r, i, "document", "summary", "id") for i, r in enumerate(local)]
    hub, config, doc_key, sum_key, id_key = HUB[name]
    try:
        from bench.data.hub import load_hub
        from bench.specs.base import HubDataset

        rows = load_hub(HubDataset(hub=hub, config=config, split=split), split)
    except DataError as e:
        looked = ", ".join(str(d) for d in candidate_dirs())
        raise DataError(
            f"{name}: no offline copy ({FILES[name]} in {looked}; set {ENV}) and the hub failed: {e}"
        ) from None
    return [_canonical(name, r, i, doc_key, sum_key, id_key) for i, r in enumerate(rows)]


def _canonical(
    name: str, r: dict[str, Any], i: int, doc_key: str, sum_key: str, id_key: str
) -> dict[str, Any]:
    for key in (doc_key, sum_key):
        if not isinstance(r.get(key), str) or not r[key].strip():
            raise DataError(f"{name}: record {i} (id {r.get(id_key)}): missing or empty field {key!r}")
    return {"id": str(r.get(id_key) or f"{name}-{i}"), "document": r[doc_key], "summary": r[sum_key]}
