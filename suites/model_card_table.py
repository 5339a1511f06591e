"""The published-vs-bench table for a stored suites/model_card.yaml run (Markdown on stdout).

    python suites/model_card_table.py [RESULTS_DIR] [RUN_ID]   # default: results/model_card, newest run

Every bench number is a stored runs row, as bench computed it: the value, its 95% interval (Wilson, from
the 0/1 item scores), the items scored and the task's wall time. Nothing is recomputed here, so the table
is what the store says. The card does not name its metric; `metric` is lm-eval's usual one (acc_norm
where lm-eval defines it, acc for BoolQ) and the other is shown beside it. A card value outside the
interval gets its likely reasons, from what differs between the card's setting and this run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from bench import store
from bench.report import runs_frame

# task -> (card row, shots, card value %, compared metric)
CARD = {
    "arc_easy": ("ARC-e", 0, 57.7, "acc_norm"),
    "piqa": ("PIQA", 0, 67.7, "acc_norm"),
    "boolq": ("BoolQ", 0, 61.4, "acc"),
    "hellaswag_10shot": ("HellaSwag", 10, 40.9, "acc_norm"),
}
HEADER = (
    "| card row | shots | card | bench | 95% interval | other metric | items (split) | wall | gap |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def reasons(row: pd.Series, task: dict[str, Any]) -> str:
    """What differs from the card's setting: Google's bf16 weights, its own (unpublished) prompts and
    metric, the test split where one is public, shots from train."""
    why = []
    quant = row.get("quant")
    if isinstance(quant, str) and quant.upper() not in ("BF16", "F16", "F32"):
        why.append(f"{quant} weights (card: bf16)")
    split = task.get("split") or "default"
    if split != "test":
        why.append(f"{split} split")
    if task.get("num_fewshot") and split != "test":
        why.append(f"shots from {split}, not train")
    why.append("lm-eval's prompt and metric (the card's are unpublished)")
    return "; ".join(why)


def _row(task: str, rows: pd.DataFrame, cfg: dict[str, Any]) -> str:
    row, shots, card, metric = CARD[task]
    if metric not in rows.index:
        return f"| {row} | {shots} | {card} | not in run | | | | | |"
    r = rows.loc[metric]
    if r["status"] != "ok" or pd.isna(r["value"]):
        return f"| {row} | {shots} | {card} | failed: {r['error']} | | | | | |"
    value, lo, hi = 100 * r["value"], 100 * r["ci_low"], 100 * r["ci_high"]
    other = "acc" if metric == "acc_norm" else "acc_norm"
    other_txt = f"{100 * rows.loc[other, 'value']:.1f} ({other})" if other in rows.index else "-"
    t = cfg.get(task, {})
    split = t.get("split") or "default"
    how = f"random {t['sample']}" if t.get("sample") else "all"
    n, n_scored = int(r["n"]), int(r["n_scored"])
    items = f"{n_scored:,}" if n_scored == n else f"{n_scored:,} of {n:,}"
    wall = f"{r['wall_s'] / 60:.1f} min ({r['wall_s'] / max(n, 1):.2f} s/item)"
    gap = "within" if lo <= card <= hi else f"{value - card:+.1f}: {reasons(r, t)}"
    return (
        f"| {row} | {shots} | {card} | {value:.1f} ({metric}) | {lo:.1f}-{hi:.1f} (±{(hi - lo) / 2:.1f}) "
        f"| {other_txt} | {items} ({split}, {how}) | {wall} | {gap} |"
    )


def caption(runs: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """One line: which model, engine settings, machine and the run's whole wall time."""
    first = runs.iloc[0]
    models = manifest.get("suite_config", {}).get("models", [])
    threads = next((m.get("n_threads") for m in models if m.get("name") == first["model"]), None)
    hw = json.loads(first["hardware_info"]) if isinstance(first["hardware_info"], str) else {}
    span = (runs["finished_at"].max() - runs["started_at"].min()).total_seconds()
    parts = [
        f"{first['model']} {first['quant'] or ''}".strip(),
        str(first["backend"]) + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""),
        f"{hw.get('cpu') or '?'}, {hw.get('cores_logical') or '?'} cores",
        f"tasks {span / 60:.0f} min in all",
    ]
    return f"run {manifest['run_id']}: " + "; ".join(parts)


def table(root: Path, run_id: str) -> str:
    runs = runs_frame(root, [run_id])
    if runs.empty:
        raise SystemExit(f"run {run_id} has no runs rows under {root}")
    manifest = store.find_run(root, run_id)
    cfg = {t["name"]: t for t in manifest.get("suite_config", {}).get("tasks", [])}
    lines = [caption(runs, manifest), "", HEADER]
    for task in CARD:
        lines.append(_row(task, runs[runs["task"] == task].set_index("metric"), cfg))
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv else Path("results/model_card")
    run_id = argv[1] if len(argv) > 1 else None
    if run_id is None:
        runs = store.list_runs(root)
        if not runs:
            sys.exit(f"no runs in {root}")
        run_id = runs[0]["run_id"]  # the newest
    print(table(root, store.find_run(root, run_id)["run_id"]))


if __name__ == "__main__":
    main(sys.argv[1:])
