"""The dashboard in a real browser: served by `bench.dashboard_data.launch` (what `bench dashboard`
runs) on 127.0.0.1 and loaded by headless Chromium, which must show the leaderboard table and the
Pareto plot (AppTest cannot see what the browser draws)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run

pytest.importorskip("streamlit", reason="needs the dashboard extra: pip install 'bench[dashboard]'")

from tests.browser.cdp import chromium, free_port

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
CHROMIUM = "/usr/bin/chromium"


def _store(d: Path) -> Path:
    data = d / "items.jsonl"
    rows = [
        {
            "id": f"q{i:02d}-gold:{i % 3}",
            "q": f"What is item {i}?",
            "opts": ["a", "bb", "ccc"],
            "label": i % 3,
        }
        for i in range(30)
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    suite = {
        "name": "browser",
        "defaults": {"seed": 3, "batch_size": 8},
        "hardware": {"name": "test-box", "usd_per_hour": 3.6},
        "models": [
            {"name": "large-one", "backend": "fake", "accuracy": 0.9},
            {"name": "small-one", "backend": "fake", "accuracy": 0.4},
        ],
        "tasks": [
            {
                "name": "custom",
                "kind": "mcq",
                "dataset": {"path": str(data)},
                "fields": {"id": "id", "question": "q", "choices": "opts", "answer": "label"},
            }
        ],
    }
    root = d / "results"
    execute(plan_run(parse_suite(suite), root), NullDisplay(), executor="inline")
    return root


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    root = _store(tmp_path)
    port = free_port()
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    # through bench's own launcher (what `bench dashboard` runs), in its own process group
    launch = f"from bench.dashboard_data import launch; raise SystemExit(launch({str(root)!r}, '127.0.0.1', {port}, True))"
    cmd = [sys.executable, "-c", launch]
    log = open(tmp_path / "streamlit.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + (tmp_path / "streamlit.log").read_text()[-3000:])
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.mark.slow
def test_leaderboard_table_and_pareto_plot_render_in_chromium(server: str, tmp_path: Path) -> None:
    if not (Path(CHROMIUM).is_file() and shutil.which(CHROMIUM)):
        pytest.skip("no Chromium: apt-get install -y chromium")
    # Driven over the DevTools protocol: the test waits until the table and the plot are drawn
    # (a cold server takes seconds to send its first page) instead of guessing a load time; the
    # `--virtual-time-budget` screenshot of docs/ENVIRONMENT.md came back blank on a busy machine.
    shot = tmp_path / "shot.png"

    async def load() -> tuple[float, str]:
        async with chromium(CHROMIUM, server) as page:
            took = await page.wait_for(
                "document.querySelector('[data-testid=stApp]')?.dataset.testScriptState !== 'running'"
                " && !!document.querySelector('[data-testid=stDataFrame]')"
                " && !!document.querySelector('.js-plotly-plot .main-svg')",
                timeout=120,
            )
            await asyncio.sleep(1.0)  # plotly's transition
            await page.screenshot(shot)
            return took, str(await page.js("document.documentElement.outerHTML"))

    took, dom = asyncio.run(load())
    print(f"screenshot: {shot} (table and plot drawn after {took:.1f} s)")
    assert "Leaderboard" in dom and "Pareto fronts" in dom, dom[-2000:]
    assert 'data-testid="stDataFrame"' in dom, "the leaderboard table is missing"
    assert "js-plotly-plot" in dom, "the Pareto plot is missing"
    assert "large-one" in dom and "small-one" in dom  # model labels in the plot (the table is a canvas)
    assert shot.is_file() and shot.stat().st_size > 20_000  # a blank page is ~8 kB


PAGES = {
    # page -> what must be drawn once it has run: its title and the elements a user reads
    "Leaderboard": ("Leaderboard", ["[data-testid=stDataFrame]", ".js-plotly-plot"]),
    "Is a small model enough?": (
        "Is a small model enough?",
        ["[data-testid=stDataFrame]", ".js-plotly-plot"],
    ),
    "Drill-down": ("Drill-down", ["[data-testid=stDataFrame]"]),
    "History": ("History", [".js-plotly-plot", "[data-testid=stDataFrame]"]),
}


@pytest.mark.slow
def test_every_page_draws_in_chromium(server: str, tmp_path: Path) -> None:
    """Each page driven over the DevTools protocol: click it in the sidebar, wait until its title
    and its table or plot are drawn (no fixed sleep), and keep a screenshot of each."""
    if not (Path(CHROMIUM).is_file() and shutil.which(CHROMIUM)):
        pytest.skip("no Chromium: apt-get install -y chromium")

    def ready(title: str, selectors: list[str]) -> str:
        # the page's title is drawn, streamlit has finished the script run (until then the previous
        # page's elements stay on screen, marked stale) and the page's own elements are there
        return (
            f"[...document.querySelectorAll('h1,h2')].some(h => h.innerText.trim() === {json.dumps(title)})"
            + "".join(f" && !!document.querySelector({json.dumps(s)})" for s in selectors)
            + " && document.querySelector('[data-testid=stApp]')?.dataset.testScriptState !== 'running'"
            + " && ![...document.querySelectorAll('[data-testid=stException]')].length"
        )

    async def visit() -> dict[str, float]:
        took: dict[str, float] = {}
        async with chromium(CHROMIUM, server) as page:
            for name, (title, selectors) in PAGES.items():
                if name != "Leaderboard":
                    assert await page.click_label(name), f"no sidebar entry {name!r}"
                took[name] = await page.wait_for(ready(title, selectors), timeout=90)
                await asyncio.sleep(1.0)  # let plotly finish its transition before the picture
                await page.screenshot(tmp_path / f"{name.replace(' ', '_').strip('?')}.png")
                text = await page.js("document.body.innerText")
                assert "Traceback" not in text and "Error" not in text.split("\n")[0], text[:2000]
                if name == "Leaderboard":
                    assert "large-one" in text and "small-one" in text
                if name == "Is a small model enough?":
                    assert "Cascade" in text
        return took

    took = asyncio.run(visit())
    print("pages drawn after (s):", {k: round(v, 2) for k, v in took.items()}, "screenshots in", tmp_path)
    for name in PAGES:
        shot = tmp_path / f"{name.replace(' ', '_').strip('?')}.png"
        assert shot.stat().st_size > 20_000, f"{name}: the screenshot looks blank"
