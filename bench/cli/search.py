"""``hwnas search``: one multi-objective search; writes evaluations, front and run record."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path

import click

from hwnas.search import DataNotFoundError, UnknownNameError, get_space, list_strategies
from hwnas.search.strategies.base import DEFAULT_STRATEGY
from hwnas.search.tables import load_tables

from ..devices import results_dir
from .inputs import check_device_path
from .options import BUDGET, SEED, SPACE, TEXT, FiniteFloatRange, OutDir
from .query import is_local_device
from .ui import progress

__all__ = ["search", "run_folder_name"]


def _safe(part: str | None) -> str:
    """One safe name for a task or device: a name as it is, a path as its stem plus a short hash
    of the whole path (two tables both called ``dev.csv`` in different folders stay apart)."""
    if not part:
        return "none"
    stem = part
    if "/" in part or part.endswith(".csv") or Path(part).exists():
        stem = Path(part.rstrip("/")).stem or "table"
        stem += "." + hashlib.sha1(str(Path(part).resolve()).encode()).hexdigest()[:6]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "x"
    return stem[:48]


def run_folder_name(space: str, task: str | None, device: str | None, strategy: str,
                    seed: int) -> str:
    """``<space>-<task>-<device>-<strategy>-s<seed>``: the default folder of a search, named by
    its setup, so that runs differing in any of these never share a folder."""
    return "-".join([_safe(space), _safe(task), _safe(device), _safe(strategy), f"s{seed}"])


@click.command()
@click.option("--space", "space_name", required=True, type=SPACE, help="nb201, fbnet or ofa.")
@click.option("--task", type=TEXT, default=None,
              help="Accuracy column, or a CSV of arch and accuracy such as a predicted table "
                   "[default: cifar10_test_200ep for nb201].")
@click.option("--device", type=TEXT, default=None,
              help="Public device, profiled device, device-table path, or live:RUNTIME.")
@click.option("--objectives", default="accuracy,latency", show_default=True,
              help="Comma-separated: accuracy, latency, params, flops, memory, size, "
                   "energy.")
@click.option("--strategy", default=DEFAULT_STRATEGY, show_default=True,
              help="A registered strategy; auto picks the one the benchmarks show best for the "
                   "problem and records which and why in run.json.")
@click.option("--budget", type=BUDGET, default=300, show_default=True,
              help="Unique architectures to evaluate.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--constraint", "constraints", multiple=True,
              help="Hard constraint such as latency<=5 (repeatable).")
@click.option("--prior", "priors", multiple=True, metavar="SOURCE",
              help="With --strategy surrogate or auto: prior knowledge of every architecture as "
                   "extra surrogate features: another task's column, another device, or a CSV of "
                   "arch (or index) and accuracy or latency_ms such as a predicted table "
                   "(repeatable) [default with auto: every other task's accuracy and every other "
                   "device's latency].")
@click.option("--no-prior", "no_prior", is_flag=True, default=False,
              help="With --strategy auto: no default priors.")
@click.option("--out", type=OutDir(), default=None,
              help="Output folder [default: results/runs/SPACE-TASK-DEVICE-STRATEGY-sSEED].")
@click.option("--evaluate", type=click.Choice(["table", "train"]), default="table",
              show_default=True,
              help="Accuracy from the public tables, or by training each network now.")
@click.option("--dataset", default=None, help="With --evaluate train: the task [default: digits].")
@click.option("--epochs", type=click.IntRange(min=1, max=10**4), default=None,
              help="With --evaluate train: epochs per network [default: 6].")
@click.option("--train-fraction", type=FiniteFloatRange(0, 1, min_open=True), default=None,
              help="With --evaluate train: part of the training set used [default: 1].")
@click.option("--width", type=FiniteFloatRange(0, 4, min_open=True), default=None,
              help="With --evaluate train: channel-width multiplier [default: 1].")
@click.option("--early-stop", type=click.IntRange(min=1), default=None, metavar="K",
              help="With --evaluate train: stop runs whose learning curve cannot reach the top K.")
@click.option("--early-stop-rule", type=click.Choice(["extrapolate", "peers"]),
              default="extrapolate", show_default=True,
              help="With --early-stop: extrapolate the curve (Domhan et al.), or compare it with "
                   "the top K finished runs' curves at the same epoch (Vizier-style).")
@click.option("--inherit", is_flag=True, default=False,
              help="With --evaluate train: start each network from a trained one-edit "
                   "neighbour's weights where names and shapes match.")
@click.option("--executor", type=click.Choice(["serial", "process", "ray"]), default="serial",
              show_default=True,
              help="With --evaluate train: where trainings run (ray: RAY_ADDRESS or a local "
                   "Ray).")
@click.option("--workers", type=click.IntRange(min=1, max=1024), default=2, show_default=True,
              help="With --executor process or ray: networks trained at once (the strategy "
                   "proposes this many per step).")
def search(space_name: str, task: str | None, device: str | None, objectives: str,
           strategy: str, budget: int, seed: int, constraints: tuple[str, ...],
           priors: tuple[str, ...], no_prior: bool, out: Path | None, evaluate: str,
           dataset: str | None,
           epochs: int | None, train_fraction: float | None, width: float | None,
           early_stop: int | None, early_stop_rule: str, inherit: bool, executor: str,
           workers: int) -> None:
    """Multi-objective search over a space's metrics; writes evaluations, front and run record.

    With --evaluate train, accuracy is the validation accuracy of training each network on
    --dataset (cached on disk); live:RUNTIME latency is measured on the space's benchmark
    network (its own input size), not on the network built for the dataset.
    """
    from ..problem import SearchConfig, is_accuracy_file, run_problem

    get_space(space_name)
    if strategy not in list_strategies():
        raise UnknownNameError("strategy", strategy, list_strategies())
    if priors and no_prior:
        raise click.BadParameter("--prior and --no-prior contradict each other; give one",
                                 param_hint="--no-prior")
    names = [n.strip() for n in objectives.split(",") if n.strip()]
    train = {k: v for k, v in (("epochs", epochs), ("train_fraction", train_fraction),
                               ("width", width), ("seed", seed)) if v is not None}
    live = {"early_stop": early_stop, "inherit": inherit, "executor": executor,
            "workers": workers}
    if early_stop_rule != "extrapolate":
        if not early_stop:
            raise click.BadParameter("needs --early-stop K", param_hint="--early-stop-rule")
        live["early_stop_rule"] = early_stop_rule
    if evaluate == "table" and (dataset or len(train) > 1 or early_stop or inherit
                                or executor != "serial"):
        raise click.BadParameter("--dataset, --epochs, --train-fraction, --width, --early-stop, "
                                 "--inherit and --executor need --evaluate train",
                                 param_hint="--evaluate")
    if evaluate == "train":
        from ..live.datasets import get_dataset, list_datasets

        dataset = dataset or "digits"
        if dataset not in list_datasets():
            get_dataset(dataset)  # raises the error that lists the valid names
    table_accuracy = "accuracy" in names and evaluate == "table" and not is_accuracy_file(task)
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if table_accuracy or (device and not is_local_device(device)):
            raise
        tables = None
    if task is None and tables is not None and table_accuracy and tables.tasks:
        task = "cifar10_test_200ep" if "cifar10_test_200ep" in tables.tasks else tables.tasks[0]
    if "latency" in names:
        check_device_path(device, tables)
    config = SearchConfig(space_name, names, strategy, budget, seed, task, device,
                          list(constraints), evaluate=evaluate, dataset=dataset,
                          train=train if evaluate == "train" else {},
                          live=live if evaluate == "train" else {},
                          batch=workers if evaluate == "train" and executor != "serial" else 1,
                          prior=list(priors), no_prior=no_prior)
    if out is None:
        out = results_dir() / "runs" / run_folder_name(
            space_name, task if "accuracy" in names else None,
            device if "latency" in names else None, strategy, seed)
    # the search's warnings are said once it has written its run: a search that ends in an
    # error says that error alone, in one line (not "nothing evaluable" twice)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with progress(f"{strategy} on {space_name}") as advance:
            record = run_problem(config, tables, out,
                                 progress=lambda done, total: advance(done, total, ""))
    for w in said:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    click.echo(f"wrote {out}/evaluations.csv ({record['evaluations']} evaluations, "
               f"{record['skipped']} skipped), front.csv ({record['front_size']} "
               f"non-dominated) and run.json")
    choice = record.get("strategy_choice")
    if choice is not None:
        used = record["priors"]["used"]
        click.echo(f"auto picked {choice['strategy']}"
                   + (f" with {len(used)} priors" if used else "")
                   + f" (rule {choice['rule']}; the reason is in run.json)")
    coverage = record.get("prior_coverage")
    if coverage is not None and coverage < 0.5:
        click.echo(f"warning: the prior knew only {coverage:.0%} of the evaluated architectures; "
                   "it could barely guide the search", err=True)
    if "training" in record:
        t = record["training"]
        click.echo(f"trained {t['trained']} networks ({t['epochs_run']} epochs, "
                   f"{t['train_seconds']:.0f} s), {t['cache_hits']} from the cache, "
                   f"{t['epochs_saved']} epochs saved by early stopping"
                   + (f", {t['inherited_runs']} started from a parent's weights"
                      if inherit else ""))
