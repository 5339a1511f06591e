"""The Streamlit dashboard, shipped inside the package so `bench dashboard` works from a wheel.

`app.py` is the script streamlit runs (`bench dashboard` points streamlit at it; the checkout's
dashboard/app.py is a thin entry that runs the same app). `main` sets up the page and the
navigation (`st.navigation` over one `st.Page` per page module); `reads` is the cached access to
the results store; `widgets` the pickers every page shares; `charts` the plotly figures (no
streamlit; `load_charts` those of the load page). The pages are layout only: `leaderboard`,
`small_enough`, `drilldown`, `history`, `load` (bench load sweeps).
Every number they show comes from `bench.dashboard_data` and `bench.analysis`, which are
unit-tested without streamlit.

Nothing here imports streamlit at package import time, so `import bench.dashboard` is cheap.
"""

from __future__ import annotations

from pathlib import Path

APP_FILE = Path(__file__).resolve().parent / "app.py"

__all__ = ["APP_FILE"]
