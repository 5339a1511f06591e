"""The Load page's figures (plotly only, no streamlit): latency percentiles, goodput and accuracy
against achieved load, one colour per model, from one task's stored level rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from bench.dashboard_data.load import LOAD_AXES, Crossover, SloExit

PERCENTILES = (("p50", "solid"), ("p90", "dash"), ("p99", "dot"))
# (stored column prefix, panel title, unit factor, unit, SLO target that applies to it)
PANELS = (
    ("ttft", "time to first token", 1000.0, "ms", "ttft_s"),
    ("itl", "inter-token latency (every gap)", 1000.0, "ms", None),
    ("tpot", "time per output token (each request's mean gap)", 1000.0, "ms", "itl_s"),
    ("e2e", "end-to-end latency", 1.0, "s", "e2e_s"),
)


def colours(models: Sequence[str]) -> dict[str, str]:
    palette = qualitative.Plotly
    return {m: palette[k % len(palette)] for k, m in enumerate(models)}


def _by_model(levels: pd.DataFrame, x: str) -> list[tuple[str, pd.DataFrame]]:
    return [(str(m), g.sort_values(x, kind="stable")) for m, g in levels.groupby("model", sort=False)]


def latency_figure(levels: pd.DataFrame, x: str, slo: dict[str, float]) -> go.Figure:
    """Four panels (TTFT, ITL, TPOT, e2e) of p50 / p90 / p99 per model, the SLO as a red line
    on the panels whose quantity it limits (the inter-token target applies to TPOT)."""
    fig = make_subplots(
        rows=2, cols=2, subplot_titles=[p[1] for p in PANELS], horizontal_spacing=0.08, vertical_spacing=0.16
    )
    colour = colours(list(dict.fromkeys(levels["model"])))
    for k, (col, _, factor, unit, target) in enumerate(PANELS):
        row, c = divmod(k, 2)
        for model, g in _by_model(levels, x):
            for q, dash in PERCENTILES:
                fig.add_trace(
                    go.Scatter(
                        x=g[x],
                        y=g[f"{col}_{q}"] * factor,
                        mode="lines+markers",
                        name=f"{model} {q}",
                        legendgroup=f"{model} {q}",
                        showlegend=k == 0,
                        line={"color": colour[model], "dash": dash},
                        marker={"size": 6},
                        customdata=g[["level"]].to_numpy(),
                        hovertemplate=f"{model} · %{{customdata[0]}}<br>{col} {q} %{{y:.3g}} {unit}<extra></extra>",
                    ),
                    row=row + 1,
                    col=c + 1,
                )
        if target and target in slo:
            fig.add_hline(
                y=slo[target] * factor,
                line={"color": "crimson", "dash": "dash", "width": 2},
                annotation_text=f"SLO {slo[target] * factor:g} {unit}",
                annotation_position="top left",
                row=row + 1,
                col=c + 1,
            )
        fig.update_yaxes(title_text=unit, rangemode="tozero", row=row + 1, col=c + 1)
        fig.update_xaxes(title_text=LOAD_AXES[x] if row == 1 else None, row=row + 1, col=c + 1)
    fig.update_layout(
        height=700,
        margin={"l": 10, "r": 10, "t": 110, "b": 10},
        legend={"orientation": "h", "y": 1.1, "yanchor": "bottom", "x": 0},
    )
    return fig


def goodput_figure(
    levels: pd.DataFrame, x: str, exits: Sequence[SloExit], crossings: Sequence[Crossover]
) -> go.Figure:
    """Goodput (requests/s within the SLO) per model, beside the rate of all answered requests
    (dotted): a red cross where a model leaves its SLO, a diamond where the ranking flips."""
    fig = go.Figure()
    colour = colours(list(dict.fromkeys(levels["model"])))
    for model, g in _by_model(levels, x):
        for col, name, dash in (
            ("goodput_per_s", "goodput", "solid"),
            ("requests_per_s", "all answered", "dot"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=g[x],
                    y=g[col],
                    mode="lines+markers",
                    name=f"{model} {name}",
                    line={"color": colour[model], "dash": dash, "width": 3 if dash == "solid" else 1.5},
                    customdata=g[["level", "slo_share"]].to_numpy(),
                    hovertemplate=f"{model} · %{{customdata[0]}}<br>{name} %{{y:.3g}} req/s"
                    "<br>within SLO %{customdata[1]:.0%}<extra></extra>",
                )
            )
    rows = {(r["model"], r["level"]): r for r in cast(list[dict[str, Any]], levels.to_dict("records"))}
    marks = (
        (
            [
                (e.model, str(e.exit_level), f"{e.model} leaves SLO at {e.exit_level}")
                for e in exits
                if e.exit_level
            ],
            ("x", 16, "crimson", "top left", "leaves its SLO"),
        ),
        (
            [(c.leader_after, c.at, f"crossover at {c.at}: {c.leader_after} leads") for c in crossings],
            ("diamond", 15, "black", "bottom left", "ranking by goodput flips"),
        ),
    )
    for points, (symbol, size, colour_, where, name) in marks:
        if points:
            pts = [rows[(model, level)] for model, level, _ in points]
            fig.add_trace(
                go.Scatter(
                    x=[p[x] for p in pts],
                    y=[p["goodput_per_s"] for p in pts],
                    mode="markers+text",
                    text=[t for _, _, t in points],
                    textposition=where,
                    marker={"symbol": symbol, "size": size, "color": colour_, "line": {"width": 2}},
                    name=name,
                )
            )
    fig.update_layout(
        xaxis_title=LOAD_AXES[x],
        yaxis_title="requests/s",
        yaxis_rangemode="tozero",
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def accuracy_figure(levels: pd.DataFrame, x: str, metric: str) -> go.Figure:
    """Accuracy of the answers served at each level with its 95% interval; a red ring where the
    stored paired test says it changed against the sweep's first level."""
    fig = go.Figure()
    colour = colours(list(dict.fromkeys(levels["model"])))
    for model, g in _by_model(levels, x):
        fig.add_trace(
            go.Scatter(
                x=g[x],
                y=g["accuracy"],
                mode="lines+markers",
                name=model,
                line={"color": colour[model]},
                error_y={
                    "type": "data",
                    "array": (g["accuracy_high"] - g["accuracy"]).clip(lower=0),
                    "arrayminus": (g["accuracy"] - g["accuracy_low"]).clip(lower=0),
                },
                customdata=g[["level", "accuracy_low", "accuracy_high", "n_scored"]].to_numpy(),
                hovertemplate=f"{model} · %{{customdata[0]}}<br>{metric} %{{y:.3f}} "
                "[%{customdata[1]:.3f}, %{customdata[2]:.3f}], n=%{customdata[3]}<extra></extra>",
            )
        )
    changed = levels[levels["accuracy_changed"].fillna(False).astype(bool)]
    if not changed.empty:
        fig.add_trace(
            go.Scatter(
                x=changed[x],
                y=changed["accuracy"],
                mode="markers",
                marker={"symbol": "circle-open", "size": 20, "color": "crimson", "line": {"width": 2}},
                name="changed with load (paired test)",
            )
        )
    fig.update_layout(
        xaxis_title=LOAD_AXES[x],
        yaxis_title=metric,
        yaxis_range=[-0.02, 1.02],
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig
