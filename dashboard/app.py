"""bench dashboard: leaderboard, Pareto fronts, "is a small model enough?", drill-down and history.

    streamlit run dashboard/app.py -- --results results/      (or: bench dashboard results/)

A thin entry for a checkout: the app itself is the package `bench.dashboard` (one module per
page), which `bench dashboard` serves from the installed package. This file puts the checkout on
sys.path, so `streamlit run` works from anywhere without installing bench, and runs the same app.
It reads the results store only (never writes it, never runs a model).
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # `streamlit run` from anywhere: import bench from this checkout
    sys.path.insert(0, str(_REPO))

from bench.dashboard.main import main  # noqa: E402

main()
