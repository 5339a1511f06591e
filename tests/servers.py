"""A server process for tests: started in its own process group (a server's children die with it),
ready when `GET {url}/models` answers 200, stopped with SIGKILL to the whole group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`cmd` serving an OpenAI-compatible API at `url`; a RuntimeError with the log's tail when it
    exits or is not up within `timeout_s`."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        url: str,
        log: Path,
        timeout_s: float,
        env: dict[str, str] | None = None,
    ) -> None:
        import httpx

        self.url = url
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"{name} server exited {self.proc.returncode}: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{name} server not up in {timeout_s:.0f} s: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # children included
        self.proc.wait(30)
        self.log.close()
