"""What one model does in a run, inside its own worker process: load the backend, warm up, score
every task's items in batches, write parts as they finish, summarize each task."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import store
from bench.config import Suite
from bench.errors import BenchError

Event = dict[str, Any]


@dataclass(frozen=True)
class ModelJob:
    suite_json: dict[str, Any]
    model: str
    run_dir: str
    manifest: dict[str, Any]
    tasks: tuple[str, ...] | None = None  # a subset of the suite's tasks (distributed executors)
    shard: tuple[int, int] | None = None  # (index, count): every count-th item from index; no summary


def base_columns(
    job: ModelJob, suite: Suite, spec: Any, task: Any, task_kind: str, dataset: str
) -> dict[str, Any]:
    m = job.manifest
    return {
        "run_id": m["run_id"],
        "suite": suite.name,
        "suite_hash": m["suite_hash"],
        "seed": suite.effective_task(task)["seed"],
        "bench_version": m["bench_version"],
        "git_sha": m["git_sha"],
        "hardware": m["hardware"],
        "task": task.name,
        "task_kind": task_kind,
        "dataset": dataset,
        "model": spec.name,
        "backend": spec.backend,
    }


def run_model(job: ModelJob, emit: Callable[[Event], None]) -> None:
    """Everything one model does in a run; runs inside its own worker process."""
    from bench.backends import create_backend
    from bench.measure import (
        Calibration,
        EnergyMeter,
        MemorySampler,
        gpu_peak_mb,
        os_peak_rss_mb,
        reset_gpu_peak,
    )
    from bench.summary import error_summary
    from bench.tasks import create_task, task_dataset, task_primary

    suite = Suite.model_validate(job.suite_json)
    spec = next(m for m in suite.models if m.name == job.model)
    directory = Path(job.run_dir)
    m = job.manifest
    run_extra = {
        "python_version": m["python_version"],
        "packages": _json(m["packages"]),
        "hardware_info": _json(m["hardware_info"]),
    }
    sampler = MemorySampler().start()
    calibration = Calibration()  # the machine's speed around each task (nightly latency verdicts)
    energy = EnergyMeter()

    t0 = time.perf_counter()
    try:
        backend = create_backend(spec, suite.defaults.seed)
        info = backend.info()
    except Exception as e:  # a model that cannot load is that model's error, not the suite's
        msg = _error_text(e)
        emit({"type": "model_error", "model": spec.name, "error": msg})
        for t in suite.tasks:
            base = {**base_columns(job, suite, spec, t, t.kind, task_dataset(t)), **run_extra}
            writer = store.RunWriter(directory, spec.name, t.name)
            writer.write_summary(error_summary(base, task_primary(t), f"model failed to load: {msg}"))
        return
    load_s = time.perf_counter() - t0
    emit(
        {
            "type": "model_loaded",
            "model": spec.name,
            "load_s": load_s,
            "params": info.params,
            "note": info.extra.get("note"),
        }
    )
    model_cols = {
        "model_params": info.params,
        "quant": info.quant,
        "model_file_mb": info.file_size / 2**20 if info.file_size else None,
        "engine_settings": _json(info.extra) if info.extra else None,
        "load_s": load_s,
        "device": info.device,
    }

    for tspec in suite.tasks:
        if job.tasks is not None and tspec.name not in job.tasks:
            continue
        eff = suite.effective_task(tspec)
        concurrency = 1 if eff["mode"] == "latency" else int(getattr(backend, "concurrency", 1))
        base = {
            **base_columns(job, suite, spec, tspec, tspec.kind, task_dataset(tspec)),
            **run_extra,
            "mode": eff["mode"],
            "concurrency": concurrency,
        }
        writer = store.RunWriter(directory, spec.name, tspec.name)
        started = datetime.now(UTC)
        try:
            task = create_task(tspec, eff)
            items = task.items()
        except Exception as e:
            msg = _error_text(e)
            emit({"type": "task_error", "model": spec.name, "task": tspec.name, "error": msg})
            writer.write_summary(error_summary({**base, **model_cols}, task_primary(tspec), msg))
            continue
        tried = writer.attempts()  # a resume skips answered items and re-runs failed ones
        todo = [it for it in items if not tried.get(it.id, (0, False))[1]]
        if job.shard is not None:
            index, count = job.shard
            mine = {it.id for k, it in enumerate(items) if k % count == index}
            todo = [it for it in todo if it.id in mine]
        emit(
            {
                "type": "task_start",
                "model": spec.name,
                "task": tspec.name,
                "total": len(items),
                "done": len(items) - len(todo),
                "retry": sum(1 for it in todo if it.id in tried),
            }
        )
        sampler.reset()
        reset_gpu_peak()
        with _concurrency(backend, concurrency):
            if todo and eff["warmup"]:
                _warm_up(task, backend, todo[: eff["warmup"]], base, writer)
            batch_size = 1 if eff["mode"] == "latency" else eff["batch_size"]
            if todo:
                calibration.time_now()
            for i in range(0, len(todo), batch_size):
                batch = todo[i : i + batch_size]
                rows = _evaluate_batch(task, backend, batch, energy)
                for r in rows:
                    r.update(base)
                    r["task_kind"] = task.kind
                    r["attempt"] = tried.get(r["item_id"], (0, False))[0] + 1
                writer.append(rows)
                emit(
                    {
                        "type": "advance",
                        "model": spec.name,
                        "task": tspec.name,
                        "n": len(batch),
                        "errors": sum(1 for r in rows if r.get("error")),
                    }
                )
                calibration.maybe()
        if todo:
            calibration.time_now()
        measures = {  # this task's own peak; the process's high-water mark spans every task before
            "peak_rss_mb": sampler.peak_mb if todo else None,
            "process_peak_rss_mb": os_peak_rss_mb(),
            "gpu_peak_mb": gpu_peak_mb(),
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            **calibration.take(),
        }
        if job.shard is not None:  # the executor summarizes once every shard is in
            store.write_json(
                directory / f"shard-{writer.stem}-{job.shard[0]}.json", {**model_cols, **measures}
            )
            emit({"type": "task_done", "model": spec.name, "task": tspec.name, "summary": []})
            continue
        summary = summarize_task(job, suite, tspec, task, items, {**model_cols, **measures})
        emit({"type": "task_done", "model": spec.name, "task": tspec.name, "summary": summary})
    sampler.stop()
    backend.close()


def summarize_task(
    job: ModelJob, suite: Suite, tspec: Any, task: Any, items: Sequence[Any], facts: dict[str, Any]
) -> list[dict[str, Any]]:
    """Write the runs rows of one (model, task) from all its stored samples (every shard's)."""
    from bench.summary import task_summary
    from bench.tasks import task_dataset

    spec = next(m for m in suite.models if m.name == job.model)
    eff = suite.effective_task(tspec)
    m = job.manifest
    writer = store.RunWriter(Path(job.run_dir), spec.name, tspec.name)
    ids = {it.id for it in items}
    writer.drop_superseded()  # the failed attempts a resume replaced leave the files, not just the view
    samples = writer.read_samples()
    samples = samples.take([i for i, x in enumerate(samples.column("item_id").to_pylist()) if x in ids])
    modes = samples.column("mode").to_pylist()
    concs = samples.column("concurrency").to_pylist()
    base = {
        **base_columns(job, suite, spec, tspec, tspec.kind, task_dataset(tspec)),
        "python_version": m["python_version"],
        "packages": _json(m["packages"]),
        "hardware_info": _json(m["hardware_info"]),
        "mode": modes[-1] if modes else eff["mode"],
        "concurrency": concs[-1] if concs else None,
        "num_fewshot": eff["num_fewshot"],
        "item_limit": eff["limit"],
        **facts,
        "started_at": datetime.fromisoformat(facts["started_at"]),
        "finished_at": datetime.fromisoformat(facts["finished_at"]),
    }
    price = (spec.price.input_per_mtok, spec.price.output_per_mtok) if spec.price else None
    summary = task_summary(
        samples, task=task, base=base, seed=eff["seed"], usd_per_hour=suite.hardware.usd_per_hour, price=price
    )
    writer.write_summary(summary)
    return summary


def _evaluate_batch(task: Any, backend: Any, batch: Sequence[Any], energy: Any) -> list[dict[str, Any]]:
    """One batch through the task, timed: each row carries its share of the batch's wall time and
    energy, so totals survive a resumed run."""
    batch_start = datetime.now(UTC)
    energy.start()
    t0 = time.perf_counter()
    try:
        rows = task.evaluate(backend, batch)
    except Exception as e:  # a bug or engine failure on this batch: record it, go on
        msg = _error_text(e)
        rows = [{"item_id": it.id, "item_index": it.index, "error": msg} for it in batch]
    wall = time.perf_counter() - t0
    joules = energy.stop()
    for r in rows:
        r.setdefault("started_at", batch_start)
        r.setdefault("warmup", False)
        r["wall_s"] = wall / len(rows)
        r["energy_j"] = joules / len(rows) if joules is not None else None
    return rows


def _warm_up(
    task: Any, backend: Any, items: Sequence[Any], base: dict[str, Any], writer: store.RunWriter
) -> None:
    """Run the first items once before measuring (caches, allocations, lazy init). Their rows are
    kept apart (warmup-*.parquet, warmup=True) and never enter the statistics."""
    from bench.measure import EnergyMeter

    rows = _evaluate_batch(task, backend, items, EnergyMeter())
    for r in rows:
        r.update(base)
        r["task_kind"] = task.kind
        r["warmup"] = True
    writer.write_warmup(rows)


@contextlib.contextmanager
def _concurrency(backend: Any, n: int) -> Iterator[None]:
    """Latency mode: one request in flight; throughput mode: the backend's own concurrency."""
    if not hasattr(backend, "concurrency"):
        yield
        return
    before = backend.concurrency
    backend.concurrency = n
    try:
        yield
    finally:
        backend.concurrency = before


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True)


def _error_text(e: BaseException) -> str:
    if isinstance(e, BenchError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _redirect_output(path: Path) -> None:
    """Send the worker's stdout/stderr (engine chatter, a crash's last words) to a log file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def worker_main(job: ModelJob, q: Any) -> None:
    from bench.measure import set_parent_death_signal

    set_parent_death_signal()
    _redirect_output(Path(job.run_dir) / "logs" / f"{store.safe_name(job.model)}.log")
    try:
        run_model(job, q.put)
    except BaseException as e:
        q.put(
            {
                "type": "model_error",
                "model": job.model,
                "error": _error_text(e),
                "traceback": traceback.format_exc(),
            }
        )
        raise
