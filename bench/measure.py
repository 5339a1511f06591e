"""Measurements around the engine: peak memory (sampled and the OS's own), GPU memory, energy.

Each model runs in its own worker process, so these describe that model alone.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil


def os_peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's resident memory (what /usr/bin/time reports)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


class MemorySampler:
    """Samples the RSS of this process and its children every `interval_s` on a daemon thread;
    `reset` starts a new window (one per task), so a task reports its own peak, not one inherited
    from a heavier task before it as the kernel's lifetime high-water mark would.

    Children count because engines run the model there: vLLM V1 (CPU) starts an engine core and a
    model worker holding the weights and KV cache (smollm2-135m, 1 GiB KV cache: bench's worker 764
    MB RSS, engine core 698, vLLM's worker 2181; peak 4.1 GB where the worker alone read 1.2 GB).
    RSS counts the libraries they share once per process: the sum read 3656 MB where the
    proportional (PSS) sum was 3225, 12% less; PSS costs ~60 ms a reading (smaps), too slow to
    sample. Listing children scans /proc (~4 ms), so the list is refreshed every
    `children_every_s`, not on every sample."""

    def __init__(self, interval_s: float = 0.02, children_every_s: float = 0.5) -> None:
        self._proc = psutil.Process()
        self._children: list[psutil.Process] = []
        self._children_every = children_every_s
        self._children_at = -math.inf
        self._interval = interval_s
        self._peak = 0
        self._window = 0
        self._lock = threading.Lock()  # a sample taken across `reset` must not carry the old peak over
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def _sample(self) -> None:
        window = self._window
        try:
            rss = self._proc.memory_info().rss
        except psutil.Error:
            return
        rss += self._children_rss()
        with self._lock:
            if window == self._window:  # read before a `reset`: it belongs to the previous window
                self._peak = max(self._peak, rss)

    def _children_rss(self) -> int:
        now = time.monotonic()
        if now - self._children_at >= self._children_every:
            self._children_at = now
            with contextlib.suppress(psutil.Error):
                self._children = self._proc.children(recursive=True)
        total = 0
        for child in self._children:
            with contextlib.suppress(psutil.Error):  # exited since the list was taken
                total += child.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def reset(self) -> None:
        with self._lock:
            self._peak = 0
            self._window += 1
        self._sample()

    @property
    def peak_mb(self) -> float:
        self._sample()
        return self._peak / 2**20

    def stop(self) -> None:
        self._stop.set()


def gpu_peak_mb() -> float | None:
    """Peak GPU memory allocated by this process through torch, when torch has used CUDA."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        return float(
            sum(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count())) / 2**20
        )
    except Exception:
        return None


def reset_gpu_peak() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and torch.cuda.is_initialized():
                for d in range(torch.cuda.device_count()):
                    torch.cuda.reset_peak_memory_stats(d)
        except Exception:
            pass


class EnergyMeter:
    """Joules used between `start` and `stop`: Intel RAPL package counters when readable, plus the
    NVML energy counter of NVIDIA GPUs. `stop` returns None when neither is available."""

    def __init__(self) -> None:
        self._rapl = [
            Path(p)
            for p in glob.glob("/sys/class/powercap/intel-rapl:[0-9]*")
            if ":" not in Path(p).name[11:]
        ]
        self._rapl = [p for p in self._rapl if os.access(p / "energy_uj", os.R_OK)]
        self._nvml: Any = None
        self._start: tuple[list[int], list[int]] | None = None

    def _nvml_handles(self) -> list[Any]:
        if self._nvml is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception:
                self._nvml = False
                return []
        if self._nvml is False:
            return []
        return [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in range(self._nvml.nvmlDeviceGetCount())]

    def _read(self) -> tuple[list[int], list[int]]:
        rapl = []
        for p in self._rapl:
            try:
                rapl.append(int((p / "energy_uj").read_text()))
            except (OSError, ValueError):
                rapl.append(-1)
        gpu = []
        for h in self._nvml_handles():
            try:
                gpu.append(int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)))  # millijoules
            except Exception:
                gpu.append(-1)
        return rapl, gpu

    @property
    def available(self) -> bool:
        return bool(self._rapl) or bool(self._nvml_handles())

    def start(self) -> None:
        self._start = self._read() if self.available else None

    def stop(self) -> float | None:
        if self._start is None:
            return None
        rapl0, gpu0 = self._start
        rapl1, gpu1 = self._read()
        joules = 0.0
        for p, a, b in zip(self._rapl, rapl0, rapl1, strict=True):
            if a < 0 or b < 0:
                return None
            if b < a:  # the counter wrapped
                try:
                    b += int((p / "max_energy_range_uj").read_text())
                except (OSError, ValueError):
                    return None
            joules += (b - a) / 1e6
        for a, b in zip(gpu0, gpu1, strict=True):
            if a < 0 or b < 0:
                return None
            joules += (b - a) / 1e3
        return joules


def set_parent_death_signal() -> None:
    """Linux: have the kernel SIGKILL this worker when its parent dies, so a killed `bench run`
    never leaves a worker writing into the results behind a resumed run."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ------------------------------------------------------------------------------ machine calibration

_CALIBRATION_BUFFER = bytes(range(256)) * 256  # 64 KiB: hashlib releases the GIL on buffers this large


def calibration_s(
    threads: int | None = None, *, steps: int = 32, per_step: int = 24, repeats: int = 1
) -> float:
    """Seconds a fixed CPU workload takes right now (the median of `repeats` timings).

    `threads` threads (default: every CPU this process may use) each hash the same 64 KiB buffer
    `per_step` times per step and meet at a barrier after every step, as an engine's threads meet
    after every layer, so one thread starved by another process delays them all. The work never
    changes: a longer time means the machine gave this process less CPU (another process,
    throttling, a noisy neighbour). About 0.2 s per timing on an idle 2-core machine: shorter
    bursts are favoured by the scheduler over long-running processes (an 8-step timing read 2.1x
    slower beside two CPU burners where a sustained job ran 2.8x slower; 80 steps read 2.65x).
    """
    import hashlib
    import statistics
    import time

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n = max(1, threads)

    def one() -> float:
        barrier = threading.Barrier(n)

        def work() -> None:
            for _ in range(steps):
                for _ in range(per_step):
                    hashlib.sha256(_CALIBRATION_BUFFER).digest()
                barrier.wait()

        pool = [threading.Thread(target=work, name="bench-calibration") for _ in range(n)]
        t0 = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return time.perf_counter() - t0

    return statistics.median(one() for _ in range(max(1, repeats)))


class Calibration:
    """The calibration workload timed before a task, every `every_s` between its batches, and after
    it; `take` gives the task's figures (median, min, max seconds, count) and starts a new window.

    Nightly divides latency changes by the ratio of two runs' medians, so a run slowed by another
    process on a shared machine is not read as the model getting faster or slower."""

    def __init__(self, every_s: float = 30.0) -> None:
        self.every_s = every_s
        self._times: list[float] = []
        self._last = 0.0

    def time_now(self) -> None:
        import time

        self._times.append(calibration_s())
        self._last = time.monotonic()

    def maybe(self) -> None:
        import time

        if time.monotonic() - self._last >= self.every_s:
            self.time_now()

    def take(self) -> dict[str, Any]:
        import statistics

        times, self._times = self._times, []
        if not times:
            return {"calib_s": None, "calib_min_s": None, "calib_max_s": None, "calib_n": None}
        return {
            "calib_s": statistics.median(times),
            "calib_min_s": min(times),
            "calib_max_s": max(times),
            "calib_n": len(times),
        }
