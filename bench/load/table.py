"""The sweep table printed in the terminal: one row per level, grouped by model and task."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd


def _f(v: Any, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt)


def _ms(v: Any) -> str:
    return _f(v * 1000 if v is not None and v == v else None, ".0f")


COLUMNS = (
    "level", "req/s", "conc", "TTFT p50/p99 ms", "ITL p50/p99 ms", "TPOT p50 ms", "e2e p50/p99 s",
    "out tok/s", "err %", "goodput/s", "SLO", "accuracy [95% CI]", "$/1k req", "$/correct",
)  # fmt: skip


def level_cells(r: Mapping[Any, Any]) -> list[str]:
    acc = r.get("accuracy")
    accuracy = "-"
    if acc is not None and acc == acc:
        accuracy = f"{acc:.3f} [{r['accuracy_low']:.2f}, {r['accuracy_high']:.2f}] n={r['n_scored']}"
        if r.get("accuracy_changed"):
            accuracy += f" CHANGED vs {r['vs_level']} (p_adj={r['p_adjusted']:.3g})"
    slo = (
        "-" if r.get("slo_met") is None else ("met" if r["slo_met"] else "MISSED") + f" {r['slo_share']:.0%}"
    )
    return [
        str(r["level"]),
        _f(r["requests_per_s"], ".2f"),
        _f(r["achieved_concurrency"], ".2f"),
        f"{_ms(r['ttft_p50'])}/{_ms(r['ttft_p99'])}",
        f"{_ms(r['itl_p50'])}/{_ms(r['itl_p99'])}",
        _ms(r["tpot_p50"]),
        f"{_f(r['e2e_p50'], '.2f')}/{_f(r['e2e_p99'], '.2f')}",
        _f(r["output_tokens_per_s"], ".1f"),
        _f(100 * r["error_rate"], ".0f"),
        _f(r["goodput_per_s"], ".2f"),
        slo,
        accuracy,
        _f(r["usd_per_1k_requests"], ".4f"),
        _f(r["usd_per_correct"], ".5f"),
    ]


def print_sweep(console: Any, levels: pd.DataFrame) -> None:
    from rich.table import Table

    if levels.empty:
        console.print("no finished load level")
        return
    for (model, task), g in levels.groupby(["model", "task"], sort=False):
        first = g.iloc[0]
        slo = first["slo"] or "no SLO named"
        t = Table(title=f"{model} · {task} ({first['metric']}) · {slo} · {first['backend']}")
        for c in COLUMNS:
            t.add_column(c, justify="left" if c in ("level", "SLO", "accuracy [95% CI]") else "right")
        for r in g.to_dict("records"):
            t.add_row(*level_cells(r))
        console.print(t)
        notes = {n for n in g["note"] if isinstance(n, str) and n}
        for n in sorted(notes):
            console.print(f"[yellow]note:[/] {n}")
