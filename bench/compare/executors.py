"""Where the runs of a grid run: in this process, on a local process pool, or on a Ray cluster.

Each executor runs :func:`hwnas.bench.compare.run_one` for every spec and returns its results
(in any order); a run whose worker died is reported as failed, never raised, so the rest of the
grid goes on. Runs never share a file: each writes its own folder.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from .run import run_one
from .spec import RunSpec
from .values import ConfigError, one_line

__all__ = ["RUNNERS", "Progress"]

Progress = Callable[[int, int, str], None]


def _run_serial(specs: list[RunSpec], out: str, data_dir: str | None,
                progress: Progress | None, **_: Any) -> list[dict[str, Any]]:
    results = []
    for i, spec in enumerate(specs):
        results.append(run_one(spec, out, data_dir))
        if progress:
            progress(i + 1, len(specs), spec.folder)
    return results


def _crashed(spec: RunSpec, error: BaseException) -> dict[str, Any]:
    from concurrent.futures.process import BrokenProcessPool

    why = ("its worker process died (killed, or out of memory)"
           if isinstance(error, BrokenProcessPool) else
           f"internal error {type(error).__name__}: {one_line(error)}")
    return {"run": spec.folder, "status": "failed", "error": why}


def _run_process(specs: list[RunSpec], out: str, data_dir: str | None,
                 progress: Progress | None, workers: int = 2, **_: Any) -> list[dict[str, Any]]:
    from .pool import guarded_pool, imap_unordered

    results = []
    with guarded_pool(max(1, min(workers, len(specs)))) as pool:
        for spec, result in imap_unordered(pool, run_one, specs, out, data_dir,
                                           on_crash=_crashed):
            results.append(result)
            if progress:
                progress(len(results), len(specs), spec.folder)
    return results


def _run_ray(specs: list[RunSpec], out: str, data_dir: str | None,
             progress: Progress | None, address: str | None = None,
             **_: Any) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("executor 'ray' needs Ray: pip install 'hwnas[ray]'") from None
    address = address or os.environ.get("RAY_ADDRESS")
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
        except ConnectionError as e:
            raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {e}") from None
    try:
        remote = ray.remote(num_cpus=1)(run_one)
        pending = {remote.remote(s, out, data_dir): s for s in specs}
        results = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        results.append(ray.get(ref))
                    except Exception as e:  # a task whose worker died, or that raised
                        results.append(_crashed(spec, e))
                    if progress:
                        progress(len(results), len(specs), spec.folder)
        except BaseException:  # Ctrl-C: what is queued or running on the cluster is ours
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return results
    finally:
        if started:
            ray.shutdown()


#: executor name -> ``runner(specs, out, data_dir, progress, workers=..., address=...)``
RUNNERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "serial": _run_serial, "process": _run_process, "ray": _run_ray}
