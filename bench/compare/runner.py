"""A whole grid: check it, run (or resume) every run, write the manifest and the scores.

A failed run does not stop the grid, but :func:`run_compare` raises :class:`RunsFailedError`
(carrying the manifest) once the others are done and written, so no caller mistakes a grid with
failed runs for a finished one. The combined tables are written by the parent once all runs are
done (no database for workers to lock).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hwnas.search import HwnasError

from ..core.runs import check_out_folder, config_differences, read_run
from .executors import RUNNERS, Progress
from .grid import check_grid
from .run import run_folder
from .spec import CompareConfig, RunSpec
from .values import EXECUTORS, ConfigError, is_int, one_line, show

__all__ = ["RunsFailedError", "run_compare"]


class RunsFailedError(HwnasError):
    """Some runs of a grid failed (the others finished and were written and scored).

    Attributes:
        manifest: what :func:`run_compare` wrote to ``compare.json``; ``manifest["failed"]`` lists
            ``{"run": folder, "error": message}`` for every failed run.
    """

    def __init__(self, manifest: dict[str, Any], path: Path):
        self.manifest = manifest
        failed = manifest["failed"]
        first = failed[0]
        super().__init__(f"{len(failed)} of {len(manifest['runs'])} runs failed (first: "
                         f"{first['run']}: {first['error']}); the other runs are written; "
                         f"every failure is in {path}")


def run_compare(config: CompareConfig, out: str | os.PathLike[str], data_dir: str | None = None,
                executor: str | None = None, workers: int | None = None,
                progress: Progress | None = None, score: bool = True) -> dict[str, Any]:
    """Check the whole grid, then run (or resume) every run of ``config`` into ``out`` and write
    the combined tables.

    Args:
        config: from :func:`hwnas.bench.compare.load_config`.
        out: output folder; runs go to ``out/runs/...``.
        data_dir: the public tables' folder (default ``HWNAS_DATA``, else the bundled copy).
        executor, workers: override the config's (``process``, ``ray`` or ``serial``).
        progress: ``progress(done, total, run)`` after every run.
        score: also write ``evaluations.parquet`` and ``indicators.parquet``.

    Returns:
        The manifest written to ``out/compare.json``: runs with their status and timings,
        ``counts`` per status, ``failed`` (empty here: see Raises).

    Raises:
        ConfigError: a grid that cannot run (:func:`hwnas.bench.compare.check_grid`); nothing
            is run or written.
        RunsFailedError: some runs failed; the others ran, and ``compare.json`` and the scores
            of the finished runs are written; ``error.manifest`` is the manifest.
    """
    from hwnas.latency import atomic_write_text

    executor = executor or config.executor
    if executor not in RUNNERS:
        raise ConfigError(f"unknown executor {show(executor)}; valid: {', '.join(EXECUTORS)}")
    if workers is not None and (not is_int(workers) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1, got {show(workers)}")
    check_grid(config, data_dir)
    out = Path(out)
    check_out_folder(out, "compare.json")
    specs = config.runs()
    for spec in specs:
        _refuse_other_finished_run(run_folder(out, spec), spec)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = RUNNERS[executor](specs, str(out), data_dir, progress,
                                workers=workers or config.workers, address=config.ray_address)
    order = {s.folder: i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[r["run"]])
    manifest = {
        "config": asdict(config), "executor": executor,
        "runs": results, "seconds": round(time.perf_counter() - t0, 3),
        "counts": {k: sum(r["status"] == k for r in results)
                   for k in ("done", "skipped", "locked", "failed")},
        "failed": [{"run": r["run"], "error": r.get("error", "")} for r in results
                   if r["status"] == "failed"],
    }
    if score:
        from ..scoring import score_compare

        try:
            manifest["scoring"] = score_compare(config, out, data_dir)
        except HwnasError as e:
            if not manifest["failed"]:
                raise
            # the failed runs are the news; scoring what is left can fail because of them
            manifest["scoring_error"] = one_line(e)
    atomic_write_text(out / "compare.json", json.dumps(manifest, indent=2, default=str) + "\n")
    if manifest["failed"]:
        raise RunsFailedError(manifest, out / "compare.json")
    return manifest


def _refuse_other_finished_run(folder: Path, spec: RunSpec) -> None:
    """A finished, intact run of *another* configuration in a run's folder (the grid's problem
    given another device, say) is refused before anything runs: rerunning would replace it.
    Unfinished or damaged runs are rerun from their seed, as resuming does."""
    if not (folder / "run.json").is_file():
        return
    try:
        # the recorded config first: a run of this config (the usual resume) costs a JSON read,
        # and only a run of another one has its files checked (resuming checks them anyway)
        stored = json.loads((folder / "run.json").read_text()).get("config")
        diff = config_differences(stored, asdict(spec.config)) if isinstance(stored, dict) else []
        if diff:
            read_run(folder)  # damaged: rerun from its seed, as resuming does
    except (HwnasError, OSError, ValueError, TypeError, AttributeError):
        return
    if diff:
        raise ConfigError(f"{folder} holds a finished run made with other settings "
                          f"({', '.join(diff)} differ); choose another --out, or delete that "
                          "folder to rerun it")
