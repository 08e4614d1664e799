"""A process pool that stops when its parent does: the local executor of ``hwnas compare``.

:class:`concurrent.futures.ProcessPoolExecutor` alone has two faults for long grids. Leaving its
``with`` block on Ctrl-C waits for every queued task (the grid's remaining runs), and killing the
parent leaves the workers running, orphaned, writing run folders nobody reads. Here:

- on ``KeyboardInterrupt`` (or ``SIGTERM``/``SIGHUP``, turned into one while the pool runs) the
  pending futures are cancelled and the workers terminated (then killed if they linger), so the
  parent returns within about a second; ``SIGTERM`` is then re-delivered, so the process still
  ends by that signal as it would have without the pool;
- workers ask Linux to kill them when their parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``,
  see prctl(2)); elsewhere a watchdog thread polls ``os.getppid()``. Even a ``SIGKILL``ed parent
  leaves no worker behind;
- workers ignore ``SIGINT``: Ctrl-C reaches the whole process group, and the parent, which
  decides, terminates them, rather than each worker reporting an interrupted run.

A run killed this way leaves an unfinished folder, which a resumed grid reruns from its seed.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

__all__ = ["guarded_pool", "imap_unordered"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _worker_init(parent: int) -> None:
    """Runs first in every worker: die with ``parent``, leave Ctrl-C to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)  # the running program, libc included
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                         name="hwnas-parent-watchdog").start()


class _Stopped(KeyboardInterrupt):
    """A stop signal (``SIGTERM``, ``SIGHUP``) received while the pool ran."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued, end the workers now (terminate, then kill after 2 s)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 2.0
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)


@contextlib.contextmanager
def guarded_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A spawn-context process pool whose workers end with the ``with`` block on any exception
    (Ctrl-C included) and with the parent process, however it dies."""
    handlers: dict[int, Any] = {}
    received: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        if received:  # already stopping: a second signal must not interrupt the clean-up
            return
        received.append(signum)
        raise _Stopped(signum)

    # signal handlers can only be set from the main thread, and a handler the caller installed
    # (or SIG_IGN) is theirs to keep
    if threading.current_thread() is threading.main_thread():
        for s in _STOP_SIGNALS:
            if signal.getsignal(s) is signal.SIG_DFL:
                handlers[s] = signal.signal(s, stop)
    # spawn: workers start clean (no inherited threads or open sessions from the parent)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        for s, old in handlers.items():
            signal.signal(s, old)
        if received:  # end the way the signal would have ended us, now that the workers are gone
            signal.raise_signal(received[0])


def imap_unordered(pool: ProcessPoolExecutor, fn: Callable[..., Any], items: list[Any],
                   *args: Any, on_crash: Callable[[Any, BaseException], Any]
                   ) -> Iterator[tuple[Any, Any]]:
    """``(item, fn(item, *args))`` as each finishes; a task whose worker died (killed, out of
    memory) or that raised yields ``(item, on_crash(item, error))`` instead, so one bad run does
    not take the rest of the grid with it."""
    pending: dict[Future[Any], Any] = {pool.submit(fn, item, *args): item for item in items}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            item = pending.pop(fut)
            try:
                result = fut.result()
            except Exception as e:  # BrokenProcessPool included: the worker died
                result = on_crash(item, e)
            yield item, result
