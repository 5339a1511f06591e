"""The API key never reaches anything bench writes, including the error path: a server on
127.0.0.1 that echoes the request's Authorization header back in its error bodies (as some
proxies and misconfigured gateways do). Results, run.json, logs, the nightly verdict and reports,
and the terminal output are all decoded and searched for any 12-character piece of the key."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from bench import store
from tests.integration import leaks

pytestmark = pytest.mark.slow

# The error body puts the header where bench cuts long messages (300 characters of detail): a key
# scrubbed only after the cut would leave its first characters behind.
PAD = 278


class EchoAuth(BaseHTTPRequestHandler):
    """/models answers; every completion fails with the caller's Authorization header in the body."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        if self.path.endswith("/chat/completions"):  # retried: 5xx, plain text
            self._send(500, f"upstream refused the request with Authorization: {auth}", "text/plain")
        else:  # not retried: 400, OpenAI-style JSON
            message = "p" * PAD + f"{auth} is not valid for this model"
            self._send(400, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}))


@pytest.fixture
def echo_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), EchoAuth)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _suite(tmp: Path, url: str) -> Path:
    mcq = tmp / "mcq.jsonl"
    mcq.write_text(
        "".join(json.dumps({"q": f"Item {i}?", "c": ["yes", "no"], "a": 0}) + "\n" for i in range(3))
    )
    math = tmp / "math.jsonl"
    math.write_text(
        "".join(json.dumps({"question": f"{i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(3))
    )
    text = tmp / "text.jsonl"
    text.write_text("".join(json.dumps({"text": f"Some text number {i}."}) + "\n" for i in range(2)))
    common = {"backend": "openai", "model": "m", "base_url": url, "api_key_env": "BENCH_SECRET"}
    suite = {
        "name": "leak",
        "defaults": {"seed": 1},
        "models": [
            {"name": "api-completions", **common, "max_retries": 0},
            {"name": "api-chat", **common, "endpoint": "chat", "max_retries": 1},
        ],
        "tasks": [
            {
                "name": "mcq",
                "kind": "mcq",
                "dataset": {"path": str(mcq)},
                "fields": {"question": "q", "choices": "c", "answer": "a"},
            },
            {"name": "math", "kind": "math", "dataset": {"path": str(math)}, "max_tokens": 8},
            {"name": "ppl", "kind": "perplexity", "dataset": {"path": str(text)}, "text_field": "text"},
        ],
    }
    p = tmp / "suite.yaml"
    p.write_text(yaml.safe_dump(suite, sort_keys=False))
    return p


def _bench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_echoed_authorization_header_never_reaches_results_reports_or_logs(
    echo_server: str, tmp_path: Path
) -> None:
    key = f"sk-live-{secrets.token_hex(16)}"
    env = {**os.environ, "BENCH_SECRET": key}
    suite = _suite(tmp_path, echo_server)
    out, reports = tmp_path / "results", tmp_path / "reports"
    outputs = []
    for args in (
        ["run", str(suite), "-o", str(out)],
        ["nightly", str(suite), "-o", str(out), "--reports", str(reports)],
        ["report", "-o", str(out)],
    ):
        p = _bench(*args, env=env)
        assert "Traceback" not in p.stderr, p.stderr[-3000:]
        outputs += [p.stdout, p.stderr]

    # The error path really ran: every item failed with the server's (scrubbed) body stored.
    samples = store.samples_dataset(out).to_table().to_pandas()
    assert len(samples) and samples["error"].notna().all()
    errors = " | ".join(samples["error"].astype(str))
    assert "HTTP 400 from /v1/completions" in errors and "HTTP 500 from /v1/chat/completions" in errors
    assert "Bearer ***" in errors
    written = leaks.files_under(out, reports)
    names = {f.name for f in written}
    assert {"run.json", "verdict.json", "report.md", "report.html"} <= names, names
    assert any(f.suffix == ".parquet" for f in written) and any(f.suffix == ".log" for f in written)

    hits = leaks.find([out, reports], [key], *outputs)
    assert not hits, "\n".join(hits)


def test_the_search_finds_a_cut_key_that_a_whole_key_byte_grep_misses(tmp_path: Path) -> None:
    """The old test grepped raw bytes for the whole key; a message cut mid-key (what bench stored
    before scrubbing came ahead of the 300-character cut) passes that grep and fails this search,
    in a plain column, a nested one, and a report."""
    key = f"sk-live-{secrets.token_hex(16)}"
    f = tmp_path / "samples.parquet"
    rows = [f"HTTP 400 from /v1/completions: ppp Bearer {key[:15]}"] + ["ok"] * 50
    pq.write_table(pa.table({"error": rows}), f, compression="zstd")
    assert key.encode() not in f.read_bytes()
    hits = leaks.find([tmp_path], [key])
    assert len(hits) == 1 and "samples.parquet [error]" in hits[0], hits
    g = tmp_path / "runs.parquet"
    pq.write_table(pa.table({"extra": [{"note": f"x {key[-13:]}", "n": 1}]}), g, compression="zstd")
    (tmp_path / "report.html").write_text(f"<td>{key[3:17]}</td>")
    found = leaks.find([tmp_path], [key])
    assert len(found) == 3 and any("runs.parquet [extra]" in h for h in found), found
    assert not leaks.find([tmp_path], [f"sk-live-{secrets.token_hex(16)}"])
