"""A load sweep: every model of the suite at every level of its `load:` block, on the same items
of each generative task, answers scored by the task itself, rows stored level by level.

The openai backend (any OpenAI-compatible server: llama.cpp's, vLLM's, hosted APIs) runs every
level through the async generator. An in-process engine cannot overlap requests from outside
(llama.cpp in process answers one at a time), so it runs the synchronous level only and says so.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bench.backends.base import GenerateRequest
from bench.config import Suite
from bench.errors import BenchError
from bench.load import records
from bench.load.client import Outcome, Target
from bench.load.generator import run_level
from bench.load.metrics import accuracy_vs_baseline, level_summary
from bench.load.profile import Level, levels
from bench.specs.load import LoadSpec
from bench.tasks.base import prompt_hash

Emit = Callable[[dict[str, Any]], None]
OVERLAPPING = ("openai",)  # backends whose requests the generator can overlap


@dataclass
class SweepResult:
    run_id: str
    dir: Path
    levels: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def run_sweep(
    suite: Suite, root: Path, *, resume: bool = False, run_id: str | None = None, emit: Emit | None = None
) -> SweepResult:
    from bench.runner import plan_run, run_lock

    if suite.load is None:
        raise BenchError(f"suite {suite.name!r} has no load: block (or give levels on the command line)")
    emit = emit or (lambda e: None)
    plan = plan_run(suite, root, resume=resume, run_id=run_id)
    result = SweepResult(plan.run_id, plan.dir, pd.DataFrame())
    with run_lock(plan.dir):  # one writer per run: two resumes of one sweep never write the same level
        for spec in suite.models:
            try:
                _sweep_model(suite, suite.load, spec, plan, emit, result)
            except Exception as e:  # one model's failure is its own, the sweep goes on
                msg = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
                result.errors[spec.name] = msg
                emit({"type": "model_error", "model": spec.name, "error": msg})
    result.levels = records.read_levels(plan.root, [plan.run_id])
    return result


def _sweep_model(suite: Suite, load: LoadSpec, spec: Any, plan: Any, emit: Emit, result: SweepResult) -> None:
    from bench.backends import create_backend
    from bench.tasks import create_task
    from bench.worker import ModelJob, base_columns

    backend = create_backend(spec, suite.defaults.seed)
    overlap = spec.backend in OVERLAPPING
    todo = levels(load, can_overlap=overlap)
    note = None
    if not overlap:
        note = f"{spec.name}: the {spec.backend} backend answers one request at a time in process: synchronous level only"
        if spec.backend == "vllm":
            note += " (serve it with `vllm serve` and use the openai backend for the other levels)"
        result.notes.append(note)
        emit({"type": "note", "text": note})
    target = Target.from_backend(backend) if overlap else None
    job = ModelJob(suite.model_dump(mode="json"), spec.name, str(plan.dir), plan.manifest)
    m = plan.manifest
    extra = {
        "python_version": m["python_version"],
        "packages": json.dumps(m["packages"], sort_keys=True),
        "hardware_info": json.dumps(m["hardware_info"], sort_keys=True),
    }
    price = (spec.price.input_per_mtok, spec.price.output_per_mtok) if spec.price else None
    seed = load.seed if load.seed is not None else suite.defaults.seed
    try:
        for tspec in suite.tasks:
            source = create_task(tspec, suite.effective_task(tspec))
            task = _generative(source)
            if not hasattr(task, "request") or not hasattr(task, "score"):
                text = f"{tspec.name}: a {tspec.kind} task does not generate; a load sweep needs a generative task"
                result.notes.append(text)
                emit({"type": "note", "text": text})
                continue
            items = source.items()  # multiple choice: the parent's items and shots
            n = load.requests or len(items)
            asked = [(items[k % len(items)], task.request(backend, items[k % len(items)])) for k in range(n)]
            base = base_columns(job, suite, spec, tspec, tspec.kind, tspec.stored_dataset())
            warm = [r for _, r in asked[: load.warmup]]
            if warm and any(
                not records.level_path(plan.dir, spec.name, tspec.name, lv.label).exists() for lv in todo
            ):
                _send(Level("synchronous"), warm, target, backend, load, seed)
            for index, lv in enumerate(todo):
                if records.level_path(plan.dir, spec.name, tspec.name, lv.label).exists():
                    emit({"type": "level_skipped", "model": spec.name, "task": tspec.name, "level": lv.label})
                    continue
                emit(
                    {"type": "level_start", "model": spec.name, "task": tspec.name, "level": lv.label, "n": n}
                )
                started = datetime.now(UTC)
                outs = _send(lv, [r for _, r in asked], target, backend, load, seed)
                lv_cols = {
                    **base,
                    "level": lv.label,
                    "level_kind": lv.kind,
                    "level_value": lv.value,
                    "level_index": index,
                    "arrivals": load.arrivals if lv.kind == "rate" else None,
                    "burstiness": load.burstiness if lv.kind == "rate" else None,
                    "level_started_at": started,
                }
                zero = min((o.scheduled for o in outs), default=0.0)
                rows = [_request_row(o, asked[o.seq], task, lv_cols, zero) for o in outs]
                figures = level_summary(
                    pd.DataFrame(rows, columns=records.REQUESTS_SCHEMA.names),
                    slo=load.slo,
                    usd_per_hour=suite.hardware.usd_per_hour,
                    price=price,
                    seed=seed,
                )
                row = {
                    **lv_cols,
                    **figures,
                    **extra,
                    "metric": task.primary_metric,
                    "note": note,
                    "finished_at": datetime.now(UTC),
                }
                records.write_level(plan.dir, rows, row)
                emit(
                    {
                        "type": "level_done",
                        "model": spec.name,
                        "task": tspec.name,
                        "level": lv.label,
                        "row": row,
                    }
                )
            _compare_levels(
                plan.root,
                plan.dir,
                plan.run_id,
                spec.name,
                tspec.name,
                [lv.label for lv in todo],
                load.alpha,
                seed,
            )
    finally:
        backend.close()


def _generative(task: Any) -> Any:
    """The task as the sweep asks it: multiple choice by its letter form (a load sweep generates)."""
    if task.kind == "mcq" and not hasattr(task, "request"):
        from bench.tasks.mcq import LetterChoice

        return LetterChoice(task)
    return task


def _send(
    lv: Level, reqs: Sequence[GenerateRequest], target: Target | None, backend: Any, load: LoadSpec, seed: int
) -> list[Outcome]:
    if target is None:
        return _send_in_process(reqs, backend)
    return asyncio.run(
        run_level(
            lv,
            reqs,
            target,
            seed=seed,
            arrivals=load.arrivals,
            burstiness=load.burstiness,
            duration_s=load.duration_s,
            timeout_s=load.timeout_s,
            max_in_flight=load.max_in_flight,
        )
    )


def _send_in_process(reqs: Sequence[GenerateRequest], backend: Any) -> list[Outcome]:
    """One request at a time through the backend's own generate(); TTFT as the engine measured
    it, no per-piece times (ITL percentiles stay empty, TPOT comes from the engine's totals)."""
    outs = []
    for k, req in enumerate(reqs):
        out = Outcome(k, req.item_id, scheduled=time.perf_counter())
        out.start = time.perf_counter()
        resp = backend.generate([req])[0]
        out.end = time.perf_counter()
        out.first = out.start + resp.ttft_s if resp.ttft_s is not None else None
        out.text, out.error, out.finish_reason = resp.text, resp.error, resp.finish_reason
        out.output_tokens, out.input_tokens = resp.output_tokens, resp.input_tokens
        outs.append(out)
    return outs


def _request_row(
    o: Outcome, asked: tuple[Any, GenerateRequest], task: Any, lv_cols: dict[str, Any], zero: float
) -> dict[str, Any]:
    """One stored request; times in seconds from `zero`, the level's first scheduled send."""
    it, req = asked
    rel = zero
    ttft = (o.first - o.start) if o.first is not None else None
    e2e = o.end - o.start
    n_out = o.output_tokens
    tpot = (e2e - ttft) / (n_out - 1) if ttft is not None and n_out and n_out > 1 else None
    gaps = [b - a for a, b in zip(o.chunk_times, o.chunk_times[1:], strict=False)] if o.chunk_times else None
    row: dict[str, Any] = {
        **lv_cols,
        "seq": o.seq,
        "item_id": it.id,
        "item_index": it.index,
        "scheduled_s": o.scheduled - rel,
        "start_s": o.start - rel,
        "first_token_s": (o.first - rel) if o.first is not None else None,
        "end_s": o.end - rel,
        "ttft_s": ttft,
        "e2e_s": e2e,
        "tpot_s": tpot,
        "itl_s": gaps,
        "input_tokens": o.input_tokens,
        "output_tokens": n_out,
        "finish_reason": o.finish_reason,
        "error": o.error,
        "timed_out": o.timed_out,
        "prompt_hash": prompt_hash(req.prompt),
        "raw_output": o.text,
    }
    if o.error is None:
        extracted, reference, scores = task.score(it.record, o.text)
        primary = scores.get(task.primary_metric)
        row.update(
            prediction=extracted if extracted is not None else o.text.strip(),
            reference=reference,
            score=primary,
            correct=None if primary is None or primary not in (0.0, 1.0) else bool(primary),
        )
    return row


def _compare_levels(
    root: Path,
    directory: Path,
    run_id: str,
    model: str,
    task: str,
    labels: list[str],
    alpha: float,
    seed: int,
) -> None:
    """Accuracy at each level against the first on the same items; rewrites the level rows."""
    found = records.read_levels(root, [run_id])
    mine = found[(found["model"] == model) & (found["task"] == task)]
    if len(mine) < 2 or set(mine["level"]) != set(labels):
        return  # a level is missing (it failed): nothing to rewrite until a resume completes it
    reqs = records.read_requests(root, [run_id])
    reqs = reqs[(reqs["model"] == model) & (reqs["task"] == task)]
    tests = accuracy_vs_baseline(labels, reqs, alpha=alpha, seed=seed)
    for row in mine.to_dict("records"):
        t = tests.get(row["level"])
        if t is None:
            continue
        row.update(
            vs_level=t["vs_level"],
            accuracy_diff=t["diff"],
            p_value=t["p_value"],
            p_adjusted=t["p_adjusted"],
            accuracy_changed=t["accuracy_changed"],
        )
        records.rewrite_level(
            directory, {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        )
