"""``hwnas accuracy adapt``: a predicted accuracy table for a new task from a few trained shots.

``adapt`` reads the accuracies of K architectures trained on the new task, meta-trains the
accuracy predictor on the source tasks (the accuracy columns of the space's public table), adapts
it to the shots and writes ``index``, ``arch``, ``accuracy`` for every architecture of the table.
:class:`hwnas.meta.PredictedAccuracy` reads that file back as a metric source.
"""

from __future__ import annotations

from pathlib import Path

import click

from hwnas.search import TableError, UnknownNameError, list_spaces

__all__ = ["accuracy"]


def _context(space_name: str, source_tasks: str | None):
    import numpy as np

    from hwnas.meta.accuracy_features import AccuracyFeatures
    from hwnas.meta.encoders import onehot_features, structure_features
    from hwnas.search.tables.load import load_tables

    if space_name not in list_spaces():
        raise UnknownNameError("space", space_name, list_spaces())
    tables = load_tables(space_name)
    if not tables.tasks:
        raise TableError(f"{space_name}: the public table has no accuracy columns to learn from")
    if source_tasks:
        sources = list(dict.fromkeys(s.strip() for s in source_tasks.split(",") if s.strip()))
        for s in sources:
            tables.check_task(s)
    else:
        sources = list(tables.tasks)
    acc = tables.accuracy[sources].to_numpy(np.float64)
    bad = [s for s, ok in zip(sources, np.isfinite(acc).all(axis=0), strict=True) if not ok]
    if bad:
        raise TableError(f"{space_name}: source task(s) with missing accuracies: {', '.join(bad)}"
                         "; choose others with --source-tasks")
    feats = AccuracyFeatures(acc, onehot_features(tables.space, tables.archs),
                             structure_features(tables.space, tables.archs), sources)
    return tables, feats


@click.group()
def accuracy() -> None:
    """Predict a new task's accuracy table from a few trained architectures."""


@accuracy.command()
@click.option("--space", "space_name", required=True, help="Search space (nb201).")
@click.option("--shots", "shots_file", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="CSV with index (or arch) and accuracy columns.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--source-tasks", default=None, help="Comma-separated accuracy columns to learn "
              "from (default: every column of the space's table). Leave out the new task's own "
              "dataset.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--algo", type=click.Choice(["ridge", "maml", "metasgd"]), default="ridge",
              show_default=True, help="Head adaptation while meta-training.")
@click.option("--meta-steps", type=click.IntRange(min=1), default=150, show_default=True)
def adapt(space_name: str, shots_file: Path, out: Path, source_tasks: str | None, seed: int,
          algo: str, meta_steps: int) -> None:
    """Predict the accuracy of every architecture of the table from trained shots."""
    import numpy as np
    import pandas as pd

    from hwnas.latency import atomic_write_text
    from hwnas.meta.accuracy import MIN_ACCURACY_SHOTS, AccuracyTask, MetaAccuracyPredictor

    from .cli import _progress

    tables, feats = _context(space_name, source_tasks)
    idx, acc = _read_shots(shots_file, tables)
    if len(idx) < MIN_ACCURACY_SHOTS:
        raise TableError(f"{shots_file}: {len(idx)} shots; adaptation needs at least "
                         f"{MIN_ACCURACY_SHOTS}")
    meta = MetaAccuracyPredictor(feats, algo=algo, seed=seed, meta_steps=meta_steps)
    tasks = [AccuracyTask(s, feats.source_accuracy[:, j], feats.hidden_for(s))
             for j, s in enumerate(feats.sources)]
    with _progress(f"meta-training on {len(tasks)} source tasks") as advance:
        meta.meta_fit(tasks, progress=lambda done, total: advance(done, total, ""))
    pred = meta.adapt(idx, acc)
    every = np.arange(len(tables))
    frame = pd.DataFrame({"index": every, "arch": [str(a) for a in tables.archs],
                          "accuracy": pred.predict(every)})
    atomic_write_text(out, frame.to_csv(index=False))
    top = np.argsort(pred.weights_)[::-1][:2]
    click.echo(f"wrote {out}: predicted accuracy of {len(frame)} {space_name} architectures from "
               f"{len(idx)} shots and {len(feats.sources)} source tasks (main heads: "
               + ", ".join(f"{pred.candidates_[i]} {pred.weights_[i]:.2f}" for i in top) + ")")


def _read_shots(path: Path, tables) -> tuple:
    import numpy as np
    import pandas as pd

    from hwnas.search import ArchitectureError, NotInTableError

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise TableError(f"shots file {path} not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise TableError(f"cannot read shots file {path}: {str(e).splitlines()[0]}") from None
    if "accuracy" not in frame.columns or not ({"index", "arch"} & set(frame.columns)):
        raise TableError(f"shots file {path} needs an 'index' (or 'arch') column and an "
                         f"'accuracy' column; it has {', '.join(map(str, frame.columns))}")
    acc = pd.to_numeric(frame["accuracy"], errors="coerce").to_numpy(np.float64)
    bad = int((~np.isfinite(acc)).sum())
    if bad:
        raise TableError(f"shots file {path}: {bad} accuracies are missing or not numbers")
    if "index" in frame.columns:
        idx = pd.to_numeric(frame["index"], errors="coerce").to_numpy(np.float64)
        if np.isnan(idx).any() or (idx != np.round(idx)).any():
            raise TableError(f"shots file {path}: the index column must hold integers")
        idx = idx.astype(np.int64)
        outside = idx[(idx < 0) | (idx >= len(tables))]
        if outside.size:
            raise NotInTableError(f"shots file {path}: index {int(outside[0])} outside the "
                                  f"{tables.space.name} table (valid: 0..{len(tables) - 1})")
    else:
        try:
            idx = np.array([tables.index_of(tables.space.parse(str(a))) for a in frame["arch"]],
                           dtype=np.int64)
        except ArchitectureError as e:
            raise TableError(f"shots file {path}: {e}") from None
    if len(set(idx.tolist())) != len(idx):
        raise TableError(f"shots file {path}: an architecture appears more than once")
    return idx, acc
