"""Measurements around the engine: peak memory (sampled and the OS's own), GPU memory, energy.

Each model runs in its own worker process, so these describe that model alone.
"""

from __future__ import annotations

import glob
import os
import resource
import sys
import threading
from pathlib import Path
from typing import Any

import psutil


def os_peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's resident memory (what /usr/bin/time reports)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


class MemorySampler:
    """Samples this process's RSS every `interval_s` on a daemon thread; `reset` starts a new window."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self._proc = psutil.Process()
        self._interval = interval_s
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def _sample(self) -> None:
        try:
            rss = self._proc.memory_info().rss
        except psutil.Error:
            return
        self._peak = max(self._peak, rss)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def reset(self) -> None:
        self._peak = 0
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
