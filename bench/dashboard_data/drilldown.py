"""Per-item rows for the drill-down: two models' agreement filters and the side-by-side table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from bench.dashboard_data.reading import item_credit


def _right(rows: pd.DataFrame) -> pd.Series:
    """Whether each row got full credit; None for failed items (they are neither right nor wrong)."""
    s = item_credit(rows)
    out = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    ok = s.notna()
    if "error" in rows.columns:
        ok &= rows["error"].isna()
    out[ok] = s[ok] >= 1.0
    return out


PairMode = Literal["all", "a_wrong_b_right", "a_right_b_wrong", "disagree"]


def pair_filter(samples: pd.DataFrame, model_a: str, model_b: str, mode: PairMode) -> list[str]:
    """Item ids of one task where A and B differ as asked; items either model failed are left out
    of every mode but 'all'."""
    a = samples[samples["model"] == model_a].drop_duplicates("item_id").set_index("item_id")
    b = samples[samples["model"] == model_b].drop_duplicates("item_id").set_index("item_id")
    ids = a.index.intersection(b.index)
    if mode == "all":
        return [str(i) for i in ids]
    ra, rb = _right(a).loc[ids], _right(b).loc[ids]
    known = ra.notna() & rb.notna()
    if mode == "a_wrong_b_right":
        keep = known & ~ra.fillna(True) & rb.fillna(False)
    elif mode == "a_right_b_wrong":
        keep = known & ra.fillna(False) & ~rb.fillna(True)
    elif mode == "disagree":
        keep = known & (ra.fillna(False) != rb.fillna(False))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return [str(i) for i in ids[keep.to_numpy(bool)]]


def drilldown_table(samples: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """One row per item: prompt and reference, then per model its output, extracted answer,
    correctness, latency and tokens. `output` is the generated text where there is one, else the
    chosen answer (log-likelihood multiple choice generates nothing)."""
    base_cols = ["item_id", "prompt", "reference"]
    base = samples.sort_values("item_id").drop_duplicates("item_id")[
        [c for c in base_cols if c in samples.columns]
    ]
    out = base.set_index("item_id")
    for m in models:
        g = samples[samples["model"] == m].drop_duplicates("item_id").set_index("item_id")
        raw = g["raw_output"] if "raw_output" in g else pd.Series(None, index=g.index, dtype=object)
        part = pd.DataFrame(
            {
                f"{m} output": raw.where(raw.notna(), g["prediction"]),
                f"{m} extracted": g.get("extracted"),
                f"{m} correct": _right(g),
                f"{m} latency_s": g.get("latency_s"),
                f"{m} in_tok": g.get("input_tokens"),
                f"{m} out_tok": g.get("output_tokens"),
                f"{m} error": g.get("error"),
            },
            index=g.index,
        )
        out = out.join(part, how="left")
    return out.reset_index()
