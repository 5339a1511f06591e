"""Check a suite's local dataset files before any model loads.

A bad record found inside a run is that task's error (exit 1, a hole in the results); found here,
by `bench validate` and at the start of `bench run`, it is one line naming the file and the
record, and exit 2. Local files are cheap to read twice; catalog and hub datasets are left to the
run (the catalog converter checks its own records, and the hub may need the network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.config import LocalDataset


def check_local_datasets(suite: Any, *, missing_ok: bool = False) -> list[str]:
    """Load and map every task's local dataset as the run will. `missing_ok` (validate: the data
    may live only on the machine that runs) skips absent files; returns the paths skipped."""
    from bench.tasks import create_task

    skipped = []
    for tspec in suite.tasks:
        ref = getattr(tspec, "dataset", None)
        if not isinstance(ref, LocalDataset):
            continue
        if missing_ok and not Path(ref.path).expanduser().is_file():
            skipped.append(ref.path)
            continue
        eff = {**suite.effective_task(tspec), "limit": None}  # a bad record past --limit still counts
        create_task(tspec, eff).items()
    return skipped
