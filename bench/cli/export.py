"""``hwnas export optuna``: run and compare folders as optuna studies, for optuna-dashboard.

One multi-objective study per problem x strategy x seed: its directions are the objectives'
(``maximize`` for accuracy, ``minimize`` for latency...), each unique evaluation is a completed
trial whose values are the objectives in natural units, whose parameters are the space's genes
(one categorical distribution per gene, as the ``optuna:*`` strategies use) and whose user
attributes are the architecture string, its public-table index and step; a constraint violation
is the trial's constraint (optuna >= 5) or a user attribute. The study's user attributes say the
problem, strategy, seed and where it came from, so ``study.best_trials`` is the run's feasible
Pareto front and ``optuna-dashboard sqlite:///runs.db`` browses it.

Studies are named ``PROBLEM/STRATEGY/seedSEED`` (for a compare folder, its problem names and
strategy labels). The storage is an SQLite file written whole into a temporary sibling and
renamed into place: a reader sees the old file or the new one. An existing file is refused
unless ``--overwrite`` (which replaces it; studies are never appended to someone's storage).

Run folders are read with :func:`hwnas.bench.core.read_run` (checksums checked) and compare
folders with the report's reader (:func:`hwnas.bench.report.collect.collect`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pandas as pd

from hwnas.search import HwnasError, get_space

from ..core import DIRECTIONS, read_run
from .app import ListingGroup

__all__ = ["export", "export_optuna", "ExportedRun", "runs_of", "sqlite_path"]


@dataclass
class ExportedRun:
    """One run to export: its study name, setup and evaluations."""

    problem: str
    strategy: str
    seed: int
    space: str
    objectives: list[str]
    directions: list[str]
    evaluations: pd.DataFrame
    attrs: dict[str, Any]

    @property
    def study_name(self) -> str:
        return f"{self.problem}/{self.strategy}/seed{self.seed}"


def sqlite_path(storage: str) -> Path:
    """The file of an ``sqlite:///PATH`` storage URL.

    Raises:
        HwnasError: another URL (the export writes a file and renames it into place, which only
            a file-backed storage allows).
    """
    prefix = "sqlite:///"
    if (not isinstance(storage, str) or not storage.startswith(prefix) or storage == prefix
            or storage[len(prefix):].split("?")[0] == ":memory:"):
        raise HwnasError(f"--storage {storage!r}: valid: sqlite:///PATH (a file the export "
                         "writes whole, then renames into place)")
    return Path(storage[len(prefix):])


def _is_optuna_storage(path: Path) -> bool:
    """Whether ``path`` is an SQLite file with optuna's tables (what --overwrite may replace)."""
    import sqlite3

    try:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return False
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE "
                                               "type='table'")}
        finally:
            con.close()
    except (OSError, sqlite3.Error):
        return False
    return {"studies", "trials", "version_info"} <= names


def _directions(objectives: Sequence[str], record: dict[str, Any]) -> list[str]:
    recorded = {o.get("name"): o.get("direction") for o in record.get("objectives", [])
                if isinstance(o, dict)}
    out = []
    for name in objectives:
        d = recorded.get(name) or DIRECTIONS.get(name)
        if d not in ("min", "max"):
            raise HwnasError(f"objective {name!r} has no recorded direction; valid: "
                             f"{', '.join(DIRECTIONS)} or a run.json that records it")
        out.append(d)
    return out


def _problem_name(config: dict[str, Any]) -> str:
    parts = [config.get("space"), config.get("task"), config.get("device")]
    return "-".join(str(p) for p in parts if p) or "problem"


def runs_of(folder: str | os.PathLike[str]) -> list[ExportedRun]:
    """The runs of a run folder (``run.json``) or a compare folder (``compare.json``).

    Raises:
        HwnasError: a folder that is neither, a run that is not intact, no finished run.
    """
    folder = Path(folder)
    if (folder / "compare.json").is_file():
        return _compare_runs(folder)
    if (folder / "run.json").is_file():
        record, ev = read_run(folder)
        c = record["config"]
        objectives = list(c["objectives"])
        return [ExportedRun(_problem_name(c), str(c["strategy"]), int(c["seed"]), c["space"],
                            objectives, _directions(objectives, record), ev,
                            {"source": str(folder.resolve()), "task": c.get("task"),
                             "device": c.get("device"),
                             "constraints": list(c.get("constraints") or [])})]
    raise HwnasError(f"{folder}: neither a search run (run.json) nor a compare folder "
                     "(compare.json)")


def _compare_runs(folder: Path) -> list[ExportedRun]:
    from ..report.collect import collect

    try:
        strategies = json.loads((folder / "compare.json").read_text())["config"]["strategies"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise HwnasError(f"{folder}: a corrupt compare folder: {e}") from None
    out = []
    for problem in collect([folder]):
        spec = dict(problem.spec)
        objectives = list(spec["objectives"])
        directions = _directions(objectives, {})
        for label, seed, ev in problem.runs:
            name = (strategies.get(label) or {}).get("name", label)
            out.append(ExportedRun(problem.name, label, int(seed), spec["space"], objectives,
                                   directions, ev,
                                   {"source": str(folder.resolve()), "strategy_name": name,
                                    "task": spec.get("task"), "device": spec.get("device"),
                                    "constraints": list(spec.get("constraints") or [])}))
    if not out:
        raise HwnasError(f"{folder}: a compare folder without a finished run")
    return out


def _add_study(optuna: Any, storage: Any, run: ExportedRun) -> int:
    from hwnas.search.strategies.peers_optuna import distributions, params_of

    space = get_space(run.space)
    dists = distributions(space)
    study = optuna.create_study(
        storage=storage, study_name=run.study_name,
        directions=["maximize" if d == "max" else "minimize" for d in run.directions])
    with contextlib.suppress(AttributeError), warnings.catch_warnings():
        # set_metric_names (optuna >= 3.2, "experimental"): the dashboard names the axes
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(run.objectives))
    for key, value in {"problem": run.problem, "strategy": run.strategy, "seed": run.seed,
                       "space": run.space, "objectives": run.objectives,
                       "directions": run.directions, **run.attrs}.items():
        study.set_user_attr(key, value)
    ev = run.evaluations
    new_api = hasattr(optuna.trial.Trial, "set_constraint")
    trials = []
    for row in ev.itertuples(index=False):
        r = row._asdict()
        arch = space.parse(str(r["arch"]))
        violation = float(r.get("violation", 0.0) or 0.0)
        index = r.get("index")
        attrs = {"arch": str(r["arch"]), "step": int(r["step"]),
                 "index": None if index is None or pd.isna(index) else int(index)}
        # optuna >= 5 keeps constraints on the trial (best_trials then counts only feasible
        # ones, as hwnas's front); before, the violation is a user attribute
        extra = ({"user_attrs": attrs, "constraints": {"violation": violation}} if new_api
                 else {"user_attrs": {**attrs, "violation": violation}})
        trials.append(optuna.trial.create_trial(
            params=params_of(space, arch), distributions=dists,
            values=[float(r[o]) for o in run.objectives], **extra))
    study.add_trials(trials)
    return len(trials)


def _unsynced(rdb: Any) -> None:
    """No fsync per transaction: optuna commits every trial, and the file is a temporary one
    that is synced once and renamed only when complete (a crash leaves no half storage)."""
    from sqlalchemy import event

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.close()

    event.listen(rdb.engine, "connect", pragmas)
    rdb.engine.dispose()  # connections opened before the listener are closed


def export_optuna(folders: Sequence[str | os.PathLike[str]], storage: str,
                  overwrite: bool = False) -> dict[str, int]:
    """Write every run of ``folders`` into a new SQLite optuna storage, atomically.

    Returns:
        study name -> trials written.

    Raises:
        HwnasError: a storage URL that is not ``sqlite:///PATH``, an existing storage without
            ``overwrite``, a folder that is not a run or compare folder, two studies of one
            name, optuna not installed.
    """
    from hwnas.search.strategies.peers import require

    optuna = require("optuna", "hwnas export optuna")
    target = sqlite_path(storage)
    if target.is_dir():
        raise HwnasError(f"{target} is a folder; valid: a file path for the SQLite storage")
    if target.exists() and not overwrite:
        raise HwnasError(f"{target} exists; give --overwrite to replace it (studies are never "
                         "appended to an existing storage)")
    if target.exists() and not _is_optuna_storage(target):
        # --overwrite replaces an earlier export, never a profile store or any other file
        raise HwnasError(f"{target} is not an optuna storage; --overwrite replaces only one "
                         "(an earlier export): choose another path")
    runs = [run for folder in folders for run in runs_of(folder)]
    names = [r.study_name for r in runs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise HwnasError(f"two runs would be study {twice[0]!r}; export those folders into "
                         "separate storages")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # SQLite creates the file; an empty one is not a database optuna accepts
    written: dict[str, int] = {}
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = None
    try:
        rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp}")
        _unsynced(rdb)
        for run in runs:
            written[run.study_name] = _add_study(optuna, rdb, run)
        rdb.engine.dispose()
        rdb = None
        with open(tmp, "rb+") as f:  # durable once, before it is renamed into place
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if rdb is not None:
            rdb.engine.dispose()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        optuna.logging.set_verbosity(level)
    return written


@click.group(cls=ListingGroup)
def export() -> None:
    """Export runs and compare folders to other tools' formats."""


@export.command("optuna")
@click.argument("folders", nargs=-1, required=True, metavar="RUN_OR_COMPARE_DIR...",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--storage", required=True, metavar="sqlite:///PATH",
              help="The optuna storage to write (an SQLite file).")
@click.option("--overwrite", is_flag=True, default=False,
              help="Replace an existing storage file (never appended to).")
def optuna_command(folders: tuple[Path, ...], storage: str, overwrite: bool) -> None:
    """Write run or compare folders to an optuna storage: one multi-objective study per
    problem x strategy x seed (open it with optuna-dashboard)."""
    written = export_optuna(folders, storage, overwrite)
    click.echo(f"wrote {len(written)} studies ({sum(written.values())} trials) to "
               f"{sqlite_path(storage)}; browse: optuna-dashboard {storage}")
