"""A run against a flaky real server, resumed once the server is healthy: llama.cpp's OpenAI server
behind a proxy on 127.0.0.1 that fails the first requests (HTTP 500, 429, a dropped connection),
then forwards. The failed items are stored as errors; `bench run --resume` re-runs them: no holes,
one row per item, the attempts counted, and every figure recomputed over all the items."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest

from bench import store
from tests.integration.test_openai_server import LlamaServer

pytestmark = pytest.mark.slow

FAILURES = ("500", "429", "drop") * 2  # the first six completion requests, in this order
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FlakyProxy:
    """Forwards to `upstream`; the first POSTs fail as listed in `failures`. GETs (the backend's
    reachability check) always pass, so the model loads and its items are what fails."""

    def __init__(self, upstream: str, failures: tuple[str, ...]) -> None:
        self.upstream = upstream.rstrip("/")
        self.pending = list(failures)
        self.failed: list[str] = []
        self.forwarded = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with proxy.lock:
                    fail = proxy.pending.pop(0) if proxy.pending else None
                    if fail:
                        proxy.failed.append(fail)
                if fail == "drop":  # close the connection without an answer
                    self.close_connection = True
                    return
                if fail:
                    msg = b'{"error": {"message": "injected failure"}}'
                    self.send_response(int(fail))
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(msg)))
                    if fail == "429":
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP | {"host"}}
                r = httpx.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body, timeout=120
                )
                with proxy.lock:
                    proxy.forwarded += 1
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("content-length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server(tmp_path: Path, smollm2_path: str) -> Iterator[LlamaServer]:
    s = LlamaServer(smollm2_path, tmp_path / "server.log")
    yield s
    s.stop()


def _suite(path: Path, base_url: str) -> Path:
    """Eight ARC-Easy items asked as letters over the chat endpoint, one request per item in
    order, no retries inside the backend, no warm-up: each injected failure is one item's error."""
    path.write_text(
        "name: flaky\n"
        "defaults: {limit: 8, seed: 3, batch_size: 4, warmup: 0}\n"
        "models:\n"
        f"  - {{name: smol, backend: openai, model: smol, base_url: '{base_url}', endpoint: chat,\n"
        "      max_retries: 0, max_concurrency: 1}\n"
        "tasks:\n"
        "  - {name: arc, kind: mcq, dataset: arc_easy, method: generate}\n"
    )
    return path


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, timeout=600
    )


def _raw_samples(root: Path) -> pd.DataFrame:
    """The sample files as any Parquet reader sees them, without bench's reader."""
    return pd.concat([pd.read_parquet(f) for f in sorted(root.rglob("samples-*.parquet"))])


def _primary(files: list[Path]) -> pd.Series:
    runs = pd.concat([pd.read_parquet(f) for f in files])
    return runs[runs["primary"]].iloc[0]


def test_resume_against_the_healed_server_fills_every_hole(tmp_path: Path, server: LlamaServer) -> None:
    proxy = FlakyProxy(server.url.removesuffix("/v1"), FAILURES)
    try:
        suite = _suite(tmp_path / "flaky.yaml", proxy.url + "/v1")
        out = tmp_path / "results"
        first = _bench("run", str(suite), "-o", str(out))
        assert first.returncode == 0, first.stderr[-3000:]
        assert proxy.failed == list(FAILURES)
        s = store.samples_dataset(out).to_table().to_pandas()
        assert len(s) == 8 and (s["attempt"] == 1).all()
        failed = set(s.loc[s["error"].notna(), "item_id"])
        assert len(failed) == 6, s[["item_id", "error"]]
        errors = " ".join(s["error"].dropna())
        assert "HTTP 500" in errors and "HTTP 429" in errors and "connection" in errors, errors
        assert "2/8!" in first.stdout, first.stdout  # an accuracy over 2 of 8 items, flagged
        answered = s[s["error"].isna()].set_index("item_id")

        resumed = _bench("run", str(suite), "-o", str(out), "--resume")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "Resuming" in resumed.stderr and "re-running 6 failed items" in resumed.stderr
        assert proxy.failed == list(FAILURES)  # the server was healthy this time
    finally:
        proxy.close()

    s = store.samples_dataset(out).to_table().to_pandas().set_index("item_id")
    assert len(s) == 8 and s.index.is_unique and s["run_id"].nunique() == 1
    assert s["error"].isna().all(), s["error"]
    assert s["attempt"].to_dict() == {i: 2 if i in failed else 1 for i in s.index}
    # the two answered the first time were not asked again
    kept = s.loc[answered.index]
    assert list(kept["started_at"]) == list(answered["started_at"])
    assert list(kept["raw_output"]) == list(answered["raw_output"])
    raw = _raw_samples(out)
    assert len(raw) == 8 and raw["item_id"].is_unique and raw["error"].isna().all()

    # every figure over all 8 items, in the runs file and in the run's summary alike
    run_dir = next(out.rglob("run.json")).parent
    for files in (sorted(run_dir.glob("runs-*.parquet")), [run_dir / store.SUMMARY_FILE]):
        row = _primary(files)
        assert (row["n"], row["n_errors"], row["status"]) == (8, 0, "ok"), files
        assert row["value"] == pytest.approx(s["score"].mean()), files
    assert "8/8" in resumed.stdout and "8/8!" not in resumed.stdout, resumed.stdout

    # and the answers are those of an uninterrupted run straight against the server
    clean = tmp_path / "clean"
    direct = _bench("run", str(_suite(tmp_path / "direct.yaml", server.url)), "-o", str(clean))
    assert direct.returncode == 0, direct.stderr[-3000:]
    c = store.samples_dataset(clean).to_table().to_pandas().set_index("item_id").loc[s.index]
    assert list(c["raw_output"]) == list(s["raw_output"])
    assert _primary(sorted(clean.rglob("runs-*.parquet")))["value"] == pytest.approx(s["score"].mean())
