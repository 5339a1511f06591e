"""bench's dated price table of hosted models (bench/catalog/prices.yaml): $ per million input and
output tokens, copied from the providers' public pages on the table's date.

A suite's model says `price: gpt-4o-mini` (or `price: {table: gpt-4o-mini, output_per_mtok: 0.5}`,
where a number given wins) instead of typing prices; bench.specs.base.Price fills the numbers and
the date in when the suite is read, so every cost code path (runs rows, nightly, load sweeps) sees
plain numbers, and the run's stored suite keeps the date the prices were taken. Every view that
shows a cost from the table shows that date (`price_notes`).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from bench.registry import did_you_mean

__all__ = ["PriceEntry", "lookup", "price_notes", "price_table", "table_date"]


@dataclass(frozen=True)
class PriceEntry:
    name: str
    provider: str
    input_per_mtok: float
    output_per_mtok: float
    as_of: str  # the date the price was taken (YYYY-MM-DD)


@functools.cache
def _load() -> tuple[str, dict[str, PriceEntry]]:
    text = resources.files("bench.catalog").joinpath("prices.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    as_of = str(data["as_of"])
    table = {
        str(name): PriceEntry(
            name=str(name),
            provider=str(e["provider"]),
            input_per_mtok=float(e["input"]),
            output_per_mtok=float(e["output"]),
            as_of=str(e.get("as_of", as_of)),
        )
        for name, e in data["models"].items()
    }
    return as_of, table


def price_table() -> dict[str, PriceEntry]:
    return dict(_load()[1])


def table_date() -> str:
    return _load()[0]


def lookup(name: str) -> PriceEntry:
    """The table's entry; an unknown name raises ValueError naming the close ones (one line)."""
    table = _load()[1]
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else did_you_mean(name, list(table))
    raise ValueError(f"{name!r} is not in bench's price table (as of {table_date()}); {hint}")


def price_notes(suite_config: Mapping[str, Any]) -> list[str]:
    """One line per model of a stored suite whose cost uses prices from the table, with their date."""
    out = []
    for m in suite_config.get("models", []):
        price = m.get("price") if isinstance(m, Mapping) else None
        if isinstance(price, Mapping) and price.get("table") and price.get("as_of"):
            out.append(
                f"{m.get('name')}: token prices of {price['table']!r} from bench's price table as of "
                f"{price['as_of']} (${price.get('input_per_mtok', 0):g} in / ${price.get('output_per_mtok', 0):g} "
                "out per 1M tokens; check the provider's page)"
            )
    return out
