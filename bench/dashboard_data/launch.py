"""Serving the dashboard: `bench dashboard` runs streamlit on the app file inside the package
(bench/dashboard/app.py), so it works from a wheel as well as from a checkout."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from bench.errors import BenchError


def app_path() -> Path:
    """bench/dashboard/app.py of the installed package (a wheel ships it), found without importing
    the app's package: this data layer does not depend on the pages."""
    spec = importlib.util.find_spec("bench.dashboard")
    if spec is None or spec.origin is None:
        raise BenchError("bench.dashboard is missing from this install; reinstall bench")
    return Path(spec.origin).resolve().parent / "app.py"


def launch(results_dir: str, host: str = "127.0.0.1", port: int = 8501, headless: bool = True) -> int:
    """Serve the dashboard with streamlit until interrupted; returns streamlit's exit code.

    The app only reads the store. Raises BenchError (exit 2 in the CLI) when streamlit is not
    installed or the app file is not there (a broken install).
    """
    if importlib.util.find_spec("streamlit") is None:
        raise BenchError("the dashboard needs streamlit, plotly and duckdb: pip install 'bench[dashboard]'")
    app = app_path()
    if not app.is_file():
        raise BenchError(f"dashboard app not found at {app}; reinstall bench: pip install 'bench[dashboard]'")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true" if headless else "false",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--",
        "--results",
        str(Path(results_dir).resolve()),
    ]
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
