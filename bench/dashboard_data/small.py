"""Is a small model enough? Every model against the best on shared items (paired test, with
Benjamini-Hochberg adjusted p-values over every task x model on the page), and the cascade of a
small model handing its unsure items to a large one. The statistics are bench.analysis's."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analysis import adjust_pvalues, cascade, paired
from bench.dashboard_data.reading import item_credit

_COLS = [
    "model",
    "value",
    "params",
    "usd_per_1k_items",
    "n_shared",
    "diff",
    "p_value",
    "p_adjusted",
    "best",
    "enough",
]


def _against_best(primary: pd.DataFrame, scores: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One task: each model's paired test against the best, raw p-values (enough decided later)."""
    p = primary[primary["value"].notna()].drop_duplicates("model")
    if p.empty:
        return pd.DataFrame(columns=[*_COLS, "hib"])
    hib = bool(p["higher_is_better"].fillna(True).iloc[0])
    best = str(p.sort_values("value", ascending=not hib).iloc[0]["model"])
    sc = scores.assign(score=item_credit(scores)).dropna(subset=["score"])
    by_model = {m: g.drop_duplicates("item_id").set_index("item_id")["score"] for m, g in sc.groupby("model")}
    ref = by_model.get(best, pd.Series(dtype=float))
    rows = []
    for _, r in p.iterrows():
        m = str(r["model"])
        s = by_model.get(m, pd.Series(dtype=float))
        shared = s.index.intersection(ref.index)
        if m == best:
            n, diff, pv = len(shared), 0.0, 1.0
        elif len(shared) == 0:
            n, diff, pv = 0, math.nan, math.nan
        else:
            res = paired(s.loc[shared].to_numpy(float), ref.loc[shared].to_numpy(float), seed=seed)
            n, diff, pv = res.n, res.diff, res.p_value
        rows.append(
            {
                "model": m,
                "value": float(r["value"]),
                "params": r.get("model_params"),
                "usd_per_1k_items": r.get("usd_per_1k_items"),
                "n_shared": n,
                "diff": diff,
                "p_value": pv,
                "p_adjusted": math.nan,
                "best": m == best,
                "enough": False,
                "hib": hib,
            }
        )
    return pd.DataFrame(rows)


def _decide(ge: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Adjust the p-values of every non-best row together (the best is not tested against itself)
    and call a model enough unless its adjusted p < alpha in the worse direction."""
    if ge.empty:
        return ge
    tested = np.where(ge["best"].to_numpy(bool), np.nan, ge["p_value"].to_numpy(float))
    adj = adjust_pvalues(tested)
    ge = ge.assign(p_adjusted=np.where(ge["best"].to_numpy(bool), 1.0, adj))
    worse = np.where(ge["hib"].to_numpy(bool), ge["diff"] < 0, ge["diff"] > 0)
    significant = ge["p_adjusted"].to_numpy(float) < alpha
    ge["enough"] = ge["best"].to_numpy(bool) | ((ge["n_shared"] > 0).to_numpy() & ~(significant & worse))
    ge["enough"] = ge["enough"].astype(bool)
    return ge


def good_enough(
    primary: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """For one task: every model against the best one, paired on the items both scored.

    `primary` has one row per model (model, value, higher_is_better, model_params,
    usd_per_1k_items); `scores` has model, item_id and score. A model is `enough` when it is not
    significantly worse than the best: adjusted p >= alpha (Benjamini-Hochberg over the models
    of this task), or its mean difference is not in the worse direction. Errors (null scores)
    are left out of the pairing.
    """
    return _decide(_against_best(primary, scores, seed), alpha)[_COLS]


def good_enough_all(
    primary: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """`good_enough` for every task of `primary`, with a `task` column and the p-values adjusted
    over all tasks and models at once: the page tests them together, so they are one family."""
    parts = [
        _against_best(g, scores[scores["task"] == task], seed).assign(task=task)
        for task, g in primary.groupby("task", sort=True)
    ]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(columns=["task", *_COLS])
    return _decide(pd.concat(parts, ignore_index=True), alpha)[["task", *_COLS]]


def small_model_table(
    primary: pd.DataFrame, scores: pd.DataFrame, *, alpha: float = 0.05, seed: int = 1234
) -> pd.DataFrame:
    """Per task: the best model, and the smallest and the cheapest model that is not significantly
    worse than it (see `good_enough_all`). `primary`: primary rows of one run; `scores`: its items."""
    out = []
    for task, ge in good_enough_all(primary, scores, alpha=alpha, seed=seed).groupby("task", sort=True):
        ok = ge[ge["enough"]]
        best = ge[ge["best"]].iloc[0]
        by_size = ok.dropna(subset=["params"]).sort_values(["params", "value"], ascending=[True, False])
        by_cost = ok.dropna(subset=["usd_per_1k_items"]).sort_values(
            ["usd_per_1k_items", "value"], ascending=[True, False]
        )
        sm = by_size.iloc[0] if len(by_size) else None
        ch = by_cost.iloc[0] if len(by_cost) else None
        out.append(
            {
                "task": task,
                "best": best["model"],
                "best value": best["value"],
                "smallest enough": None if sm is None else sm["model"],
                "smallest value": math.nan if sm is None else sm["value"],
                "smallest params": math.nan if sm is None else sm["params"],
                "smallest p": math.nan if sm is None else sm["p_value"],
                "smallest p adj": math.nan if sm is None else sm["p_adjusted"],
                "cheapest enough": None if ch is None else ch["model"],
                "cheapest value": math.nan if ch is None else ch["value"],
                "cheapest $/1k": math.nan if ch is None else ch["usd_per_1k_items"],
                "cheapest p": math.nan if ch is None else ch["p_value"],
                "cheapest p adj": math.nan if ch is None else ch["p_adjusted"],
            }
        )
    return pd.DataFrame(out)


def cascade_curve(
    slm_rows: pd.DataFrame,
    llm_rows: pd.DataFrame,
    slm_cost_per_item: float,
    llm_cost_per_item: float,
    thresholds: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Accuracy and cost of "the SLM answers, the LLM takes the items it is unsure of".

    Per item (item_id, score or correct, confidence), on the items both models scored: at
    threshold t the SLM's answer is kept where its confidence >= t (a missing confidence always
    defers), else the LLM's. Cost per item = SLM cost + deferral rate x LLM cost, because the
    SLM runs on every item. t = 0 is the SLM alone (plus nothing), t above every confidence the
    LLM after the SLM.
    """
    a = slm_rows.assign(s=item_credit(slm_rows)).dropna(subset=["s"])
    b = llm_rows.assign(s=item_credit(llm_rows)).dropna(subset=["s"])
    for label, df in (("slm_rows", a), ("llm_rows", b)):
        if df["item_id"].duplicated().any():
            raise ValueError(f"{label} has duplicate item ids")
    m = a[["item_id", "s", "confidence"]].merge(b[["item_id", "s"]], on="item_id", suffixes=("_slm", "_llm"))
    conf = pd.to_numeric(m["confidence"], errors="coerce").to_numpy(float)
    rows = cascade(
        m["s_slm"].to_numpy(float),
        m["s_llm"].to_numpy(float),
        conf,
        slm_cost_per_item,
        llm_cost_per_item,
        thresholds,
    )
    return pd.DataFrame(rows)
