"""The sampled peak counts the worker's child processes: vLLM V1 runs its engine core (weights, KV
cache) in a child of bench's model worker, and a peak of the worker alone would miss most of it."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.measure import MemorySampler

# a child that holds ~300 MB of touched memory until killed
HOLD = "import sys, time; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ready', flush=True); time.sleep(60)"


def test_a_child_process_memory_is_in_the_peak() -> None:
    sampler = MemorySampler(interval_s=0.01, children_every_s=0.05).start()
    try:
        time.sleep(0.1)
        alone = sampler.peak_mb
        with subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True) as child:
            try:
                assert child.stdout is not None and child.stdout.readline().strip() == "ready"
                time.sleep(0.3)  # a few child-list refreshes
                with_child = sampler.peak_mb
            finally:
                child.kill()
        sampler.reset()
        time.sleep(0.3)
        after = sampler.peak_mb  # a new window after the child exited: the child is gone from it
    finally:
        sampler.stop()
    assert with_child - alone > 250, (alone, with_child)
    assert after - alone < 100, (alone, after)
