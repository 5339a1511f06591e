"""Plan and execute a run: one worker process per model (bench.worker), items in batches, parts
written as they finish; the run's summary file at the end.

No printing here: progress goes to a `Display` as events, so the CLI, tests and the nightly job
each show it their own way. A model that fails to load, or whose worker dies, is recorded as
that model's error while the other models go on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from bench import __version__, provenance, store
from bench.config import Suite
from bench.errors import BenchError, ConfigError
from bench.registry import did_you_mean
from bench.worker import Event, ModelJob, base_columns, run_model, worker_main

Executor = Literal["process", "inline"]


class Display(Protocol):
    def handle(self, event: Event) -> None: ...


class NullDisplay:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


@dataclass
class RunPlan:
    suite: Suite
    root: Path
    run_id: str
    dir: Path
    resumed: bool
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def suite_hash(self) -> str:
        return self.suite.suite_hash()


# ---------------------------------------------------------------------- planning


def apply_overrides(
    suite: Suite,
    *,
    limit: int | None = None,
    models: Sequence[str] = (),
    tasks: Sequence[str] = (),
    hardware: str | None = None,
    usd_per_hour: float | None = None,
    mode: str | None = None,
    max_memory_mb: float | None = None,
) -> Suite:
    """The suite as it will actually run: CLI choices become part of it, and so of its hash."""
    data = suite.model_dump(mode="python")
    if hardware is not None:
        data["hardware"]["name"] = hardware
    if usd_per_hour is not None:
        data["hardware"]["usd_per_hour"] = usd_per_hour
    if mode is not None:
        data["defaults"]["mode"] = mode
        for t in data["tasks"]:
            t["mode"] = None
    if max_memory_mb is not None:
        for m in data["models"]:
            m["max_memory_mb"] = max_memory_mb
    for opt, names, have in (
        ("--models", models, [m.name for m in suite.models]),
        ("--tasks", tasks, [t.name for t in suite.tasks]),
    ):
        for n in names:
            if n not in have:
                raise ConfigError(f"{opt}: {n!r} is not in suite {suite.name!r}; {did_you_mean(n, have)}")
    if models:
        data["models"] = [m for m in data["models"] if m["name"] in models]
    if tasks:
        data["tasks"] = [t for t in data["tasks"] if t["name"] in tasks]
    if limit is not None:
        data["defaults"]["limit"] = limit
        for t in data["tasks"]:
            t["limit"] = None
    return Suite.model_validate(data)


def plan_run(suite: Suite, root: Path, *, resume: bool = False, run_id: str | None = None) -> RunPlan:
    root = Path(root)
    if run_id is not None or resume:
        candidates = [
            r
            for r in store.list_runs(root)
            if r.get("suite") == suite.name and (run_id is None or r.get("run_id") == run_id)
        ]
        if run_id is not None and not candidates:
            raise BenchError(f"--run-id: no run {run_id!r} of suite {suite.name!r} under {root}")
        same = [r for r in candidates if r.get("suite_hash") == suite.suite_hash()]
        if run_id is not None and not same:
            raise BenchError(
                f"--run-id: run {run_id!r} was made from a different suite; it cannot be resumed"
            )
        if same:
            m = same[0]
            return RunPlan(suite, root, m["run_id"], Path(m["path"]), True, m)
    rid = new_id = store.new_run_id()
    d = store.run_dir(root, suite.name, new_id)
    manifest = {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": rid,
        "suite": suite.name,
        "suite_hash": suite.suite_hash(),
        "suite_config": suite.model_dump(mode="json"),
        "seed": suite.defaults.seed,
        "created_at": datetime.now(UTC).isoformat(),
        "bench_version": __version__,
        "git_sha": provenance.git_sha(),
        "hardware": provenance.hardware_label(suite.hardware.name),
        "hardware_info": provenance.hardware_info(),
        "packages": provenance.package_versions(),
        "python_version": provenance.python_version(),
    }
    store.write_manifest(d, manifest)
    return RunPlan(suite, root, rid, d, False, manifest)


# ---------------------------------------------------------------------- execution


@dataclass
class RunResult:
    plan: RunPlan
    wall_s: float
    model_errors: dict[str, str]


@contextlib.contextmanager
def run_lock(directory: Path) -> Iterator[None]:
    """One writer per run directory: a second `bench run --resume` of the same run waits for none,
    it fails. Other runs (other directories) write side by side freely."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchError(f"run {directory.name} is being written by another bench process") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def execute(plan: RunPlan, display: Display, *, executor: Executor = "process") -> RunResult:
    with run_lock(plan.dir):
        try:
            return _execute(plan, display, executor)
        finally:
            store.try_consolidate(plan.dir)


def _execute(plan: RunPlan, display: Display, executor: Executor) -> RunResult:
    suite = plan.suite
    for stale in plan.dir.glob(".tmp-*"):  # left by a killed writer; never part of the results
        stale.unlink(missing_ok=True)
    display.handle(
        {
            "type": "run_start",
            "run_id": plan.run_id,
            "dir": str(plan.dir),
            "resumed": plan.resumed,
            "models": [m.name for m in suite.models],
            "tasks": [t.name for t in suite.tasks],
        }
    )
    t0 = time.perf_counter()
    errors: dict[str, str] = {}
    for spec in suite.models:
        job = ModelJob(plan.suite.model_dump(mode="json"), spec.name, str(plan.dir), plan.manifest)
        if executor == "inline":

            def sink(ev: Event) -> None:
                if ev["type"] == "model_error":
                    errors[ev["model"]] = ev["error"]
                display.handle(ev)

            run_model(job, sink)
            continue
        err = _run_in_process(job, display, spec.max_memory_mb)
        if err:
            errors[spec.name] = err
            _record_crash(plan, spec, err)
    display.handle({"type": "run_done", "run_id": plan.run_id, "wall_s": time.perf_counter() - t0})
    return RunResult(plan, time.perf_counter() - t0, errors)


def _run_in_process(job: ModelJob, display: Display, max_memory_mb: float | None = None) -> str | None:
    import psutil

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    # Not daemonic: engines such as vLLM start their own child processes, which a daemonic process
    # may not ("daemonic processes are not allowed to have children"). The worker still dies with
    # this process (PDEATHSIG, set in worker_main), and _reap ends whatever it left behind.
    proc = ctx.Process(target=worker_main, args=(job, q), name=f"bench-{job.model}", daemon=False)
    proc.start()
    error: str | None = None
    watched = psutil.Process(proc.pid)
    family: dict[int, psutil.Process] = {}

    def note_children() -> None:
        """Remember the worker's descendants while it lives: once it is killed they are orphans."""
        with contextlib.suppress(psutil.Error):
            family.update({c.pid: c for c in watched.children(recursive=True)})

    def over_limit() -> bool:
        """The memory limit, enforced from outside: the worker is killed the moment it exceeds it."""
        nonlocal error
        if max_memory_mb is None:
            return False
        try:
            rss = watched.memory_info().rss / 2**20
        except psutil.Error:
            return False
        if rss <= max_memory_mb:
            return False
        note_children()
        proc.kill()
        error = f"worker for {job.model} exceeded its memory limit of {max_memory_mb:.0f} MB (resident {rss:.0f} MB)"
        display.handle({"type": "model_error", "model": job.model, "error": error})
        return True

    def drain(block: bool) -> None:
        nonlocal error
        while True:
            try:
                ev = q.get(timeout=0.2) if block else q.get_nowait()
            except queue.Empty:
                return
            if ev["type"] == "model_error":
                error = ev["error"]
            display.handle(ev)
            block = False

    try:
        while proc.is_alive():
            drain(block=True)
            note_children()
            if over_limit():
                break
        proc.join()
        drain(block=False)
    except KeyboardInterrupt:
        note_children()
        proc.terminate()
        proc.join(5)
        raise
    finally:
        _reap(family.values())
    if proc.exitcode != 0 and error is None:
        code = proc.exitcode or 0
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        if code == -9:
            why += " (out of memory?)"
        elif code == -4:
            why += (
                " (illegal instruction: the engine was built for CPU features this machine cannot use; "
                "reinstall it with a portable build, see README)"
            )
        log = Path(job.run_dir) / "logs" / f"{store.safe_name(job.model)}.log"
        error = f"worker for {job.model} died: {why}; log: {log}"
        display.handle({"type": "model_error", "model": job.model, "error": error})
    q.close()
    return error if proc.exitcode != 0 or error else None


def _reap(procs: Any) -> None:
    """Kill the worker's descendants that outlived it (an engine's children after a crash or kill)."""
    import psutil

    alive = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running():
                p.kill()
                alive.append(p)
    psutil.wait_procs(alive, timeout=5)


def _record_crash(plan: RunPlan, spec: Any, err: str) -> None:
    """Tasks of a crashed model that have no summary get an error summary, so the failure is visible."""
    from bench.summary import error_summary
    from bench.tasks import task_dataset, task_primary

    job = ModelJob({}, spec.name, str(plan.dir), plan.manifest)
    for t in plan.suite.tasks:
        writer = store.RunWriter(plan.dir, spec.name, t.name)
        if (plan.dir / f"runs-{writer.stem}.parquet").exists():
            continue
        base = base_columns(job, plan.suite, spec, t, t.kind, task_dataset(t))
        writer.write_summary(error_summary(base, task_primary(t), err))


def default_results_dir() -> Path:
    return Path(os.environ.get("BENCH_RESULTS_DIR", "results"))
