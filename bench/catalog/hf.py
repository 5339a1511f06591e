"""Catalog models in Hugging Face form (safetensors + tokenizer folder), for transformers and vLLM.

vLLM loads only Hugging Face folders and transformers de-quantizes a GGUF on every load (~65 s), so
a catalog model's GGUF is converted once, with transformers' own GGUF reader, into
`<cache>/models/hf/<name>/` in bfloat16. A manifest records each file's size and sha256; a folder
whose files do not match it is rebuilt, never used. Conversion needs torch, transformers, gguf and
accelerate (`pip install 'bench[transformers]' gguf accelerate`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.catalog.models import MODELS, _sha256, cache_dir
from bench.errors import ModelNotFound

MANIFEST = "bench-manifest.json"
# Half the size of float32. Not lossless: a de-quantized Q4_1 value (d*q + m, fp16 d and m) can need
# more than bf16's 8-bit mantissa; measured on smollm2-135m, 25% of weights kept exactly, mean
# rounding error 0.11% of |w| (vLLM on it vs llama.cpp on the GGUF: 0.15 nats median per choice).
HF_DTYPE = "bfloat16"
INSTALL_HINT = "pip install 'bench[transformers]' gguf accelerate"

# Catalog models that transformers' GGUF reader cannot convert, and why (tested, not assumed).
NOT_CONVERTIBLE: dict[str, str] = {}

_verified: set[Path] = set()  # folders hashed in this process


def hf_dir(name: str) -> Path:
    return cache_dir() / "models" / "hf" / name


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def hf_locate(name: str) -> Path | None:
    """The folder if it is complete (every manifest file present at its size); no hashing."""
    folder = hf_dir(name)
    manifest = _read_manifest(folder)
    if manifest is None:
        return None
    for rel, meta in manifest["files"].items():
        p = folder / rel
        if not p.is_file() or p.stat().st_size != meta.get("size"):
            return None
    return folder


def hf_size(name: str) -> int | None:
    folder = hf_locate(name)
    if folder is None:
        return None
    return sum(int(m["size"]) for m in (_read_manifest(folder) or {"files": {}})["files"].values())


def verify(folder: Path) -> list[str]:
    """Files whose sha256 differs from the manifest's (empty: the folder is intact)."""
    manifest = _read_manifest(folder)
    if manifest is None:
        return [MANIFEST]
    return [
        rel
        for rel, meta in manifest["files"].items()
        if not (folder / rel).is_file() or _sha256(folder / rel) != meta.get("sha256")
    ]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One conversion at a time per model, across processes (parallel workers, test sessions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def hf_resolve(name: str) -> Path:
    """The model's Hugging Face folder, converted from its GGUF on first use and hashed once per
    process (a 269 MB folder hashes in ~0.5 s, against ~30 s for an engine to load it)."""
    if name not in MODELS:
        raise ModelNotFound(f"{name}: not a catalog model (catalog: {', '.join(MODELS)})")
    if name in NOT_CONVERTIBLE:
        raise ModelNotFound(f"{name}: no Hugging Face form: {NOT_CONVERTIBLE[name]}")
    folder = hf_dir(name)
    with _lock(folder.with_name(f".{name}.lock")):
        if hf_locate(name) is not None and (folder in _verified or not verify(folder)):
            _verified.add(folder)
            return folder
        _convert(name, folder)
        _verified.add(folder)
        return folder


def model_source(model: str | None, name: str) -> tuple[str, str | None]:
    """(what to load, catalog name or None) for a transformers/vLLM spec: `model` when it is a hub id
    or folder; a catalog name (in `model`, or `name` when `model` is unset) gives its HF folder."""
    ref = model or name
    if ref in MODELS and not Path(ref).exists():
        return str(hf_resolve(ref)), ref
    return ref, None


def _convert(name: str, target: Path) -> None:
    gguf = MODELS[name].resolve()
    try:
        import torch
        import transformers
    except ImportError:
        raise ModelNotFound(
            f"{name}: converting its GGUF needs torch and transformers: {INSTALL_HINT}"
        ) from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        src, kw = str(gguf.parent), {"gguf_file": gguf.name}
        try:
            tok = transformers.AutoTokenizer.from_pretrained(src, **kw)
            model = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16, **kw)
        except Exception as e:  # missing gguf/accelerate, an architecture the reader lacks ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelNotFound(f"{name}: transformers could not read {gguf.name}: {first}") from None
        # The loader marks the model as GGUF-quantized; the weights are plain tensors by now, and
        # save_pretrained refuses (or writes a quantization_config vLLM rejects) unless unmarked.
        marked: Any = model  # torch's Module typing does not know these attributes
        marked.hf_quantizer = None
        if hasattr(marked.config, "quantization_config"):
            del marked.config.quantization_config
        marked.is_quantized = False
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        files = {
            str(p.relative_to(tmp)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "model": name,
            "source": gguf.name,
            "source_size": gguf.stat().st_size,
            "dtype": HF_DTYPE,
            "transformers": transformers.__version__,
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hf_status(name: str) -> str:
    """For `bench ls models`: is the Hugging Face form there, can it be made, or why not."""
    if name in NOT_CONVERTIBLE:
        return f"n/a ({NOT_CONVERTIBLE[name]})"
    size = hf_size(name)
    if size is not None:
        return f"ready, {size / 2**20:.0f} MB"
    import importlib.util

    missing = [
        m for m in ("torch", "transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return f"needs {', '.join(missing)}: {INSTALL_HINT}"
    return "converted from the GGUF on first use"
