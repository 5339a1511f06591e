"""The script `streamlit run` is given: `bench dashboard` serves this file (it ships in the
wheel), and the checkout's dashboard/app.py runs the same `main`. Streamlit re-executes this file
on every rerun; the pages live in importable modules of `bench.dashboard`."""

from __future__ import annotations

from bench.dashboard.main import main

main()
