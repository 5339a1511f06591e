"""Run a plan on a Ray cluster: one Ray task per (model, task, shard), each with its resource
request, writing into the same results store as the local executor (every part file is atomic and
named per shard, so tasks on different nodes never collide; the store must be a shared path).

Results equal the local executor's: items are split by position (every n-th), the llama.cpp
backend scores an item the same whatever ran before it, and the summaries are computed once all
shards of a (model, task) are in, from the stored samples.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from typing import Any

from bench import store
from bench.errors import BackendUnavailable
from bench.registry import BACKENDS
from bench.runner import Display, RunPlan, RunResult, run_lock
from bench.worker import Event, ModelJob, run_model, summarize_task

HINT = "pip install 'bench[ray]'"


def resources(spec: Any) -> dict[str, float]:
    """What one shard of this model asks Ray for: its backend's registered request."""
    return BACKENDS.get(spec.backend).resources(spec)


def _shard_job(job: ModelJob) -> list[Event]:
    events: list[Event] = []
    run_model(job, events.append)
    return events


def execute_ray(
    plan: RunPlan,
    display: Display,
    *,
    address: str | None = None,
    shards: int = 1,
    num_cpus: int | None = None,
) -> RunResult:
    try:
        import ray
    except ImportError as e:
        raise BackendUnavailable("ray", f"ray is not installed ({e})", HINT) from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address,
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
    t0 = time.perf_counter()
    errors: dict[str, str] = {}
    try:
        with run_lock(plan.dir):
            display.handle(
                {
                    "type": "run_start",
                    "run_id": plan.run_id,
                    "dir": str(plan.dir),
                    "resumed": plan.resumed,
                    "models": [m.name for m in plan.suite.models],
                    "tasks": [t.name for t in plan.suite.tasks],
                }
            )
            remote = ray.remote(_shard_job)
            pending: dict[Any, tuple[str, str, int]] = {}
            for spec in plan.suite.models:
                for t in plan.suite.tasks:
                    for i in range(shards):
                        job = ModelJob(
                            plan.suite.model_dump(mode="json"),
                            spec.name,
                            str(plan.dir),
                            plan.manifest,
                            tasks=(t.name,),
                            shard=(i, shards),
                        )
                        ref = remote.options(**resources(spec), max_retries=0).remote(job)
                        pending[ref] = (spec.name, t.name, i)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                model, task, _i = pending.pop(ready[0])
                try:
                    for ev in ray.get(ready[0]):
                        if ev["type"] == "model_error":
                            errors[model] = ev["error"]
                        if ev["type"] != "task_done":
                            display.handle(ev)
                except Exception as e:  # the worker died: that shard's items stay missing
                    errors[model] = f"ray task for {model} · {task} failed: {type(e).__name__}: {e}"
                    display.handle({"type": "model_error", "model": model, "error": errors[model]})
            for spec in plan.suite.models:
                for t in plan.suite.tasks:
                    summary = finalize(plan, spec.name, t, shards)
                    if summary:
                        display.handle(
                            {"type": "task_done", "model": spec.name, "task": t.name, "summary": summary}
                        )
            store.try_consolidate(plan.dir)
            display.handle({"type": "run_done", "run_id": plan.run_id, "wall_s": time.perf_counter() - t0})
    finally:
        if started_here:
            ray.shutdown()
    return RunResult(plan, time.perf_counter() - t0, errors)


def finalize(plan: RunPlan, model: str, tspec: Any, shards: int) -> list[dict[str, Any]]:
    """Summarize one (model, task) from every shard's samples and facts."""
    from bench.tasks import create_task

    writer = store.RunWriter(plan.dir, model, tspec.name)
    facts = _merge([json.loads(p.read_text()) for p in sorted(plan.dir.glob(f"shard-{writer.stem}-*.json"))])
    if not facts:
        return []  # the model failed to load: its error rows are already written
    task = create_task(tspec, plan.suite.effective_task(tspec))
    job = ModelJob(plan.suite.model_dump(mode="json"), model, str(plan.dir), plan.manifest)
    return summarize_task(job, plan.suite, tspec, task, task.items(), facts)


def _merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not parts:
        return {}
    out = dict(parts[0])
    for key in ("peak_rss_mb", "process_peak_rss_mb", "gpu_peak_mb", "load_s"):
        vals = [p[key] for p in parts if p.get(key) is not None]
        out[key] = max(vals) if vals else None
    out["started_at"] = min(p["started_at"] for p in parts)
    out["finished_at"] = max(p["finished_at"] for p in parts)
    # the machine calibration of every shard (each timed its own): the shards' median, overall extremes
    timed = [p for p in parts if p.get("calib_n")]
    if timed:
        out["calib_s"] = float(statistics.median(p["calib_s"] for p in timed))
        out["calib_min_s"] = min(p["calib_min_s"] for p in timed)
        out["calib_max_s"] = max(p["calib_max_s"] for p in timed)
        out["calib_n"] = sum(p["calib_n"] for p in timed)
    return out
