"""How a number is written for people, the same in the terminal, the reports and the dashboard."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_params"]


def format_params(n: Any, missing: str = "-") -> str:
    """A parameter count as 135M or 1.7B; `missing` when unknown (None or NaN)."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return missing
    n = float(n)
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"
