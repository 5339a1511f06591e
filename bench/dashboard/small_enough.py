"""The "is a small model enough?" page: per task the best model and the smallest and cheapest one not
significantly below it, and the SLM -> LLM cascade curve over confidence thresholds."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from bench import analysis
from bench import dashboard_data as dd
from bench.dashboard import charts
from bench.dashboard.reads import Store
from bench.dashboard.widgets import model_caption, pick_run, pick_suite, reset_on_change


def render(s: Store) -> None:
    st.header("Is a small model enough?")
    suite = pick_suite(s.runs, "se_suite")
    reset_on_change("se", (suite,), ["se_run"])
    in_suite = s.runs[s.runs["suite"] == suite]
    multi = in_suite.groupby("run_id")["model"].nunique()
    run_id = pick_run(
        in_suite[in_suite["run_id"].isin(multi[multi >= 2].index)], "se_run", newest_option=False
    )
    if run_id is None:
        st.info("This suite has no run with two or more models.")
        return
    alpha = st.sidebar.number_input("alpha", 0.001, 0.5, 0.05, 0.01, key="se_alpha")
    reset_on_change("cascade", (suite, run_id), ["cascade_task", "cascade_slm", "cascade_llm"])
    prim = in_suite[(in_suite["run_id"] == run_id) & (in_suite["status"] == "ok")]
    scores = s.samples([run_id], ("item_id", "score", "correct", "error"))
    st.caption(
        "Per task: the best model, and the smallest and the cheapest model whose accuracy is not "
        f"significantly below it (paired test on the items both answered: McNemar's exact test for "
        f"0/1 scores, else a paired t-test; p-values adjusted by Benjamini-Hochberg over every task "
        f"and model on this page; 'not below' = adjusted p ≥ {alpha:g} or a difference ≥ 0)."
    )
    table = dd.small_model_table(prim, scores, alpha=float(alpha))
    every = dd.good_enough_all(prim, scores, alpha=float(alpha))
    st.dataframe(
        table,
        hide_index=True,
        key="small_table",
        column_config={
            "smallest params": st.column_config.NumberColumn(format="compact"),
            "cheapest $/1k": st.column_config.NumberColumn(format="%.4f"),
        },
    )
    with st.expander("Every model against the best, per task"):
        for task, g in every.groupby("task", sort=True):
            st.markdown(f"**{task}**")
            st.dataframe(g.drop(columns="task"), hide_index=True, key=f"ge_{task}")

    st.subheader("Cascade: the SLM answers, the LLM takes what it is unsure of")
    tasks = sorted(prim["task"].unique())
    task = st.selectbox("Task", tasks, key="cascade_task")
    reset_on_change("cascade_task", (suite, run_id, task), ["cascade_slm", "cascade_llm"])
    rows = prim[prim["task"] == task].sort_values(["model_params", "usd_per_1k_items"], na_position="last")
    models = rows["model"].tolist()
    if len(models) < 2:
        st.info(f"Only one model has results on {task}.")
        return
    c1, c2 = st.columns(2)
    slm = c1.selectbox("Small model (answers first)", models, index=0, key="cascade_slm")
    others = rows[rows["model"] != slm]
    best_other = str(others.loc[others["value"].idxmax(), "model"])
    llm = c2.selectbox(
        "Large model (takes deferred items)", models, index=models.index(best_other), key="cascade_llm"
    )
    st.markdown(model_caption(rows, [slm, llm]))
    per_item = rows.set_index("model").apply(lambda r: analysis.per_item(r["cost_usd"], r["n"]), axis=1)
    items = s.samples([run_id], ("item_id", "score", "correct", "confidence", "error"), [slm, llm], [task])
    slm_rows, llm_rows = items[items["model"] == slm], items[items["model"] == llm]
    if slm_rows["confidence"].isna().all():
        st.info(f"{slm} has no stored confidence on {task} (generated answers): every item is deferred.")
    thresholds = np.round(np.linspace(0.0, 1.0, 21), 2)
    curve = dd.cascade_curve(slm_rows, llm_rows, float(per_item[slm]), float(per_item[llm]), thresholds)
    if curve.empty or curve["n"].iloc[0] == 0:
        st.warning("The two models share no scored item on this task.")
        return
    alone = dd.cascade_curve(slm_rows, llm_rows, float(per_item[slm]), 0.0, [-1.0])  # SLM on every item
    llm_alone_acc = dd.cascade_curve(slm_rows, llm_rows, 0.0, float(per_item[llm]), [math.inf])[
        "accuracy"
    ].iloc[0]
    fig = charts.cascade_figure(
        curve,
        (f"{slm} alone", float(alone["usd_per_1k_items"].iloc[0]), float(alone["accuracy"].iloc[0])),
        (f"{llm} alone", float(per_item[llm]) * 1000, float(llm_alone_acc)),
    )
    st.plotly_chart(fig, key="cascade_chart")
    st.caption(
        "At threshold t the small model's answer is kept where its confidence (probability of its "
        "chosen answer) is ≥ t, otherwise the large model's is used. Cost = small model on every "
        "item + large model on the deferred ones, each at its run's cost per item (cost_usd / n)."
    )
    st.dataframe(curve, hide_index=True, key="cascade_table")
