"""``hwnas accuracy adapt``: a predicted accuracy table for a new task from a few trained shots.

``adapt`` reads the accuracies of K architectures trained on the new task, meta-trains the
accuracy predictor on the source tasks (the accuracy columns of the space's public table), adapts
it to the shots and writes ``index``, ``arch``, ``accuracy`` for every architecture of the table.
:class:`hwnas.meta.PredictedAccuracy` reads that file back as a metric source.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from hwnas.search import TableError, UnknownNameError, cache_root, list_spaces

from .inputs import read_shots, refuse_same_file
from .options import META_STEPS, SEED, SPACE, InFile, NameList, OutFile
from .ui import progress

__all__ = ["accuracy"]

#: bump when the meta-training changes, so cached predictors are retrained
CACHE_VERSION = "1"


def _tables(space_name: str):
    from hwnas.search.tables.load import load_tables

    if space_name not in list_spaces():
        raise UnknownNameError("space", space_name, list_spaces())
    return load_tables(space_name)


def _context(tables, space_name: str, source_tasks: list[str] | None):
    import numpy as np

    from hwnas.meta.accuracy_features import AccuracyFeatures
    from hwnas.meta.encoders import onehot_features, structure_features

    if not tables.tasks:
        raise TableError(f"{space_name}: the public table has no accuracy columns to learn from")
    if source_tasks:
        sources = list(source_tasks)  # parsed by NameList: at least one, each once
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
@click.option("--space", "space_name", required=True, type=SPACE, help="Search space (nb201).")
@click.option("--shots", "shots_file", type=InFile(), required=True,
              help="CSV with index (or arch) and accuracy (0..100 %) columns.")
@click.option("--out", type=OutFile(), required=True,
              help="The predicted accuracy table (not the --shots file).")
@click.option("--source-tasks", type=NameList(), default=None,
              help="Comma-separated accuracy columns to learn "
              "from (default: every column of the space's table). Leave out the new task's own "
              "dataset.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--algo", type=click.Choice(["ridge", "maml", "metasgd"]), default="ridge",
              show_default=True, help="Head adaptation while meta-training.")
@click.option("--meta-steps", type=META_STEPS, default=150, show_default=True)
def adapt(space_name: str, shots_file: Path, out: Path, source_tasks: list[str] | None,
          seed: int, algo: str, meta_steps: int) -> None:
    """Predict the accuracy of every architecture of the table from trained shots."""
    import numpy as np
    import pandas as pd

    from hwnas.latency import atomic_write_text
    from hwnas.meta.accuracy import MIN_ACCURACY_SHOTS, AccuracyTask, MetaAccuracyPredictor

    refuse_same_file(shots_file, out, "--shots")
    tables = _tables(space_name)
    # the shots first: a bad file is refused before the source tasks are featurised
    idx, acc = read_shots(shots_file, tables, "accuracy")
    tables, feats = _context(tables, space_name, source_tasks)
    if len(idx) < MIN_ACCURACY_SHOTS:
        raise TableError(f"{shots_file}: {len(idx)} shots; adaptation needs at least "
                         f"{MIN_ACCURACY_SHOTS}")
    meta = MetaAccuracyPredictor(feats, algo=algo, seed=seed, meta_steps=meta_steps)
    tasks = [AccuracyTask(s, feats.source_accuracy[:, j], feats.hidden_for(s))
             for j, s in enumerate(feats.sources)]
    # cached as a checked .npz (never unpickled), like the latency predictor: a corrupt or
    # foreign entry is retrained, an unwritable cache costs the next run the training only
    key = hashlib.sha256(json.dumps([space_name, list(feats.sources), seed, algo, meta_steps,
                                     CACHE_VERSION]).encode()).hexdigest()[:16]
    path = cache_root() / "accuracy_meta" / f"{space_name}-{algo}-s{seed}-{key}.npz"
    with progress(f"meta-training on {len(tasks)} source tasks") as advance:
        meta.meta_fit(tasks, progress=lambda done, total: advance(done, total, ""), cache=path)
    pred = meta.adapt(idx, acc)
    every = np.arange(len(tables))
    frame = pd.DataFrame({"index": every, "arch": [str(a) for a in tables.archs],
                          "accuracy": pred.predict(every)})
    atomic_write_text(out, frame.to_csv(index=False))
    top = np.argsort(pred.weights_)[::-1][:2]
    click.echo(f"wrote {out}: predicted accuracy of {len(frame)} {space_name} architectures from "
               f"{len(idx)} shots and {len(feats.sources)} source tasks (main heads: "
               + ", ".join(f"{pred.candidates_[i]} {pred.weights_[i]:.2f}" for i in top) + ")")
