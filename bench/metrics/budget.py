"""Run a pure function under a wall-clock budget: `call_with_budget(fn, args, budget_s)` returns
fn(*args), or None when it ran longer than budget_s.

On the main thread the budget is a SIGALRM timer (the exception it raises is a BaseException, so a
library's `except Exception` cannot swallow it). Off the main thread, where signals cannot be used,
the call runs in one helper process (spawned once, so the caller's main module must be import-safe)
that is killed outright when the budget runs out and respawned on the next call. Used by the MATH
scorer, whose symbolic simplification can run for minutes on adversarial input.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["call_with_budget", "shutdown_helper"]


class _BudgetExceeded(BaseException):
    """Raised from SIGALRM; a BaseException so library `except Exception` blocks cannot swallow it."""


def _run_with_alarm(fn: Callable[..., bool], args: tuple[Any, ...], budget_s: float) -> bool | None:
    def on_alarm(signum: int, frame: object) -> None:
        raise _BudgetExceeded

    old_handler = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, budget_s)
    start = time.monotonic()
    try:
        try:
            return fn(*args)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _BudgetExceeded:
        return None
    finally:
        signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
        if old_delay > 0:  # someone else's timer was running: give it back what is left
            signal.setitimer(
                signal.ITIMER_REAL, max(old_delay - (time.monotonic() - start), 1e-3), old_interval
            )


def _serve(conn: Any) -> None:
    """The helper process: run each (fn, args) it is sent and send back (ok, value or exception)."""
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, fn(*args)))
        except Exception as e:  # sent back: the caller re-raises it
            conn.send((False, e))


class _Helper:
    """One spawned process that runs scorers and is killed outright on overrun. A plain process
    and a pipe rather than multiprocessing.Pool: Pool.terminate()/join() could hang for minutes
    while its handler threads respawned workers (seen in a test run with Ray in the same process)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child,), daemon=True, name="bench-math-helper")
        self.proc.start()
        child.close()

    def call(self, fn: Callable[..., bool], args: tuple[Any, ...], timeout: float | None) -> tuple[bool, Any]:
        """(True, fn(*args)), or (False, None) when no answer came within `timeout` seconds."""
        self.conn.send((fn, args))
        if not self.conn.poll(timeout):
            return False, None
        ok, value = self.conn.recv()
        if not ok:
            raise value
        return True, value

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


_helper: _Helper | None = None
_helper_lock = threading.Lock()


@atexit.register
def shutdown_helper() -> None:
    """Stop the helper process (if one was started) so none outlives the interpreter."""
    global _helper
    with _helper_lock:
        helper, _helper = _helper, None
    if helper is not None:
        helper.kill()


def _run_in_worker(
    fn: Callable[..., bool], args: tuple[Any, ...], budget_s: float, warmup: Callable[[], Any] | None
) -> bool | None:
    """Off the main thread there is no SIGALRM: run in a helper process and kill it on overrun.
    One call at a time (the lock): the helper answers requests in order. `warmup` runs once in a
    fresh helper, unbudgeted (imports, grammars), so the first item's budget is not spent on it."""
    global _helper
    with _helper_lock:
        if _helper is None:
            fresh = _Helper()
            try:
                fresh.call(warmup or _nothing, (), None)  # interpreter start outside the item's budget
            except BaseException:
                fresh.kill()
                raise
            _helper = fresh
        done, value = _helper.call(fn, args, budget_s)
        if not done:
            _helper.kill()
            _helper = None
            return None
    return bool(value)


def _nothing() -> bool:
    return True


def call_with_budget(
    fn: Callable[..., bool],
    args: tuple[Any, ...],
    budget_s: float,
    *,
    warmup: Callable[[], Any] | None = None,
) -> bool | None:
    """fn(*args), or None if it ran longer than budget_s seconds. fn, args and warmup must be
    picklable (module-level functions) for the off-main-thread path."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        return _run_with_alarm(fn, args, budget_s)
    return _run_in_worker(fn, args, budget_s, warmup)
