"""The dashboard's figures: plotly only (no streamlit), from the tables bench.dashboard_data builds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bench import dashboard_data as dd
from bench.fmt import format_params


def fmt_params(p: Any) -> str:
    """Parameters as 135M or 1.7B; ? when unknown."""
    return format_params(p, missing="?")


def pareto_figure(pts: pd.DataFrame, x: str, y: str, y_title: str) -> go.Figure:
    """Entries with 95% CI error bars, the Pareto front as a staircase line, details on hover."""
    fig = go.Figure()
    front = pts[pts["on_front"]]
    fig.add_trace(
        go.Scatter(
            x=front[x],
            y=front[y],
            mode="lines",
            line={"shape": "hv", "dash": "dash", "color": "#888"},
            name="Pareto front",
            hoverinfo="skip",
        )
    )
    custom = np.column_stack(
        [
            pts["params"].map(fmt_params),
            pts["quant"].fillna(""),
            pts["backend"].fillna(""),
            pts["hardware"].fillna(""),
            pts["latency_p50"],
            pts["usd_per_1k_items"],
            pts[f"{y} lo"],
            pts[f"{y} hi"],
        ]
    )
    for on, name, symbol in ((True, "on the front", "circle"), (False, "dominated", "circle-open")):
        sel = pts["on_front"] == on
        fig.add_trace(
            go.Scatter(
                x=pts.loc[sel, x],
                y=pts.loc[sel, y],
                mode="markers+text",
                text=pts.loc[sel, "label"],
                textposition="top center",
                marker={"size": 11, "symbol": symbol},
                error_y={
                    "type": "data",
                    "array": (pts.loc[sel, f"{y} hi"] - pts.loc[sel, y]).clip(lower=0),
                    "arrayminus": (pts.loc[sel, y] - pts.loc[sel, f"{y} lo"]).clip(lower=0),
                },
                customdata=custom[sel.to_numpy()],
                name=name,
                hovertemplate=(
                    "<b>%{text}</b><br>accuracy %{y:.3f} [%{customdata[6]:.3f}, %{customdata[7]:.3f}]"
                    "<br>params %{customdata[0]} %{customdata[1]}<br>backend %{customdata[2]} on "
                    "%{customdata[3]}<br>latency p50 %{customdata[4]:.3f} s<br>$ per 1k items "
                    "%{customdata[5]:.4f}<extra></extra>"
                ),
            )
        )
    positive = bool((pts[x] > 0).all())
    fig.update_layout(
        xaxis_title=dd.PARETO_AXES[x] + (" (log)" if positive and x != "latency_p50" else ""),
        yaxis_title=y_title,
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": 1.08},
    )
    if positive and x != "latency_p50":
        fig.update_xaxes(type="log")
    return fig


def cascade_figure(
    curve: pd.DataFrame, slm_alone: tuple[str, float, float], llm_alone: tuple[str, float, float]
) -> go.Figure:
    """The cascade's accuracy against $ per 1k items over thresholds, and each model alone as a
    (label, $ per 1k items, accuracy) diamond."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=curve["usd_per_1k_items"],
            y=curve["accuracy"],
            mode="lines+markers",
            name="cascade",
            customdata=curve[["threshold", "deferral_rate"]].to_numpy(),
            hovertemplate="threshold %{customdata[0]:.2f}<br>deferred %{customdata[1]:.0%}"
            "<br>accuracy %{y:.3f}<br>$ per 1k %{x:.4f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[slm_alone[1], llm_alone[1]],
            y=[slm_alone[2], llm_alone[2]],
            mode="markers+text",
            text=[slm_alone[0], llm_alone[0]],
            textposition=["bottom right", "top left"],
            marker={"size": 13, "symbol": "diamond"},
            name="each model alone",
        )
    )
    fig.update_layout(
        xaxis_title="$ per 1k items",
        yaxis_title=f"accuracy on {int(curve['n'].iloc[0])} shared items",
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return fig


def history_figure(hc: pd.DataFrame, alpha: float) -> go.Figure:
    """Accuracy with its CI per run (significant changes marked) over latency p50 and p95."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    fig.add_trace(
        go.Scatter(
            x=hc["created_at"],
            y=hc["value"],
            mode="lines+markers",
            name="accuracy",
            error_y={
                "type": "data",
                "array": (hc["ci_high"] - hc["value"]).clip(lower=0),
                "arrayminus": (hc["value"] - hc["ci_low"]).clip(lower=0),
            },
            customdata=hc[["run_id", "git_sha", "bench_version", "hardware"]].to_numpy(),
            hovertemplate="%{y:.3f}<br>run %{customdata[0]}<br>git %{customdata[1]}<br>bench "
            "%{customdata[2]} on %{customdata[3]}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    ch = hc[hc["changed"]]
    fig.add_trace(
        go.Scatter(
            x=ch["created_at"],
            y=ch["value"],
            mode="markers",
            name=f"significant change vs previous run (adjusted p < {alpha:g})",
            marker={
                "size": 16,
                "symbol": np.where(ch["diff"] > 0, "triangle-up", "triangle-down"),
                "color": "red",
            },
            customdata=ch[["p_value", "diff"]].to_numpy(),
            hovertemplate="change %{customdata[1]:+.3f}, p = %{customdata[0]:.2g}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for col, dash in (("latency_p50", None), ("latency_p95", "dot")):
        fig.add_trace(
            go.Scatter(
                x=hc["created_at"],
                y=hc[col],
                mode="lines+markers",
                name=col.replace("_", " "),
                line={"dash": dash, "color": "#7f7f7f"},
                marker={"size": 4},
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_yaxes(title_text="latency s", row=2, col=1)
    times = pd.to_datetime(hc["created_at"], utc=True)
    if len(hc) and times.max() - times.min() < pd.Timedelta(hours=1):
        # one run (or a burst): plotly would zoom to milliseconds; show the day around it instead
        mid = times.min() + (times.max() - times.min()) / 2
        fig.update_xaxes(range=[mid - pd.Timedelta(hours=12), mid + pd.Timedelta(hours=12)])
    fig.update_layout(
        height=560, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": 1.06}
    )
    return fig
