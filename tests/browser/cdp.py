"""A minimal Chrome DevTools Protocol client: headless Chromium driven over its debugging websocket
(`websockets` comes with streamlit), so a test can wait for what the page draws, click, and take
screenshots, instead of guessing a load time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import websockets

from tests.browser.serving import free_port

# The flags of docs/ENVIRONMENT.md that make headless Chromium work in this sandbox.
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Page:
    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        my = next(self._ids)
        await self._ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(await self._ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    async def js(self, expression: str) -> Any:
        r = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return r.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0) -> float:
        """Seconds until the JS expression is truthy; raises TimeoutError."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if await self.js(expression):
                return time.monotonic() - t0
            await asyncio.sleep(0.25)
        raise TimeoutError(f"not true after {timeout:.0f} s: {expression}")

    async def click_label(self, text: str) -> bool:
        """Click the first <label> whose text is `text` (a streamlit radio option)."""
        return bool(
            await self.js(
                "(() => { const l = [...document.querySelectorAll('label')]"
                f".find(e => e.innerText.trim() === {json.dumps(text)}); if (!l) return false; l.click(); return true; }})()"
            )
        )

    async def screenshot(self, path: Path) -> None:
        r = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(r["data"]))


@contextlib.asynccontextmanager
async def chromium(binary: str, url: str, width: int = 1400, height: int = 1100) -> AsyncIterator[Page]:
    """Headless Chromium on `url`, as a Page; the browser is killed on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [
                binary,
                *HEADLESS_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as r:
                        tabs = json.load(r)
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("chromium did not open its debugging port") from None
                    await asyncio.sleep(0.2)
            ws_url = next(t["webSocketDebuggerUrl"] for t in tabs if t.get("type") == "page")
            async with websockets.connect(ws_url, max_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                await page.call("Page.navigate", url=url)
                yield page
        finally:
            proc.kill()
            proc.wait()
