"""The dashboard in a real browser: served by `bench.dashboard_data.launch` (what `bench dashboard`
runs) on 127.0.0.1 and loaded by headless Chromium, which must show the leaderboard table and the
Pareto plot (AppTest cannot see what the browser draws)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.config import parse_suite
from bench.runner import NullDisplay, execute, plan_run
from tests.browser.serving import free_port, missing_tool, serve

try:
    import streamlit  # noqa: F401
except ImportError:
    missing_tool("needs the dashboard extra: pip install 'bench[dashboard]'")

from tests.browser.cdp import chromium
from tests.load_sweeps import qa_items, two_model_sweep

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
# Debian's package (what .ci/run installs); BENCH_CHROMIUM names another binary.
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser() -> str:
    """The Chromium binary, looked up before the store and the server are built."""
    path = os.environ.get("BENCH_CHROMIUM") or CHROMIUM
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        missing_tool(f"no Chromium at {path}: apt-get install -y chromium")
    return path


def _store(d: Path, sweep: bool) -> Path:
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
    if sweep:  # for the Load page: a `bench load` sweep of two models that cross (~12 s)
        result = two_model_sweep(root, qa_items(d / "qa.jsonl"))
        assert not result.errors, result.errors
    return root


def _dashboard(root: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    # through bench's own launcher (what `bench dashboard` runs), in its own process group
    launch = f"from bench.dashboard_data import launch; raise SystemExit(launch({str(root)!r}, '127.0.0.1', {port}, True))"
    cmd = [sys.executable, "-c", launch]
    with serve(cmd, port, tmp_path / "streamlit.log", env) as (url, _):
        yield url


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    yield from _dashboard(_store(tmp_path, sweep=False), tmp_path)


@pytest.fixture
def sweep_server(tmp_path: Path) -> Iterator[str]:
    """The same store plus a load sweep, for the Load page."""
    yield from _dashboard(_store(tmp_path, sweep=True), tmp_path)


@pytest.mark.slow
def test_leaderboard_table_and_pareto_plot_render_in_chromium(
    browser: str, server: str, tmp_path: Path
) -> None:
    # Driven over the DevTools protocol: the test waits until the table and the plot are drawn
    # (a cold server takes seconds to send its first page) instead of guessing a load time; the
    # `--virtual-time-budget` screenshot of docs/ENVIRONMENT.md came back blank on a busy machine.
    shot = tmp_path / "shot.png"

    async def load() -> tuple[float, str]:
        async with chromium(browser, server) as page:
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
    "Load": ("Load", [".js-plotly-plot", "[data-testid=stDataFrame]"]),
}


@pytest.mark.slow
def test_every_page_draws_in_chromium(browser: str, sweep_server: str, tmp_path: Path) -> None:
    """Each page driven over the DevTools protocol: click it in the sidebar, wait until its title
    and its table or plot are drawn (no fixed sleep), and keep a screenshot of each."""

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
        async with chromium(browser, sweep_server) as page:
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
                if name == "Load":
                    assert "leaves its SLO at" in text and "has the higher goodput up to" in text, text[:3000]
                    assert await page.js("document.querySelectorAll('.js-plotly-plot').length") == 3
        return took

    took = asyncio.run(visit())
    print("pages drawn after (s):", {k: round(v, 2) for k, v in took.items()}, "screenshots in", tmp_path)
    for name in PAGES:
        shot = tmp_path / f"{name.replace(' ', '_').strip('?')}.png"
        assert shot.stat().st_size > 20_000, f"{name}: the screenshot looks blank"
