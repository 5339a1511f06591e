"""One registry helper for backends, tasks, datasets and metrics.

Entries are registered by decorator; lookups of unknown names fail with a "did you mean" hint.
Factories stay lazy: heavy engines are imported inside them, never at registration.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, get_args

from bench.errors import BenchError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from bench.backends.base import Backend
    from bench.metrics.metric import Metric
    from bench.tasks.base import Task

T = TypeVar("T")


def did_you_mean(name: str, options: list[str] | tuple[str, ...]) -> str:
    """A short hint naming the closest option, or the allowed options when none is close."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    shown = ", ".join(sorted(options)[:12])
    more = "" if len(options) <= 12 else f", ... ({len(options)} in all)"
    return f"allowed: {shown}{more}"


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise BenchError(f"unknown {self.kind} {name!r}; {did_you_mean(name, self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def values(self) -> list[T]:
        """The entries in registration order (built-ins first, then plugins)."""
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


# ---------------------------------------------------------------- plugins

S = TypeVar("S", bound="BaseModel")


def one_cpu(spec: Any) -> dict[str, float]:
    """The Ray request of a backend that needs no GPU and one core per shard."""
    return {"num_cpus": 1.0, "num_gpus": 0.0}


@dataclass(frozen=True)
class BackendPlugin(Generic[S]):
    """Everything bench knows about a backend, declared once.

    `spec` is a pydantic class (a bench.specs.ModelSpecBase) with `backend: Literal[name]`; suites,
    `bench ls backends`, Ray resources and install hints are all read from here. `factory` imports the
    engine inside it and `probe` must stay cheap (no engine import): both run only when needed.
    """

    name: str
    spec: type[S]
    factory: Callable[[S, int], Backend]  # (spec, seed) -> a loaded backend
    probe: Callable[[], tuple[bool, str]]  # (usable here, what it runs / why not and what to install)
    install_hint: str = ""  # e.g. "pip install 'bench[cpu]'", shown when the engine is missing
    resources: Callable[[S], dict[str, float]] = one_cpu  # what one shard asks Ray for
    test_only: bool = False  # test equipment (the fake): left out of `bench ls backends` unless --all


BACKENDS: Registry[BackendPlugin[Any]] = Registry("backend")


def register_backend(plugin: BackendPlugin[Any]) -> BackendPlugin[Any]:
    """Add a backend; its name must equal the Literal of its spec's `backend` field."""
    _check_tag(plugin.spec, "backend", plugin.name)
    BACKENDS.add(plugin.name, plugin)
    return plugin


def _check_tag(spec: type[BaseModel], field: str, name: str) -> None:
    f = spec.model_fields.get(field)
    if f is None or name not in get_args(f.annotation):
        raise ValueError(f"{spec.__name__}.{field} must be Literal[{name!r}] to register it as {name!r}")


S_contra = TypeVar("S_contra", contravariant=True)


class TaskFactory(Protocol[S_contra]):
    """Builds a task from its spec and the effective settings (a runtime class itself fits)."""

    def __call__(self, spec: S_contra, *, limit: int | None, num_fewshot: int, seed: int) -> Task: ...


@dataclass(frozen=True)
class TaskPlugin(Generic[S]):
    """Everything bench knows about a task kind, declared once.

    `spec` is a pydantic class (a bench.specs.TaskSpecBase) with `kind: Literal[name]`. `metrics` are
    the kind's `bench.metrics.Metric`s (name, direction, corpus aggregation, primary flag), known
    before the task is built (failed models still get a row); a function of the spec when they depend
    on it. A kind with one mean, higher-is-better metric may name it as `primary_metric` instead.
    `dataset_kinds` are the catalog dataset kinds it can run (empty: only its own data).
    """

    name: str
    spec: type[S]
    factory: TaskFactory[S]
    metrics: tuple[Metric, ...] | Callable[[S], tuple[Metric, ...]] = ()
    dataset_kinds: frozenset[str] = frozenset()
    primary_metric: str | None = None

    def __post_init__(self) -> None:
        from bench.metrics.metric import Metric, primary_of

        if self.primary_metric is not None:
            if self.metrics:
                raise ValueError(f"task kind {self.name!r}: give metrics or primary_metric, not both")
            object.__setattr__(self, "metrics", (Metric(self.primary_metric, primary=True),))
        if not callable(self.metrics):
            primary_of(self.metrics)  # at least one, at most one flagged primary

    def metrics_for(self, spec: S) -> tuple[Metric, ...]:
        return self.metrics(spec) if callable(self.metrics) else self.metrics

    def primary(self, spec: S) -> str:
        """The primary metric's name: derived from the kind's metrics, here only."""
        from bench.metrics.metric import primary_of

        return primary_of(self.metrics_for(spec)).name


TASKS: Registry[TaskPlugin[Any]] = Registry("task kind")


def register_task(plugin: TaskPlugin[Any]) -> TaskPlugin[Any]:
    """Add a task kind; its name must equal the Literal of its spec's `kind` field."""
    _check_tag(plugin.spec, "kind", plugin.name)
    TASKS.add(plugin.name, plugin)
    return plugin


# ---------------------------------------------------------------- loading plugins

ENTRY_POINT_GROUP = "bench.plugins"
PLUGINS_ENV = "BENCH_PLUGINS"
_loaded: list[str] | None = None


def load_plugins() -> list[str]:
    """Import every plugin once: the entry points of group `bench.plugins` (a module, or a function to
    call), then the modules named in $BENCH_PLUGINS (comma-separated, for plugins not packaged yet).
    A plugin registers its backends and task kinds when imported. Returns what was loaded."""
    global _loaded
    if _loaded is not None:
        return _loaded
    import functools
    import importlib
    import os
    from importlib.metadata import entry_points

    _loaded = []
    loaders: list[tuple[str, Callable[[], object]]] = [
        (f"entry point {ep.name!r} ({ep.value})", ep.load) for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]
    for name in (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")):
        if name:
            loaders.append(
                (f"{PLUGINS_ENV} module {name!r}", functools.partial(importlib.import_module, name))
            )
    for label, load in loaders:
        try:
            obj = load()
            if callable(obj):
                obj()
        except Exception as e:
            raise BenchError(f"plugin {label} failed to load: {type(e).__name__}: {e}") from None
        _loaded.append(label)
    return _loaded
