"""Hugging Face hub datasets, through the optional `datasets` package (`pip install 'bench[hf]'`).

Imported lazily: most runs use the offline catalog, and `datasets` pulls in a lot. Records come
back raw, like local files. Any hub or network failure becomes one DataError line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.errors import DataError

if TYPE_CHECKING:
    from bench.specs.base import HubDataset

HINT = "pip install 'bench[hf]'"


def load_hub(ref: HubDataset, split: str | None = None) -> list[dict[str, Any]]:
    split = split or ref.split
    where = f"hub dataset {ref.hub!r}" + (f" ({ref.config})" if ref.config else "") + f" split {split!r}"
    try:
        import datasets
    except ImportError:
        raise DataError(f"{where}: the 'datasets' package is not installed ({HINT})") from None
    try:
        ds = datasets.load_dataset(ref.hub, ref.config, split=split, revision=ref.revision)
        rows = [dict(r) for r in ds]
    except Exception as e:  # the hub raises many types; the user needs one line either way
        msg = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        raise DataError(f"{where}: cannot load: {type(e).__name__}{': ' + msg if msg else ''}") from None
    if not rows:
        raise DataError(f"{where}: no records")
    return rows
