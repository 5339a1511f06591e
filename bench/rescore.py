"""Rescore a stored run: every metric recomputed from the stored raw outputs and log-likelihoods with
the current scoring code (a fixed answer extraction, a new normalization) and, with `--set`, changed
scoring settings of the suite, without loading or calling any model. The result is a new run (its own
id, samples, runs and summary files) whose run.json says which run it was derived from and what moved.

How: each task is rebuilt from the (possibly changed) suite and evaluated against a `ReplayBackend`
that answers every request from the stored row of its item. The task's own `evaluate` therefore
scores exactly as it does in a run, built-in and plugin kinds alike. A request the stored rows cannot
answer (a changed prompt or token limit, an item never stored, something only a model can give, such
as lm-eval's greedy flags) makes that task `skipped` with a one-line reason: it is never copied.
Items stored with an error stay errors; efficiency fields (latency, tokens, memory, cost) are copied.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import yaml

from bench import __version__, provenance, store
from bench.backends.replay import NeedsModel, ReplayBackend
from bench.errors import BenchError, ConfigError
from bench.registry import did_you_mean
from bench.schema import RUNS_SCHEMA

__all__ = ["NeedsModel", "ReplayBackend", "RescoreResult", "TaskRescore", "parse_set", "rescore"]

# What scoring writes into a sample row; every other column is copied from the stored row.
SCORE_COLUMNS = (
    "prediction",
    "pred_index",
    "reference",
    "gold_index",
    "correct",
    "score",
    "scores",
    "confidence",
    "gold_prob",
    "extracted",
)
# Runs columns that come from the new scores (or name the new run); the rest are the source's.
_RUNS_FROM_SCORES = {
    "run_id",
    "suite_hash",
    "bench_version",
    "git_sha",
    "status",
    "error",
    "metric",
    "primary",
    "higher_is_better",
    "value",
    "stderr",
    "ci_low",
    "ci_high",
    "ci_method",
    "n_scored",
    "n",
    "n_errors",
    "usd_per_correct",
}


# ---------------------------------------------------------------------- --set PATH=VALUE


def parse_set(assignment: str) -> tuple[list[str], Any]:
    """`tasks.gsm8k.answer_regex=VALUE` -> (["tasks", "gsm8k", "answer_regex"], VALUE read as YAML)."""
    path, eq, value = assignment.partition("=")
    parts = [p for p in path.strip().split(".") if p]
    if not eq or len(parts) < 2:
        raise ConfigError(f"--set {assignment!r}: write PATH=VALUE, e.g. tasks.gsm8k.max_tokens=64")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return parts, parsed


def _apply_set(config: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    """Set one field of a suite's JSON; `models` and `tasks` entries are addressed by name."""
    node: Any = config
    for i, key in enumerate(parts[:-1]):
        if isinstance(node, list):
            names = [str(e.get("name")) for e in node if isinstance(e, dict)]
            if key not in names:
                raise ConfigError(
                    f"--set {text}: no {parts[i - 1]} entry {key!r}; {did_you_mean(key, names)}"
                )
            node = node[names.index(key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {} if parts[i + 1] not in ("models", "tasks") else [])
        if not isinstance(node, dict | list):
            raise ConfigError(f"--set {text}: {'.'.join(parts[: i + 1])} is not a mapping")
    if not isinstance(node, dict):
        raise ConfigError(f"--set {text}: {'.'.join(parts[:-1])} is a list; name an entry")
    node[parts[-1]] = value


# ---------------------------------------------------------------------- the rescore


@dataclass(frozen=True)
class TaskRescore:
    """What happened to one (model, task): rescored with the metrics whose values moved, copied
    (nothing stored to rescore: the source's failure is kept), or skipped with the reason."""

    model: str
    task: str
    status: str  # "rescored", "copied" or "skipped"
    reason: str | None = None
    moved: dict[str, dict[str, float | None]] = field(default_factory=dict)  # metric -> before, after
    items_changed: int = 0  # items whose scores changed

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "status": self.status,
            "reason": self.reason,
            "moved": self.moved,
            "items_changed": self.items_changed,
        }


@dataclass(frozen=True)
class RescoreResult:
    source_run_id: str
    run_id: str
    dir: Path
    tasks: list[TaskRescore]


def scoring_code_hash(extra_modules: Sequence[Any] = ()) -> str:
    """sha256 over the scoring code: bench/metrics, bench/tasks and the modules of plugin task kinds."""
    import bench.metrics
    import bench.tasks

    files: set[Path] = set()
    for pkg in (bench.metrics, bench.tasks):
        files.update(Path(next(iter(pkg.__path__))).rglob("*.py"))
    for mod in extra_modules:
        if getattr(mod, "__file__", None):
            files.add(Path(mod.__file__))
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def rescore(
    root: Path,
    run_ref: str,
    *,
    tasks: Sequence[str] = (),
    sets: Sequence[str] = (),
    output: Path | None = None,
) -> RescoreResult:
    """Rescore run `run_ref` of store `root` into a new run under `output` (default: `root`)."""
    import sys

    from bench.config import parse_suite
    from bench.runner import apply_overrides

    src = store.find_run(root, run_ref)
    if "suite_config" not in src:
        raise BenchError(f"run {src.get('run_id')}: its run.json has no suite_config to rebuild the tasks")
    config = _copy(src["suite_config"])
    for text in sets:
        parts, value = parse_set(text)
        _apply_set(config, parts, value, text)
    suite = apply_overrides(parse_suite(config, f"run {src['run_id']} with --set"), tasks=tasks)
    out_root = Path(output) if output is not None else Path(root)
    rid = store.new_run_id()
    directory = store.run_dir(out_root, suite.name, rid)
    src_rows = _source_runs(Path(src["path"]))
    src_samples = store.Samples(tuple(sorted(str(f) for f in Path(src["path"]).glob("samples-*.parquet"))))
    stamp = {
        "run_id": rid,
        "suite_hash": suite.suite_hash(),
        "bench_version": __version__,
        "git_sha": provenance.git_sha(),
    }
    results: list[TaskRescore] = []
    plugin_modules = []
    directory.mkdir(parents=True, exist_ok=True)
    for spec in suite.models:
        for tspec in suite.tasks:
            key = (spec.name, tspec.name)
            if key not in src_rows:
                results.append(TaskRescore(*key, "skipped", "the source run has no results for it"))
                continue
            res, mod = _rescore_task(suite, spec, tspec, src_samples, src_rows[key], directory, stamp)
            results.append(res)
            if mod is not None:
                plugin_modules.append(sys.modules.get(mod))
    manifest = {
        **{k: v for k, v in src.items() if k != "path"},
        **stamp,
        "suite_config": suite.model_dump(mode="json"),
        "created_at": datetime.now(UTC).isoformat(),
        "derived_from": {
            "run_id": src["run_id"],
            "how": "rescore",
            "set": list(sets),
            "source_bench_version": src.get("bench_version"),
            "source_git_sha": src.get("git_sha"),
            "scoring_code_sha256": scoring_code_hash([m for m in plugin_modules if m is not None]),
            "tasks": [r.to_dict() for r in results],
        },
    }
    store.write_manifest(directory, manifest)
    store.try_consolidate(directory)
    return RescoreResult(src["run_id"], rid, directory, results)


def _copy(obj: Any) -> Any:
    import json

    return json.loads(json.dumps(obj))


def _source_runs(path: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    files = store.runs_sources(path)
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not files:
        return out
    for r in ds.dataset([str(f) for f in files], schema=RUNS_SCHEMA, format="parquet").to_table().to_pylist():
        out.setdefault((r["model"], r["task"]), []).append(r)
    return out


def _rescore_task(
    suite: Any,
    spec: Any,
    tspec: Any,
    src_samples: store.Samples,
    src_runs: list[dict[str, Any]],
    directory: Path,
    stamp: dict[str, Any],
) -> tuple[TaskRescore, str | None]:
    from bench.summary import metric_arrays, task_summary
    from bench.tasks import create_task

    key = (spec.name, tspec.name)
    stored = src_samples.to_table(filter=(ds.field("model") == spec.name) & (ds.field("task") == tspec.name))
    rows = [r for r in stored.to_pylist() if not r.get("warmup")]
    writer = store.RunWriter(directory, spec.name, tspec.name)
    if not rows:  # the model or task failed before any item: its error rows are the result
        writer.write_summary([{**r, **stamp} for r in src_runs])
        return TaskRescore(*key, "copied", "no stored items: the source's error is kept"), None
    eff = suite.effective_task(tspec)
    try:
        task = create_task(tspec, eff)
        items = {it.id: it for it in task.items()}
    except Exception as e:
        return TaskRescore(*key, "skipped", f"the task cannot be rebuilt: {_text(e)}"), None
    answered = [r for r in rows if r.get("error") is None]
    missing = [r["item_id"] for r in answered if r["item_id"] not in items]
    if missing:
        return TaskRescore(*key, "skipped", f"item {missing[0]!r} is no longer in the dataset"), None
    replay = ReplayBackend(spec.name, answered)
    try:
        fresh = task.evaluate(replay, [items[r["item_id"]] for r in answered]) if answered else []
    except NeedsModel as e:
        return TaskRescore(*key, "skipped", f"needs the model: {e}"), None
    except Exception as e:
        return TaskRescore(*key, "skipped", f"scoring failed: {_text(e)}"), None
    by_id = {str(r["item_id"]): r for r in fresh}
    for r in answered:
        new = by_id.get(r["item_id"], {})
        if new.get("error"):
            return TaskRescore(*key, "skipped", f"item {r['item_id']!r}: {new['error']}"), None
        if r.get("prompt_hash") is not None and new.get("prompt_hash") not in (None, r["prompt_hash"]):
            return TaskRescore(
                *key, "skipped", f"needs the model: item {r['item_id']!r}'s request changed"
            ), None
    out_rows, changed = [], 0
    for r in rows:
        new_row = {**r, **stamp}
        if r.get("error") is None:
            new = by_id[r["item_id"]]
            new_row.update({c: new.get(c) for c in SCORE_COLUMNS})
            changed += _scores(new_row.get("scores")) != _scores(r.get("scores"))
        out_rows.append(new_row)
    writer.append(out_rows)
    samples = writer.read_samples()
    first = src_runs[0]
    summary = task_summary(
        samples,
        task=task,
        base={k: v for k, v in first.items() if k not in _RUNS_FROM_SCORES} | stamp,
        seed=eff["seed"],
        usd_per_hour=first.get("usd_per_hour") or 0.0,
        price=None,
    )
    primary = task.primary_metric
    arrays = metric_arrays(samples, (primary,))
    correct = float(arrays[primary].sum()) if arrays[primary].size else math.nan
    from bench.analysis import per_correct

    for row in summary:  # efficiency as measured in the source run, cost included
        row.update({k: v for k, v in first.items() if k not in _RUNS_FROM_SCORES})
        row["usd_per_correct"] = (
            per_correct(first["cost_usd"], correct) if first.get("cost_usd") is not None else None
        )
    writer.write_summary(summary)
    before = {r["metric"]: r.get("value") for r in src_runs}
    moved = {
        s["metric"]: {"before": before.get(s["metric"]), "after": s.get("value")}
        for s in summary
        if not _same(before.get(s["metric"]), s.get("value"))
    }
    return TaskRescore(*key, "rescored", None, moved, changed), type(task).__module__


def _scores(v: Any) -> dict[str, float]:
    return dict(v) if v is not None else {}


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def _text(e: BaseException) -> str:
    return str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
