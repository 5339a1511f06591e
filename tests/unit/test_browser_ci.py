"""The browser tests cannot pass CI by skipping: without Chromium they fail (as setup errors)
when CI is set, as .ci/run sets it, and skip with the install line elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _browser_tests(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "tests/browser", "-m", "slow", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**base, "BENCH_CHROMIUM": str(tmp_path / "no-chromium"), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("ci", ["1", "true"])
def test_missing_chromium_fails_under_ci(tmp_path: Path, ci: str) -> None:
    pytest.importorskip("streamlit", reason="needs the dashboard extra: pip install 'bench[dashboard]'")
    p = _browser_tests(tmp_path, CI=ci)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out[-3000:]
    # failed in the `browser` fixture, before a store or a server is built: pytest counts errors
    assert "2 errors" in out and "skipped" not in out and "passed" not in out, out[-3000:]
    assert "CI is set, so the browser tests must run" in out and "apt-get install -y chromium" in out


def test_missing_chromium_skips_outside_ci(tmp_path: Path) -> None:
    pytest.importorskip("streamlit", reason="needs the dashboard extra: pip install 'bench[dashboard]'")
    p = _browser_tests(tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    assert "2 skipped" in out and "failed" not in out, out[-3000:]
