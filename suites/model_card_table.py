"""The published-vs-bench table for a stored suites/model_card.yaml run (Markdown on stdout).

    python suites/model_card_table.py [RESULTS_DIR] [RUN_ID]   # default: results/model_card, newest run

Every bench number is a stored runs row (value and its 95% interval, as bench computed them).
The card does not name its metric; `metric` is lm-eval's usual one (acc_norm where lm-eval defines
it, acc for BoolQ) and the other is shown beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench import store
from bench.report import runs_frame

# task -> (card row, shots, card value %, compared metric)
CARD = {
    "arc_easy": ("ARC-e", 0, 57.7, "acc_norm"),
    "piqa": ("PIQA", 0, 67.7, "acc_norm"),
    "boolq": ("BoolQ", 0, 61.4, "acc"),
    "hellaswag_10shot": ("HellaSwag", 10, 40.9, "acc_norm"),
}


def table(root: Path, run_id: str) -> str:
    runs = runs_frame(root, [run_id])
    cfg = {t["name"]: t for t in store.find_run(root, run_id).get("suite_config", {}).get("tasks", [])}
    lines = [
        "| card row | shots | card | bench (metric) | 95% interval | other metric | items (split) | wall | gap |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, (row, shots, card, metric) in CARD.items():
        rows = runs[runs["task"] == task].set_index("metric")
        if metric not in rows.index:
            lines.append(f"| {row} | {shots} | {card} | not in run | | | | | |")
            continue
        r = rows.loc[metric]
        other = "acc" if metric == "acc_norm" else None
        other_txt = f"{other} {100 * rows.loc[other, 'value']:.1f}" if other in rows.index else "-"
        lo, hi = 100 * r["ci_low"], 100 * r["ci_high"]
        t = cfg.get(task, {})
        split = t.get("split") or "default"
        how = f"sample of {t['sample']}" if t.get("sample") else "all"
        inside = lo <= card <= hi
        gap = "within" if inside else f"{100 * r['value'] - card:+.1f}: outside"
        lines.append(
            f"| {row} | {shots} | {card} | {100 * r['value']:.1f} ({metric}) | {lo:.1f}-{hi:.1f} | {other_txt} "
            f"| {int(r['n'])} ({split}, {how}) | {r['wall_s'] / 60:.1f} min | {gap} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv else Path("results/model_card")
    run_id = argv[1] if len(argv) > 1 else None
    if run_id is None:
        ids = sorted(runs_frame(root)["run_id"].unique())
        if not ids:
            sys.exit(f"no runs in {root}")
        run_id = ids[-1]
    print(f"run {run_id}\n")
    print(table(root, run_id))


if __name__ == "__main__":
    main(sys.argv[1:])
