"""One run of a grid: its folder, its lock, whether it is finished, and running it.

A run is finished when the core's run-folder reader (:func:`hwnas.bench.core.read_run`, which
checks every file against the sha256 and size ``run.json`` records) accepts its folder and the
recorded config is the run's: the one rule the scores read by, so a run that resuming counts as
finished is one that scoring can read. Anything else is rerun from its seed, so a resumed grid
equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hwnas.search import HwnasError

from ..core import read_run
from ..problem import SearchConfig
from .grid import tables_for
from .spec import RunSpec
from .values import NAME_RULE, ConfigError, one_line

__all__ = ["is_finished", "locked", "run_folder", "run_one"]


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[bool]:
    """Hold ``folder/.lock`` exclusively (``fcntl.flock``); yields False when another process
    holds it, so two ``compare`` processes on one output folder never write the same run."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def run_folder(out: str | os.PathLike[str], spec: RunSpec) -> Path:
    """``out/spec.folder``, checked to resolve inside ``out`` (names are checked when the config
    is read; this guards against a spec built otherwise and against a planted symlink).

    Raises:
        ConfigError: a folder that would be outside ``out``.
    """
    root = Path(out)
    folder = root / spec.folder
    if not folder.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"run folder {spec.folder!r} resolves outside the output folder "
                          f"{root} (to {folder.resolve()}); problem names and strategy labels "
                          f"must be {NAME_RULE}")
    return folder


def is_finished(folder: Path, config: SearchConfig) -> bool:
    """Whether ``folder`` holds a complete run of exactly ``config``: the core's reader
    (:func:`hwnas.bench.core.read_run`) accepts it (its files are the ones ``run.json``
    describes) and its ``run.json`` records this config."""
    try:
        record, _ = read_run(folder)
        return record.get("config") == json.loads(json.dumps(asdict(config)))
    # HwnasError: refused by the reader; the others: a run.json edited by hand into a shape the
    # reader does not expect (``files`` a list, say). Either way not a finished run: rerun it
    except (HwnasError, OSError, ValueError, TypeError, AttributeError):
        return False


def run_one(spec: RunSpec, out: str, data_dir: str | None) -> dict[str, Any]:
    """Run one spec into ``out/spec.folder`` unless it is finished or locked by another process.

    Returns ``{"run": folder, "status": "done" | "skipped" | "locked" | "failed", ...}``; a
    failure is reported (with its message, one line), not raised, so the rest of the grid goes
    on.

    Raises:
        ConfigError: a run folder outside ``out`` (nothing is written or deleted then).
    """
    from ..problem import run_problem

    folder = run_folder(out, spec)
    if is_finished(folder, spec.config):
        return {"run": spec.folder, "status": "skipped"}
    with locked(folder) as mine:
        if not mine:
            return {"run": spec.folder, "status": "locked"}
        if is_finished(folder, spec.config):  # finished while we waited for the lock
            return {"run": spec.folder, "status": "skipped"}
        t0 = time.perf_counter()
        try:
            # an unfinished run's files are stale: run.json goes first, so a kill now leaves
            # nothing that reads as finished
            for name in ("run.json", "front.csv", "evaluations.csv"):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
            tables = tables_for(spec.config.space, spec.config.objectives, spec.config.task,
                                data_dir)
            record = run_problem(spec.config, tables, folder)
        except HwnasError as e:
            return {"run": spec.folder, "status": "failed", "error": one_line(e)}
        except OSError as e:  # a folder that cannot be written: a full disk, a file in the way
            where = e.filename or folder
            return {"run": spec.folder, "status": "failed",
                    "error": f"cannot write {where}: {e.strerror or one_line(e)}"}
        except Exception as e:  # a bug must not take the rest of the grid with it
            return {"run": spec.folder, "status": "failed",
                    "error": f"internal error {type(e).__name__}: {one_line(e)} (please report "
                             "it with the config)"}
        return {"run": spec.folder, "status": "done", "evaluations": record["evaluations"],
                "seconds": round(time.perf_counter() - t0, 3)}
