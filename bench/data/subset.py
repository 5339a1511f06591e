"""Seeded random subsets of a split, for when the whole split is too long to run.

A subset drawn uniformly without replacement is an unbiased estimate of the split's score: every
item has the same chance n/N of being in it, so the expected subset mean is the split mean, and its
interval narrows as sqrt(n) (with a finite-population correction sqrt((N-n)/(N-1)) that bench's
intervals leave out, so they are slightly conservative). Taking the first n items instead is not:
HellaSwag's validation split, for one, lists its ActivityNet contexts before its WikiHow ones.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def sample_in_order(items: Sequence[T], n: int, seed: int) -> list[T]:
    """n of `items` drawn uniformly without replacement with `random.Random(seed)`, in their
    original order (so a limit takes the first of them, and runs are reproducible); all when
    n >= len(items)."""
    if n >= len(items):
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]
