"""Live accuracy: a metric source that trains each architecture it is asked about, for real.

:class:`LiveAccuracy` answers "accuracy of these architectures" by training them on an
:class:`~hwnas.bench.live.datasets.ImageSplits` task with a
:class:`~hwnas.bench.live.training.TrainRecipe` (see :mod:`hwnas.bench.live.training` for the
recipe, early stopping and weight inheritance). A search therefore runs unchanged whether its
accuracy comes from a public table or from training now.

Results are cached on disk, one JSON file per (space, architecture, dataset, recipe key), written
atomically, so a rerun or a second search with the same recipe trains nothing twice. Training
runs serially in this process, on a spawn process pool, or as Ray tasks: the design's answer to
"live evaluation outgrows one machine" is an existing engine (Ray), not a home-made scheduler.

Example:
    >>> from hwnas.bench.live.datasets import get_dataset
    >>> from hwnas.search import get_space
    >>> space = get_space("nb201")
    >>> source = LiveAccuracy(space, get_dataset("digits"), TrainRecipe(epochs=2, width=0.25))
    >>> source.evaluate([space.sample(0)])  # doctest: +SKIP
    array([61.4])
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.latency import atomic_write_text
from hwnas.search import Architecture, HwnasError, MetricSource, Space, cache_root

from .datasets import ImageSplits
from .training import EarlyStopping, TrainRecipe, TrainResult, train_architecture

__all__ = ["LiveAccuracy", "LIVE_EXECUTORS", "default_live_cache"]

LIVE_EXECUTORS = ("serial", "process", "ray")
Progress = Callable[[str, dict], None]


def default_live_cache() -> Path:
    """``<cache root>/live`` (the cache root is ``$HWNAS_CACHE``, else ``~/.cache/hwnas``)."""
    return cache_root() / "live"


def _atomic_save(state: Mapping[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)


def _train_job(space: Space, arch: Architecture, splits: ImageSplits, recipe: TrainRecipe,
               init_state: Mapping[str, torch.Tensor] | None,
               early_stopping: EarlyStopping | None, keep_state: bool,
               threads: int | None) -> TrainResult:
    """One training, in whichever process runs it (a module-level function, so it pickles)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return train_architecture(space, arch, splits, recipe, init_state=init_state,
                                  early_stopping=early_stopping, keep_state=keep_state)
    finally:
        torch.set_num_threads(before)


class LiveAccuracy(MetricSource):
    """Validation accuracy (percent) after training each architecture with ``recipe``.

    Args:
        space: the search space (its ``build`` makes the networks).
        splits: the task; its ``name`` is part of the cache key.
        recipe: how to train; its :meth:`~TrainRecipe.key` is part of the cache key.
        cache_dir: folder of cached results (default :func:`default_live_cache`); ``None``
            there and ``cache=False`` here disables it.
        early_stopping: stop runs that cannot reach the k-th best (stopped runs report the
            accuracy they reached, a pessimistic value that keeps them out of the top k).
        inherit: start each run from a parent's weights: ``True`` takes the parent from
            :meth:`set_parents` if given, else the first one-edit neighbour
            (``space.neighbours``) evaluated earlier with weights to give; ``False`` trains
            from scratch. With the cache on, trained weights are saved next to each result
            (``.pt``, a few MB each) so a rerun picks the same parents and hits the cache.
        executor: ``serial``, ``process`` (spawn pool of ``workers``) or ``ray``.
        report: ``val`` (what a search should see) or ``test``.
        threads: torch threads per training (1: deterministic and polite on shared machines).
        progress: ``f(arch_string, record)`` after each training or cache hit.

    Attributes (learned state, for reports): ``trained_``, ``cache_hits_``, ``train_seconds_``,
    ``epochs_run_``, ``epochs_saved_``, ``stopped_``, ``inherited_runs_``, ``records_``.
    """

    unit = "%"

    def __init__(self, space: Space, splits: ImageSplits, recipe: TrainRecipe | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, *, cache: bool = True,
                 early_stopping: EarlyStopping | None = None, inherit: bool = False,
                 executor: str = "serial", workers: int = 2, ray_address: str | None = None,
                 report: str = "val", threads: int | None = 1, max_states: int = 256,
                 progress: Progress | None = None):
        super().__init__()
        if executor not in LIVE_EXECUTORS:
            from hwnas.search import UnknownNameError

            raise UnknownNameError("executor", executor, LIVE_EXECUTORS)
        if report not in ("val", "test"):
            raise HwnasError(f"report={report!r}; valid: val, test")
        if workers < 1:
            raise HwnasError(f"workers={workers}; must be >= 1")
        self.space, self.splits = space, splits
        self.recipe = recipe or TrainRecipe()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_live_cache()
        self.cache, self.early_stopping, self.inherit = cache, early_stopping, inherit
        self.executor, self.workers, self.ray_address = executor, workers, ray_address
        self.report, self.threads, self.max_states = report, threads, max_states
        self.progress = progress
        self.name = f"accuracy:live:{splits.name}"
        self.trained_ = self.cache_hits_ = self.epochs_run_ = self.epochs_saved_ = 0
        self.stopped_ = self.inherited_runs_ = 0
        self.train_seconds_ = 0.0
        self.records_: list[dict] = []
        self._parents: dict[Architecture, Architecture] = {}
        # Trained weights for inheritance, oldest dropped first (they are small but many).
        self._states: OrderedDict[Architecture, dict[str, torch.Tensor]] = OrderedDict()
        # Every architecture evaluated so far -> the parent its result was keyed by (the
        # candidates for inheritance, and where their saved weights are).
        self._evaluated: dict[Architecture, Architecture | None] = {}
        self._pool: Executor | None = None
        self._ray_started = False

    # ------------------------------------------------------------------ parents
    def set_parents(self, parents: Mapping[Architecture, Architecture]) -> None:
        """Tell the source which architecture each child was mutated from (the strategy knows)."""
        self._parents.update(parents)

    def _has_state(self, arch: Architecture) -> bool:
        if arch in self._states:
            return True
        return (self.cache and arch in self._evaluated
                and self._state_path(arch, self._evaluated[arch]).is_file())

    def _state(self, arch: Architecture) -> dict[str, torch.Tensor]:
        if arch in self._states:
            return self._states[arch]
        return torch.load(self._state_path(arch, self._evaluated[arch]), weights_only=True)

    def _parent(self, arch: Architecture) -> Architecture | None:
        """The architecture whose weights ``arch`` starts from, or ``None``.

        Only architectures evaluated before this one count, in a fixed order, and a cached
        result keeps its weights on disk: the same search picks the same parents whether its
        results come from training or from the cache, so reruns are identical.
        """
        if not self.inherit:
            return None
        given = self._parents.get(arch)
        for n in ([given] if given is not None else []) + self.space.neighbours(arch):
            if n in self._evaluated and self._has_state(n):
                return n
        return None

    # ------------------------------------------------------------------ cache
    def _path(self, arch: Architecture, parent: Architecture | None) -> Path:
        text = self.space.format(arch)
        name = hashlib.sha1(text.encode()).hexdigest()[:20]
        if parent is not None:  # an inherited run depends on its parent: its own entry
            name += "-from-" + hashlib.sha1(self.space.format(parent).encode()).hexdigest()[:12]
        return (self.cache_dir / self.space.name / self.splits.name / self.recipe.key()
                / f"{name}.json")

    def _state_path(self, arch: Architecture, parent: Architecture | None) -> Path:
        return self._path(arch, parent).with_suffix(".pt")

    def _load(self, arch: Architecture, parent: Architecture | None) -> dict | None:
        if not self.cache:
            return None
        path = self._path(arch, parent)
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):  # missing or half-written by a crashed run: retrain
            return None
        if rec.get("arch") != self.space.format(arch):
            return None
        if rec.get("stopped_early") and self.early_stopping is None:
            return None  # a stopped run's accuracy is not the recipe's final accuracy
        return rec

    def _store(self, arch: Architecture, parent: Architecture | None, rec: dict) -> None:
        if self.cache:
            path = self._path(arch, parent)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(rec, indent=1) + "\n")

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        values: dict[Architecture, float] = {}
        todo: list[tuple[Architecture, Architecture | None, dict | None]] = []
        hits: list[tuple[Architecture, Architecture | None]] = []
        for a in dict.fromkeys(archs):
            parent = self._parent(a)
            rec = self._load(a, parent)
            if rec is not None:
                self.cache_hits_ += 1
                self._account(a, rec, hit=True)
                values[a] = rec[f"{self.report}_accuracy"]
                hits.append((a, parent))
            else:
                todo.append((a, parent, self._state(parent) if parent is not None else None))
        for a, parent, rec in self._run(todo):
            values[a] = rec[f"{self.report}_accuracy"]
            self._evaluated[a] = parent
        # Parents come only from earlier batches: the order of a batch does not matter.
        self._evaluated.update(hits)
        return np.array([values.get(a, np.nan) for a in archs], dtype=np.float64)

    def _run(self, todo: list) -> list[tuple[Architecture, Architecture | None, dict]]:
        if not todo:
            return []
        keep = self.inherit
        jobs = [(self.space, a, self.splits, self.recipe, state, self.early_stopping, keep,
                 self.threads) for a, _, state in todo]
        if self.executor == "serial" or len(todo) == 1:
            results = [_train_job(*job) for job in jobs]
        elif self.executor == "process":
            results = list(self._process_pool().map(_train_job, *zip(*jobs, strict=True)))
        else:
            results = self._run_ray(jobs)
        out = []
        for (a, parent, _), res in zip(todo, results, strict=True):
            rec = {"arch": self.space.format(a), "space": self.space.name,
                   "dataset": self.splits.name, "recipe": asdict(self.recipe),
                   "recipe_key": self.recipe.key(),
                   "parent": self.space.format(parent) if parent is not None else None,
                   **res.record()}
            self._store(a, parent, rec)
            self.trained_ += 1
            self.train_seconds_ += res.seconds
            if res.inherited:
                self.inherited_runs_ += 1
            if keep and res.state_dict is not None:
                if self.cache:  # a rerun's children inherit from these same weights
                    _atomic_save(res.state_dict, self._state_path(a, parent))
                self._states[a] = res.state_dict
                while len(self._states) > self.max_states:
                    self._states.popitem(last=False)
            self._account(a, rec, hit=False)
            out.append((a, parent, rec))
        return out

    def _account(self, arch: Architecture, rec: dict, hit: bool) -> None:
        self.epochs_run_ += 0 if hit else rec["epochs_run"]
        if rec.get("stopped_early"):
            self.stopped_ += 1
            self.epochs_saved_ += 0 if hit else rec["epochs_planned"] - rec["epochs_run"]
        elif self.early_stopping is not None:
            self.early_stopping.finish(rec.get("val_curve") or [rec["val_accuracy"]])
        self.records_.append({**{k: v for k, v in rec.items() if k != "recipe"},
                              "cache_hit": hit})
        if self.progress is not None:
            self.progress(rec["arch"], rec)

    def _process_pool(self) -> Executor:
        if self._pool is None:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # spawn: workers start clean (no inherited torch threads or open sessions)
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=mp.get_context("spawn"))
        return self._pool

    def _run_ray(self, jobs: list[tuple]) -> list[TrainResult]:
        try:
            import ray
        except ImportError:
            raise HwnasError("executor 'ray' needs Ray: pip install 'hwnas[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=self.ray_address or os.environ.get("RAY_ADDRESS"),
                     ignore_reinit_error=True, log_to_driver=False)
            self._ray_started = True
        remote = ray.remote(num_cpus=self.threads or 1)(_train_job)
        splits = ray.put(self.splits)  # one copy of the data in the object store
        refs = [remote.remote(j[0], j[1], splits, *j[3:]) for j in jobs]
        return list(ray.get(refs))

    def summary(self) -> dict[str, Any]:
        """What the run record reports: cost and savings of live training."""
        return {"source": self.name, "recipe": asdict(self.recipe),
                "recipe_key": self.recipe.key(), "trained": self.trained_,
                "cache_hits": self.cache_hits_, "train_seconds": self.train_seconds_,
                "epochs_run": self.epochs_run_, "epochs_saved": self.epochs_saved_,
                "stopped_early": self.stopped_, "inherited_runs": self.inherited_runs_,
                "cache_dir": str(self.cache_dir) if self.cache else None}

    def close(self) -> None:
        """Shut the process pool (and a Ray runtime this source started) down."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._ray_started:
            import ray

            ray.shutdown()
            self._ray_started = False

    def __enter__(self) -> LiveAccuracy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
