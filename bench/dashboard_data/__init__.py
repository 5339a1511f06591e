"""The dashboard's data layer: reads the results store with pushdown and computes every table and
curve the pages show.

No streamlit here, so each number on a page can be checked against the store in a unit test. Reads
are narrow on purpose: the leaderboard needs only the primary rows of the runs tables (a few
columns), and per-item rows are read only for the runs, models and tasks a page asks about, by
file name first (the store names files after model and task) and then with a pyarrow filter.

Modules: `reading` (the store), `leaderboard` (filters, ranks, Pareto), `small` (is a small model
enough? and the cascade), `drilldown`, `history`, `launch` (`bench dashboard`).
"""

from __future__ import annotations

from bench.dashboard_data.drilldown import PairMode, drilldown_table, pair_filter
from bench.dashboard_data.history import history_changes, history_table
from bench.dashboard_data.launch import app_path, launch
from bench.dashboard_data.leaderboard import (
    DEFAULT_SIZE_THRESHOLD,
    PARETO_AXES,
    Z95,
    Filters,
    default_suite,
    leaderboard_table,
    pareto_points,
    run_label,
    select_results,
    size_class,
    tie_ranks,
)
from bench.dashboard_data.reading import (
    LEADERBOARD_RUN_COLUMNS,
    RunDir,
    index_dir,
    item_credit,
    load_primary_runs,
    read_manifests,
    read_samples,
    scan_store,
    signature_key,
)
from bench.dashboard_data.small import cascade_curve, good_enough, good_enough_all, small_model_table

__all__ = [
    "DEFAULT_SIZE_THRESHOLD",
    "LEADERBOARD_RUN_COLUMNS",
    "PARETO_AXES",
    "Z95",
    "Filters",
    "PairMode",
    "RunDir",
    "app_path",
    "cascade_curve",
    "default_suite",
    "drilldown_table",
    "good_enough",
    "good_enough_all",
    "history_changes",
    "history_table",
    "index_dir",
    "item_credit",
    "launch",
    "leaderboard_table",
    "load_primary_runs",
    "pair_filter",
    "pareto_points",
    "read_manifests",
    "read_samples",
    "run_label",
    "scan_store",
    "select_results",
    "signature_key",
    "size_class",
    "small_model_table",
    "tie_ranks",
]
