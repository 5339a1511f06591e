"""A dashboard server for a test: a command that serves streamlit on 127.0.0.1, started in its
own process group, waited for on /_stcore/health (a failed start fails the test with its log) and
killed with its children at the end. No websockets here, so tests without a browser can use it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest


def missing_tool(what: str) -> None:
    """Under CI (the CI variable set, as .ci/run does) a missing tool fails the test: a skip would
    keep CI green without the dashboard ever being drawn. Elsewhere it skips with the install line."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI is set, so the browser tests must run)", pytrace=False)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(
    cmd: Sequence[str],
    port: int,
    log_path: Path,
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float = 60,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `cmd` (which serves on `port`) until the block ends; yields the base URL and the process."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        list(cmd), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url + "_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start (exit {proc.poll()}):\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already when it failed to start
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
