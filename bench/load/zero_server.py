"""A zero-latency OpenAI-compatible server (stdlib asyncio only) for measuring the load generator
itself: it streams `max_tokens` pieces at once (or after fixed delays), each stamped with the
server's perf_counter at send time (`"t"`) and at the moment it had read the request (`"t0"`; the
closing usage event is stamped too), so the client's timestamps can be checked against it.

    python -m bench.load.zero_server [--port 0] [--ttft-s 0] [--itl-s 0] [--answer TEXT]  # prints "port N"

Not a model: it answers every prompt with the same words. Used by bench.load.overhead and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

WORD = " ok"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: dict) -> bytes:
    return _chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")


async def _json_response(writer: asyncio.StreamWriter, obj: dict) -> None:
    payload = json.dumps(obj).encode()
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(payload), payload)
    )
    await writer.drain()


class ZeroServer:
    def __init__(self, ttft_s: float = 0.0, itl_s: float = 0.0, answer: str | None = None) -> None:
        self.ttft_s, self.itl_s = ttft_s, itl_s
        # the answer's words, one piece each (then "stop"); without one, max_tokens pieces of " ok"
        self.words = [" " + w for w in answer.split()] if answer else None
        self.served = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                received = time.perf_counter()
                if method == "GET":
                    await _json_response(
                        writer, {"object": "list", "data": [{"id": "zero", "object": "model"}]}
                    )
                    continue
                await self._stream(writer, path, json.loads(body or b"{}"), received)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter, path: str, req: dict, received: float) -> None:
        chat = path.endswith("/chat/completions")
        limit = max(1, int(req.get("max_tokens") or 16))
        words = (self.words or [WORD] * limit)[:limit]
        n, finish = len(words), "stop" if self.words and len(self.words) <= limit else "length"
        if not req.get("stream"):
            text = "".join(words)
            choice = {"index": 0, "finish_reason": finish}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            await _json_response(
                writer, {"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": n}}
            )
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        if self.ttft_s:
            await asyncio.sleep(self.ttft_s)
        for i, word in enumerate(words):
            if i and self.itl_s:
                await asyncio.sleep(self.itl_s)
            choice = {"index": 0, "finish_reason": finish if i == n - 1 else None}
            choice.update({"delta": {"content": word}} if chat else {"text": word})
            writer.write(_event({"choices": [choice], "t0": received, "t": time.perf_counter()}))
            await writer.drain()
        usage = {"prompt_tokens": 1, "completion_tokens": n}
        writer.write(_event({"choices": [], "usage": usage, "t0": received, "t": time.perf_counter()}))
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        self.served += 1


async def serve(port: int, ttft_s: float, itl_s: float, answer: str | None = None) -> None:
    srv = ZeroServer(ttft_s, itl_s, answer)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", port, backlog=1024)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ttft-s", type=float, default=0.0, help="wait before the first piece")
    ap.add_argument("--itl-s", type=float, default=0.0, help="wait between pieces")
    ap.add_argument("--answer", help="answer every prompt with these words (default: ' ok' x max_tokens)")
    a = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(a.port, a.ttft_s, a.itl_s, a.answer))


if __name__ == "__main__":
    main()
