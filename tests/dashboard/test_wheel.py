"""`bench dashboard` from a wheel: the package is built into a wheel, installed non-editable with
the dashboard extra into a fresh venv (nothing of the checkout on its path), a real store is
written with that venv's `bench run` (the fake backend), and that venv's `bench dashboard` must
serve the app file that shipped inside the wheel on 127.0.0.1. The page script is then run with
streamlit's AppTest from inside the venv (every page, leaderboard numbers against the store) and,
where Chromium is installed, drawn by a real browser."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from bench import store
from tests.browser.serving import free_port, missing_tool, serve

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODELS = ("wheel-large", "wheel-small")
PAGES = ("Leaderboard", "Is a small model enough?", "Drill-down", "History")


@dataclass(frozen=True)
class Venv:
    root: Path
    python: Path
    bench: Path
    site: Path  # its site-packages
    env: dict[str, str]  # no PYTHONPATH and no BENCH_* of the calling test run


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float) -> str:
    r = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """A wheel of this checkout installed with [dashboard] into a new venv (pip's cache reused)."""
    d = tmp_path_factory.mktemp("wheel")
    src = d / "src"  # a copy, so the build writes no build/ or egg-info into the shared checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("BENCH_")}
    env["BENCH_CACHE_DIR"] = str(d / "cache")
    t0 = time.monotonic()
    _run([sys.executable, "-m", "venv", d / "venv"], d, env, 300)
    py = d / "venv" / "bin" / "python"
    _run([py, "-m", "pip", "wheel", src, "--no-deps", "-w", d / "dist", "-q"], d, env, 600)
    (wheel,) = (d / "dist").glob("bench-*.whl")
    t1 = time.monotonic()
    _run([py, "-m", "pip", "install", f"{wheel}[dashboard]", "-q"], d, env, 900)
    t2 = time.monotonic()
    print(f"venv + wheel {t1 - t0:.1f} s, pip install {wheel.name}[dashboard] {t2 - t1:.1f} s")
    site = Path(
        _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], d, env, 60).strip()
    )
    where = _run([py, "-c", "import bench; print(bench.__file__)"], d, env, 60).strip()
    assert Path(where).is_relative_to(site), f"bench imported from {where}, not the venv's {site}"
    yield Venv(d, py, d / "venv" / "bin" / "bench", site, env)
    shutil.rmtree(d / "venv", ignore_errors=True)  # ~0.9 GB; pytest keeps the last three temp dirs


@pytest.fixture(scope="module")
def results(venv: Venv) -> Path:
    """A store written by the installed `bench run`: two fake models on a 20-item MCQ task."""
    rows = [
        {
            "id": f"q{i:02d}-gold:{i % 3}",
            "q": f"What is item {i}?",
            "opts": ["a", "bb", "ccc"],
            "label": i % 3,
        }
        for i in range(20)
    ]
    (venv.root / "items.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    suite = {
        "name": "wheel",
        "defaults": {"seed": 3},
        "hardware": {"name": "test-box", "usd_per_hour": 3.6},
        "models": [
            {"name": MODELS[0], "backend": "fake", "accuracy": 0.9},
            {"name": MODELS[1], "backend": "fake", "accuracy": 0.4},
        ],
        "tasks": [
            {
                "name": "custom",
                "kind": "mcq",
                "dataset": {"path": "items.jsonl"},
                "fields": {"id": "id", "question": "q", "choices": "opts", "answer": "label"},
            }
        ],
    }
    (venv.root / "suite.json").write_text(json.dumps(suite))
    out = venv.root / "results"
    _run([venv.bench, "run", "suite.json", "-o", out], venv.root, venv.env, 300)
    return out


@pytest.fixture(scope="module")
def server(venv: Venv, results: Path) -> Iterator[tuple[str, psutil.Process]]:
    """The installed `bench dashboard` on a free port, in its own process group."""
    port = free_port()
    cmd = [str(venv.bench), "dashboard", str(results), "--port", str(port)]
    with serve(cmd, port, venv.root / "dashboard.log", venv.env, cwd=venv.root, timeout=90) as (url, proc):
        yield url, psutil.Process(proc.pid)


APPTEST = """
import json, sys
from streamlit.testing.v1 import AppTest
import bench.dashboard

at = AppTest.from_file(str(bench.dashboard.APP_FILE), default_timeout=60).run()
out = {"app": str(bench.dashboard.APP_FILE), "pages": {}}
board = at.dataframe[0].value if len(at.dataframe) else None
out["board"] = None if board is None else board[["model", "custom", "rank"]].to_dict("records")
for page in json.loads(sys.argv[1]):
    if page != "Leaderboard":
        at.radio(key="page").set_value(page).run()
    out["pages"][page] = {
        "exceptions": [str(e.value) for e in at.exception],
        "headers": [h.value for h in at.header],
        "tables": len(at.dataframe),
        "charts": len(at.get("plotly_chart")),
    }
print(json.dumps(out))
"""


def test_bench_dashboard_from_a_wheel_serves_the_packaged_app(
    venv: Venv, results: Path, server: tuple[str, psutil.Process]
) -> None:
    url, proc = server
    assert httpx.get(url + "_stcore/health", timeout=5).text == "ok"
    index = httpx.get(url, timeout=5)
    assert index.status_code == 200 and '<div id="root">' in index.text
    # what streamlit was told to run: the app file inside the installed package
    cmdlines = [" ".join(p.cmdline()) for p in [proc, *proc.children(recursive=True)]]
    app = venv.site / "bench" / "dashboard" / "app.py"
    assert app.is_file() and any(f"streamlit run {app} " in c for c in cmdlines), cmdlines
    assert not any(str(REPO) in c for c in cmdlines), cmdlines

    # the packaged page script, run by AppTest with the venv's own streamlit and bench
    env = {**venv.env, "BENCH_RESULTS_DIR": str(results)}
    got = json.loads(
        _run([venv.python, "-c", APPTEST, json.dumps(PAGES)], venv.root, env, 300).splitlines()[-1]
    )
    assert got["app"] == str(app)
    for page in PAGES:
        p = got["pages"][page]
        assert not p["exceptions"], (page, p["exceptions"])
        assert page in p["headers"] and p["tables"] >= 1, (page, p)
    assert got["pages"]["Leaderboard"]["charts"] == 4  # the Pareto fronts
    runs = store.runs_dataset(results).to_table().to_pandas()
    acc = runs[runs["primary"]].set_index("model")["value"]
    board = {r["model"]: r["custom"] for r in got["board"]}
    assert sorted(board) == sorted(MODELS)
    assert board == pytest.approx(acc.to_dict())
    assert board[MODELS[0]] > board[MODELS[1]]


def test_chromium_draws_the_wheel_dashboard(server: tuple[str, psutil.Process]) -> None:
    browser = os.environ.get("BENCH_CHROMIUM") or "/usr/bin/chromium"
    if not (Path(browser).is_file() and os.access(browser, os.X_OK)):
        missing_tool(f"no Chromium at {browser}: apt-get install -y chromium")
    from tests.browser.cdp import chromium

    url, _ = server

    async def load() -> str:
        async with chromium(browser, url) as page:
            await page.wait_for(
                "document.querySelector('[data-testid=stApp]')?.dataset.testScriptState !== 'running'"
                " && !!document.querySelector('[data-testid=stDataFrame]')"
                " && !!document.querySelector('.js-plotly-plot .main-svg')",
                timeout=120,
            )
            assert await page.click_label("History")
            await page.wait_for(
                "[...document.querySelectorAll('h2')].some(h => h.innerText.trim() === 'History')"
                " && document.querySelector('[data-testid=stApp]')?.dataset.testScriptState !== 'running'",
                timeout=90,
            )
            return str(await page.js("location.pathname + '\\n' + document.body.innerText"))

    text = asyncio.run(load())
    path, body = text.split("\n", 1)
    assert path == "/history", path  # st.navigation's URL path for the page
    assert "Traceback" not in body and MODELS[0] in body, body[:2000]
