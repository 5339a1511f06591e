"""Pareto fronts: the entries no other entry beats on accuracy and cost at once."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[str, float, float]]) -> set[str]:
    """Names not dominated: no other point has higher-or-equal accuracy at lower-or-equal cost,
    with one of the two strictly better. Points are (name, accuracy, cost), accuracy higher is
    better and cost (or latency, memory, parameters) lower is better."""
    front = set()
    for name, acc, cost in points:
        dominated = any((a >= acc and c <= cost) and (a > acc or c < cost) for n, a, c in points if n != name)
        if not dominated:
            front.add(name)
    return front
