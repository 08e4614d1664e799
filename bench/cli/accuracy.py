"""``hwnas accuracy adapt``: a predicted accuracy table for a new task from a few trained shots.

``adapt`` reads the accuracies of K architectures trained on the new task, meta-trains the
accuracy predictor on the source tasks (the accuracy columns of the space's public table), adapts
it to the shots and writes ``index``, ``arch``, ``accuracy`` for every architecture of the table.
:class:`hwnas.meta.PredictedAccuracy` reads that file back as a metric source.

With cheap results of the new task (``--low-fidelity``: a column of the table or a CSV of
``index``/``arch`` + ``accuracy``, covering all or part of the space) or zero-cost proxies
(``--proxies``: computed for real on a dataset, or read from a CSV), the multi-fidelity predictor
(:class:`hwnas.meta.accuracy_multifidelity.MultiFidelityPredictor`) uses them beside the shots.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from hwnas.search import TableError, UnknownNameError, cache_root, list_spaces

from .app import ListingGroup
from .inputs import read_shots, refuse_same_file
from .options import META_STEPS, SEED, SPACE, InFile, NameList, OutFile, read_text
from .ui import progress

__all__ = ["accuracy", "proxy_table"]

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


def proxy_table(tables, n: int | None, seed: int = 0, dataset: str = "digits", progress=None):
    """SynFlow, jacob_cov and NASWOT of ``n`` seeded random architectures of the table (every one
    when ``n`` is None or covers it) on ``dataset``'s fixed 64-image training minibatch, cached
    under ``cache_root()/accuracy`` (a rerun resumes)."""
    import numpy as np

    from hwnas.bench.live.datasets import get_dataset
    from hwnas.bench.live.training import build_for_task
    from hwnas.meta.accuracy_proxies import cached_proxies, minibatch

    splits = get_dataset(dataset, seed=0)
    if n is None or n >= len(tables):
        idx, tag = np.arange(len(tables)), "all"
    else:
        idx, tag = np.sort(np.random.default_rng(seed).choice(len(tables), n, replace=False)), n
    path = (cache_root() / "accuracy"
            / f"proxies_{tables.space.name}_{splits.name}_b64s0_n{tag}_s{seed}.csv")
    return cached_proxies(path, lambda a: build_for_task(tables.space, a, splits),
                          [tables.archs[i] for i in idx], idx, minibatch(splits.train, 64, 0),
                          progress=progress)


def _low_fidelity(specs: tuple[str, ...], tables):
    """``(n, m)`` cheap accuracies (NaN where a file has no row) and the table columns used."""
    import numpy as np

    from hwnas.search.tables import read_values

    cols, names = [], []
    for spec in specs:
        if spec in tables.tasks:
            cols.append(tables.accuracy[spec].to_numpy(np.float64)), names.append(spec)
            continue
        path = Path(spec)
        if not path.is_file():
            raise TableError(f"--low-fidelity {spec!r}: neither an accuracy column of the "
                             f"{tables.space.name} table ({', '.join(tables.tasks)}) nor a file")
        read_text(path, "--low-fidelity")
        values = read_values(path, tables.space, ["accuracy"], tables.archs,
                             what="low-fidelity file")
        idx = (values.indices if values.indices is not None
               else np.array([tables.index_of(a) for a in values.archs], dtype=np.int64))
        col = np.full(len(tables), np.nan)
        col[idx] = values.values
        cols.append(col)
    return np.column_stack(cols), names


def _proxies(spec: str, n: int | None, seed: int, tables):
    """``(n_table, 3)`` proxies (NaN where not computed) from a dataset name or a CSV."""
    import numpy as np
    import pandas as pd

    from hwnas.bench.live.datasets import list_datasets
    from hwnas.meta.accuracy_proxies import PROXIES

    if spec in list_datasets():
        with progress(f"zero-cost proxies on {spec}") as advance:
            frame = proxy_table(tables, n, seed, spec,
                                progress=lambda done, total: advance(done, total, ""))
        frame = frame[["index", *PROXIES]]
    else:
        path = Path(spec)
        if not path.is_file():
            raise TableError(f"--proxies {spec!r}: neither a dataset ({', '.join(list_datasets())})"
                             " nor a file")
        read_text(path, "--proxies")
        try:
            frame = pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as e:
            raise TableError(f"--proxies {path}: {str(e).splitlines()[0]}") from None
        have = [p for p in PROXIES if p in frame.columns]
        if not have or "index" not in frame.columns:
            raise TableError(f"--proxies {path} needs an 'index' column and one of "
                             f"{', '.join(PROXIES)}")
        frame = frame[["index", *have]]
    idx = pd.to_numeric(frame["index"], errors="coerce").to_numpy()
    if not (np.isfinite(idx).all() and (idx == np.round(idx)).all()
            and ((idx >= 0) & (idx < len(tables))).all()):
        raise TableError(f"--proxies: indices must be whole numbers in 0..{len(tables) - 1}")
    vals = frame.drop(columns="index").apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    if np.isnan(vals).any() or np.isposinf(vals).any():
        raise TableError("--proxies: every proxy value must be a number (-inf: a degenerate "
                         "network)")
    out = np.full((len(tables), vals.shape[1]), np.nan)
    out[idx.astype(np.int64)] = vals
    return out


@click.group(cls=ListingGroup)
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
@click.option("--low-fidelity", "low_fidelity", multiple=True, metavar="COLUMN_OR_FILE",
              help="Cheap results of the new task (short training, a proxy task): a column of "
              "the table or a CSV with index (or arch) and accuracy, for all or some "
              "architectures. Repeatable. Table columns of its dataset leave the default sources.")
@click.option("--proxies", "proxies_spec", default=None, metavar="DATASET_OR_FILE",
              help="Zero-cost proxies (synflow, jacob_cov, naswot) as features: a dataset to "
              "compute them on (digits) or a CSV with index and proxy columns.")
@click.option("--proxy-archs", type=click.IntRange(min=5), default=1000, show_default=True,
              help="Architectures (seeded) the proxies are computed on; the rest are filled by "
              "regression (about 0.25 s per architecture on one core).")
def adapt(space_name: str, shots_file: Path, out: Path, source_tasks: list[str] | None,
          seed: int, algo: str, meta_steps: int, low_fidelity: tuple[str, ...],
          proxies_spec: str | None, proxy_archs: int) -> None:
    """Predict the accuracy of every architecture of the table from trained shots."""
    import numpy as np

    from hwnas.meta.accuracy import MIN_ACCURACY_SHOTS, AccuracyTask, MetaAccuracyPredictor

    refuse_same_file(shots_file, out, "--shots")
    tables = _tables(space_name)
    # the shots first: a bad file is refused before the source tasks are featurised
    idx, acc = read_shots(shots_file, tables, "accuracy")
    if len(acc) and float(acc.max()) <= 1.0:
        # percent is the unit of every table; fractions would be read as networks near chance
        click.echo(f"hwnas: warning: every accuracy in {shots_file} is <= 1; accuracies are in "
                   "percent (0..100): were these fractions?", err=True)
    if len(idx) < MIN_ACCURACY_SHOTS:
        raise TableError(f"{shots_file}: {len(idx)} shots; adaptation needs at least "
                         f"{MIN_ACCURACY_SHOTS}")
    lf, lf_names = _low_fidelity(low_fidelity, tables) if low_fidelity else (None, [])
    if source_tasks is None and lf_names:
        from hwnas.meta.accuracy_features import dataset_of

        # the low-fidelity columns' dataset is the new task's: its other columns would leak
        source_tasks = [t for t in tables.tasks
                        if dataset_of(t) not in {dataset_of(n) for n in lf_names}]
        if not source_tasks:
            raise TableError("--low-fidelity: no source task is left outside its dataset; "
                             "name some with --source-tasks")
    clash = sorted(set(lf_names) & set(source_tasks or []))
    if clash:
        raise TableError(f"--low-fidelity {clash[0]} is also a source task; valid: leave it out "
                         "of --source-tasks")
    tables, feats = _context(tables, space_name, source_tasks)
    if lf is not None or proxies_spec is not None:
        from hwnas.meta.accuracy_multifidelity import MultiFidelityPredictor

        prox = _proxies(proxies_spec, proxy_archs, seed, tables) if proxies_spec else None
        mf = MultiFidelityPredictor(feats, lf, prox, low_fidelity_names=lf_names, seed=seed)
        mf.fit(idx, acc)
        _write(out, tables, mf.predict(np.arange(len(tables))))
        top = np.argsort(mf.weights_)[::-1][:2]
        click.echo(f"wrote {out}: predicted accuracy of {len(tables)} {space_name} architectures "
                   f"from {len(idx)} shots, {0 if lf is None else lf.shape[1]} low-fidelity "
                   f"input(s){', proxies' if prox is not None else ''} and "
                   f"{len(feats.sources)} source tasks (fidelity map: "
                   f"{'yes' if mf.map_ else 'no'}; main heads: "
                   + ", ".join(f"{mf.candidates_[i]} {mf.weights_[i]:.2f}" for i in top) + ")")
        return
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
    _write(out, tables, pred.predict(np.arange(len(tables))))
    top = np.argsort(pred.weights_)[::-1][:2]
    click.echo(f"wrote {out}: predicted accuracy of {len(tables)} {space_name} architectures from "
               f"{len(idx)} shots and {len(feats.sources)} source tasks (main heads: "
               + ", ".join(f"{pred.candidates_[i]} {pred.weights_[i]:.2f}" for i in top) + ")")


def _write(out: Path, tables, accuracy) -> None:
    import numpy as np
    import pandas as pd

    from hwnas.latency import atomic_write_text

    frame = pd.DataFrame({"index": np.arange(len(tables)), "arch": [str(a) for a in tables.archs],
                          "accuracy": accuracy})
    atomic_write_text(out, frame.to_csv(index=False))
