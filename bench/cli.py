"""The ``hwnas`` command line: argv in, dataclasses and library calls, text out.

This is the only module that prints. Errors a user can cause (:class:`HwnasError`, bad options)
become one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from hwnas.search import (
    ENV_VAR,
    DataNotFoundError,
    HwnasError,
    NotInTableError,
    TableError,
    get_space,
    list_spaces,
)
from hwnas.search.tables import EXPECTED_ROWS, SOURCES, load_tables, override_dir

from .cache import StatsCache
from .devices import find_profiled, resolve_device, results_dir

__all__ = ["cli", "main"]


def _version() -> str:
    try:
        return version("hwnas")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, allow_nan=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="hwnas", message="%(prog)s %(version)s")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder of your own benchmark tables, overriding the bundled copy (default: "
         f"${ENV_VAR}, else the tables shipped with hwnas).",
)
@click.pass_context
def cli(ctx: click.Context, data: Path | None) -> None:
    """hwnas: hardware-aware neural architecture search benchmarking."""
    if data is not None:
        if not data.is_dir():
            raise DataNotFoundError(
                f"--data points at {str(data)!r}, which is not a directory; "
                "point it at a folder holding nb201/, fbnet/ or ofa/"
            )
        override_dir(data)  # a folder without any space folder is refused here, in one line
        # one place decides where the tables are; every later lookup reads HWNAS_DATA
        os.environ[ENV_VAR] = str(data)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def spaces(as_json: bool) -> None:
    """List the search spaces: name, kind, size, and the public table's rows."""
    rows = []
    for name in list_spaces():
        s = get_space(name)
        rows.append({
            "name": name,
            "kind": s.kind,
            "size": s.size,
            "choices": len(s.genes),
            "input": "x".join(map(str, s.input_shape(s.sample(0)))) if name != "ofa"
            else "3x128..224",
            "table_rows": EXPECTED_ROWS[name],
        })
    if as_json:
        _echo_json(rows)
        return
    _print_table(
        ["space", "kind", "size", "choices", "input", "public table"],
        [[r["name"], r["kind"], _size(r["size"]), r["choices"], r["input"], r["table_rows"]]
         for r in rows],
    )


@cli.command()
@click.option("--space", "space_names", multiple=True, help="Only this space (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="One JSON list instead of a table.")
def devices(space_names: tuple[str, ...], as_json: bool) -> None:
    """List every known device table, with its source."""
    for name in space_names:
        get_space(name)  # unknown names fail before any table is read
    rows = []
    wanted = space_names or tuple(list_spaces())
    for p in find_profiled():
        if p.space in wanted:
            rows.append({"space": p.space, "device": p.device, "rows": p.rows,
                         "median_ms": p.median_ms, "source": f"profiled: {p.path}",
                         "copy": "profiled"})
    public = []
    for name in wanted:
        try:
            public.append(load_tables(name))
        except DataNotFoundError:
            if not rows:
                raise
            warnings.warn("no public tables: listing profiled devices only", stacklevel=1)
            break
        except TableError as e:
            if space_names:  # asked for by name: its tables must load
                raise
            warnings.warn(f"skipping {name}: {e}", stacklevel=1)
    for tables in public:
        name = tables.space.name
        for dev in tables.devices:
            lat = tables.latency[dev]
            rows.append({
                "space": name, "device": dev, "rows": int(lat.notna().sum()),
                "median_ms": float(lat.median()), "source": f"public: {SOURCES[name]}",
                "copy": tables.origin,
            })
    if as_json:
        _echo_json(rows)
        return
    _print_table(
        ["space", "device", "rows", "median ms", "source", "copy"],
        [[r["space"], r["device"], r["rows"], f"{r['median_ms']:.3g}", r["source"], r["copy"]]
         for r in rows],
    )


@cli.command()
@click.option("--space", "space_name", required=True, help="nb201, fbnet or ofa.")
@click.option("--index", type=int, default=None, help="Index in the space's public table.")
@click.option("--arch", "arch_text", default=None, help="Canonical architecture string.")
@click.option("--task", default=None, help="Only this accuracy column.")
@click.option("--device", default=None, help="Only this device's latency.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def query(space_name: str, index: int | None, arch_text: str | None, task: str | None,
          device: str | None, as_json: bool) -> None:
    """Everything known about one architecture: params, FLOPs, accuracies, latencies."""
    if (index is None) == (arch_text is None):
        raise click.UsageError("give exactly one of --index N or --arch TEXT")
    space = get_space(space_name)
    arch = space.parse(arch_text) if arch_text is not None else None
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if arch is None or task or (device and not _is_local_device(device)):
            raise
        tables = None
        warnings.warn("no public tables: showing size and FLOPs only", stacklevel=1)
    if tables is not None and task:
        tables.check_task(task)
    source = resolve_device(device, space_name, tables) if device else None
    if arch is None:
        arch = tables.arch_at(index)
    idx = None
    if tables is not None:
        try:
            idx = tables.index_of(arch)
        except NotInTableError:
            if task or (device and tables is not None and device in tables.devices):
                raise
            warnings.warn(f"{space_name}: not in the public table of {len(tables)} "
                          "architectures: no accuracy or latency", stacklevel=1)
    stats = StatsCache().get(space, arch)
    out: dict[str, Any] = {
        "space": space_name, "index": idx, "arch": space.format(arch),
        "params": stats.params, "flops": round(stats.flops_m, 4),
        "flops_unit": "millions of multiply-accumulates",
        "accuracy": {}, "latency_ms": {},
    }
    if idx is not None:
        row = tables.row(idx)
        out["accuracy"] = {k: v for k, v in row["accuracy"].items() if task in (None, k)}
        if source is None:
            out["latency_ms"] = row["latency_ms"]
    if source is not None:
        value = float(source.evaluate([arch])[0])
        if not math.isfinite(value):
            raise NotInTableError(f"{device}: no latency for {space.format(arch)}")
        out["latency_ms"] = {device: value}
    if as_json:
        _echo_json(out)
        return
    click.echo(f"space     {space_name}")
    click.echo(f"index     {'-' if idx is None else idx}")
    click.echo(f"arch      {out['arch']}")
    click.echo(f"params    {stats.params:,}")
    click.echo(f"flops     {stats.flops_m:.2f} M multiply-accumulates")
    for k, v in out["accuracy"].items():
        click.echo(f"accuracy  {k:<22} {v:8.2f} %")
    for k, v in out["latency_ms"].items():
        click.echo(f"latency   {k:<22} {v:10.4g} ms")


@cli.command()
@click.option("--space", "space_name", required=True, help="nb201, fbnet or ofa.")
@click.option("--runtime", "runtime_name", default="ort-cpu", show_default=True,
              help="ort-cpu, ort-cuda, torch-cpu or torch-cuda.")
@click.option("--name", required=True, help="Device name (folder under results/devices).")
@click.option("--archs", "n_archs", type=click.IntRange(min=1), default=None,
              help="Profile N architectures drawn with --seed [default: 100].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--indices", "indices_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="CSV with an 'index' column, or one index per line.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads.")
@click.option("--graph-opt", type=click.Choice(["disable", "basic", "extended", "all"]),
              default="all", show_default=True, help="ONNX Runtime graph optimisation level.")
@click.option("--rounds", type=click.IntRange(min=1), default=2, show_default=True,
              help="Passes over the architectures; latency = min of round medians.")
@click.option("--precision", type=click.FloatRange(min=0, min_open=True), default=0.02,
              show_default=True, help="Target relative half-width of the median's 95% CI.")
@click.option("--max-runs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--cpu", "cpus", default=None,
              help="Pin the profiler to these CPU cores (e.g. '1' or '0,1').")
@click.option("--lut", is_flag=True,
              help="Build an operator lookup table instead: every kernel of the space measured "
                   "once, the overhead fitted on --archs whole networks [default: 24].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/devices/NAME, or results/luts/NAME].")
def profile(space_name: str, runtime_name: str, name: str, n_archs: int | None, seed: int,
            indices_file: Path | None, batch: int, threads: int, graph_opt: str, rounds: int,
            precision: float, max_runs: int, cpus: str | None, lut: bool,
            out: Path | None) -> None:
    """Measure architectures on this machine into a device table (resumable), or build an
    operator lookup table (--lut)."""
    from hwnas.latency import (
        MeasurementProtocol,
        Profiler,
        RuntimeConfig,
        get_runtime,
    )

    if n_archs is not None and indices_file is not None:
        raise click.UsageError("give --archs N or --indices FILE, not both")
    space = get_space(space_name)
    config = RuntimeConfig(batch=batch, intra_op_threads=threads, graph_optimization=graph_opt)
    runtime = get_runtime(runtime_name, config)
    runtime.require()
    protocol = MeasurementProtocol(rounds=rounds, target_precision=precision,
                                   max_runs=max(max_runs, 20), min_runs=min(20, max_runs))
    if cpus:
        _pin(cpus)
    if lut:
        _build_lut(space_name, runtime_name, name, n_archs, seed, indices_file, config,
                   protocol, out)
        return
    targets = _targets(space_name, n_archs, seed, indices_file)
    out = out or results_dir() / "devices" / name
    profiler = Profiler(space, runtime, protocol, out, name)
    with _progress(f"profiling {name}") as advance:
        try:
            table = profiler.run(targets, progress=advance)
        except KeyboardInterrupt:
            click.echo(f"hwnas: interrupted; measurements so far are in {out}; run the same "
                       "command again to resume", err=True)
            raise SystemExit(130) from None
    meta = table.meta
    prec = meta["precision"]
    click.echo(f"wrote {out / 'latency_ms.csv'} ({meta['counts']['architectures']} "
               f"architectures, {meta['counts']['failed']} failed) and {out / 'meta.json'}")
    if prec.get("median_round_spread") is not None:
        click.echo(f"precision: median spread between rounds {prec['median_round_spread']:.1%}")
    ref = prec.get("reference")
    if ref:
        flag = "  (drift flagged)" if ref["drift_flagged"] else ""
        click.echo(f"reference: {ref['measurements']} measurements, {ref['min_ms']:.3f}-"
                   f"{ref['max_ms']:.3f} ms, max drift {ref['max_drift']:.1%}{flag}")


@cli.command()
@click.option("--space", "space_name", required=True, help="nb201, fbnet or ofa.")
@click.option("--task", default=None,
              help="Accuracy column, or a CSV of arch and accuracy such as a predicted table "
                   "[default: cifar10_test_200ep for nb201].")
@click.option("--device", default=None,
              help="Public device, profiled device, device-table path, or live:RUNTIME.")
@click.option("--objectives", default="accuracy,latency", show_default=True,
              help="Comma-separated: accuracy, latency, params, flops.")
@click.option("--strategy", default="nsga2", show_default=True)
@click.option("--budget", type=int, default=300, show_default=True,
              help="Unique architectures to evaluate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--constraint", "constraints", multiple=True,
              help="Hard constraint such as latency<=5 (repeatable).")
@click.option("--prior", "priors", multiple=True, metavar="SOURCE",
              help="With --strategy surrogate: prior knowledge of every architecture as extra "
                   "surrogate features: another task's column, another device, or a CSV of arch "
                   "(or index) and accuracy or latency_ms such as a predicted table (repeatable).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder [default: results/runs/SPACE/STRATEGY/SEED].")
@click.option("--evaluate", type=click.Choice(["table", "train"]), default="table",
              show_default=True,
              help="Accuracy from the public tables, or by training each network now.")
@click.option("--dataset", default=None, help="With --evaluate train: the task [default: digits].")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="With --evaluate train: epochs per network [default: 6].")
@click.option("--train-fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="With --evaluate train: part of the training set used [default: 1].")
@click.option("--width", type=click.FloatRange(0, 4, min_open=True), default=None,
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
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="With --executor process or ray: networks trained at once (the strategy "
                   "proposes this many per step).")
def search(space_name: str, task: str | None, device: str | None, objectives: str,
           strategy: str, budget: int, seed: int, constraints: tuple[str, ...],
           priors: tuple[str, ...], out: Path | None, evaluate: str, dataset: str | None,
           epochs: int | None,
           train_fraction: float | None, width: float | None, early_stop: int | None,
           early_stop_rule: str, inherit: bool, executor: str, workers: int) -> None:
    """Multi-objective search over a space's metrics; writes evaluations, front and run record.

    With --evaluate train, accuracy is the validation accuracy of training each network on
    --dataset (cached on disk); live:RUNTIME latency is measured on the space's benchmark
    network (its own input size), not on the network built for the dataset.
    """
    from hwnas.search import list_strategies

    from .problem import SearchConfig, run_problem

    get_space(space_name)
    if strategy not in list_strategies():
        from hwnas.search import UnknownNameError

        raise UnknownNameError("strategy", strategy, list_strategies())
    if budget < 1:
        raise click.BadParameter(f"{budget}; the budget must be >= 1", param_hint="--budget")
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
        from .live.datasets import get_dataset, list_datasets

        dataset = dataset or "digits"
        if dataset not in list_datasets():
            get_dataset(dataset)  # raises the error that lists the valid names
    from .problem import is_accuracy_file

    table_accuracy = "accuracy" in names and evaluate == "table" and not is_accuracy_file(task)
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if table_accuracy or (device and not _is_local_device(device)):
            raise
        tables = None
    if task is None and tables is not None and table_accuracy and tables.tasks:
        task = "cifar10_test_200ep" if "cifar10_test_200ep" in tables.tasks else tables.tasks[0]
    config = SearchConfig(space_name, names, strategy, budget, seed, task, device,
                          list(constraints), evaluate=evaluate, dataset=dataset,
                          train=train if evaluate == "train" else {},
                          live=live if evaluate == "train" else {},
                          batch=workers if evaluate == "train" and executor != "serial" else 1,
                          prior=list(priors))
    out = out or results_dir() / "runs" / space_name / strategy / str(seed)
    with _progress(f"{strategy} on {space_name}") as advance:
        record = run_problem(config, tables, out,
                             progress=lambda done, total: advance(done, total, ""))
    click.echo(f"wrote {out}/evaluations.csv ({record['evaluations']} evaluations, "
               f"{record['skipped']} skipped), front.csv ({record['front_size']} "
               f"non-dominated) and run.json")
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


# ---------------------------------------------------------------------- helpers
def _build_lut(space_name: str, runtime_name: str, name: str, n_archs: int | None, seed: int,
               indices_file: Path | None, config: Any, protocol: Any, out: Path | None) -> None:
    from hwnas.latency.lut import LUTError, build_lut, list_lut_spaces

    if space_name not in list_lut_spaces():
        raise LUTError(f"no operator lookup table for space {space_name!r}; valid: "
                       f"{', '.join(list_lut_spaces())}")
    if runtime_name != "ort-cpu":
        raise click.BadParameter(f"{runtime_name!r}; the lookup table models ONNX Runtime's CPU "
                                 "kernels: valid: ort-cpu", param_hint="--runtime")
    if config.graph_optimization != "all":
        raise click.BadParameter(f"{config.graph_optimization!r}; the lookup table models the "
                                 "optimised graph: valid: all", param_hint="--graph-opt")
    if indices_file is not None:
        calibration: Any = [t.arch for t in _targets(space_name, None, seed, indices_file)]
    else:
        calibration = n_archs or 24
    out = out or results_dir() / "luts" / name
    with _progress(f"lookup table {name}") as advance:
        try:
            table = build_lut(space_name, config, protocol, calibration_archs=calibration,
                              seed=seed, device=name,
                              progress=lambda done, total: advance(done, total, ""))
        except KeyboardInterrupt:
            click.echo("hwnas: interrupted; no table written", err=True)
            raise SystemExit(130) from None
    table.save(out)
    a, b = table.coef_
    cal = table.metadata["calibration"]
    click.echo(f"wrote {out / 'kernels.csv'} ({len(table)} kernels) and {out / 'lut.json'}")
    click.echo(f"fit on {len(cal['archs'])} networks: latency = {a:.3f} x kernel sum + "
               f"{b:.3f} ms (mean relative error {cal['mape']:.1%}); use it as "
               f"--device lut:{out}")


def _is_local_device(spec: str) -> bool:
    return spec.startswith(("live:", "lut:")) or Path(spec).exists()


def _pin(cpus: str) -> None:
    try:
        cores = {int(c) for c in cpus.split(",")}
        os.sched_setaffinity(0, cores)
    except (ValueError, OSError) as e:
        raise click.BadParameter(f"{cpus!r}: {e}; valid: core numbers among "
                                 f"{sorted(os.sched_getaffinity(0))}", param_hint="--cpu") from None


def _targets(space_name: str, n: int | None, seed: int, indices_file: Path | None) -> list:
    import numpy as np

    from hwnas.latency import Target

    space = get_space(space_name)
    try:
        tables = load_tables(space_name)
    except DataNotFoundError:
        if indices_file is not None:
            raise
        tables = None
    if indices_file is not None:
        indices = _read_indices(indices_file)
        return [Target(tables.arch_at(i), i) for i in indices]
    n = n or 100
    rng = np.random.default_rng(seed)
    if tables is not None:
        if n > len(tables):
            raise click.BadParameter(f"{n} > {len(tables)} architectures in the {space_name} "
                                     "table", param_hint="--archs")
        return [Target(tables.archs[i], int(i)) for i in rng.choice(len(tables), n, replace=False)]
    warnings.warn("no public tables: drawing architectures from the space, without indices",
                  stacklevel=1)
    archs: dict = {}
    while len(archs) < n:
        archs.setdefault(space.sample(rng))
    return [Target(a) for a in archs]


def _read_indices(path: Path) -> list[int]:
    import pandas as pd

    from hwnas.search import TableError

    try:
        text = path.read_text()
    except OSError as e:
        raise TableError(f"cannot read --indices file {path}: {e.strerror}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and not lines[0].lstrip("-").isdigit():
        import io

        frame = pd.read_csv(io.StringIO(text))
        if "index" not in frame.columns:
            raise TableError(f"{path}: needs an 'index' column or one index per line")
        lines = [str(v) for v in frame["index"].tolist()]
    try:
        indices = [int(float(v)) for v in lines]
    except ValueError:
        raise TableError(f"{path}: indices must be integers") from None
    if not indices:
        raise TableError(f"{path}: no indices")
    return list(dict.fromkeys(indices))


class _progress:
    """A rich progress bar with ETA on stderr; yields the profiler's progress callback."""

    def __init__(self, label: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.task = self.bar.add_task(label, total=None)

    def __enter__(self):
        # started on the first report, so that errors before any work come without a bar
        def advance(done: int, total: int, _arch: str) -> None:
            if not self.bar.live.is_started:
                self.bar.start()
            self.bar.update(self.task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:
            self.bar.stop()
def _size(n: int) -> str:
    return f"{n:,}" if n < 10**9 else f"{n:.3e}".replace("e+", "e")


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, box=None, header_style="bold")
    for r in rows:
        table.add_row(*map(str, r))
    # a pipe gets whole lines (no wrapping at 80 columns); a terminal gets rich's layout
    Console(width=None if sys.stdout.isatty() else 400).print(table)


def _fmt_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"hwnas: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hwnas`` console script; returns (and exits with) the status code."""
    warnings.showwarning = _fmt_warning
    try:
        rv = cli.main(args=argv, prog_name="hwnas", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        code = 2
    except click.UsageError as e:
        click.echo(f"hwnas: error: {e.format_message()}", err=True)
        code = 2
    except HwnasError as e:
        click.echo(f"hwnas: error: {e}", err=True)
        code = 2
    except click.exceptions.Abort:
        click.echo("hwnas: interrupted", err=True)
        code = 130
    except click.ClickException as e:
        click.echo(f"hwnas: error: {e.format_message()}", err=True)
        code = e.exit_code
    if argv is None:
        sys.exit(code)
    return code


from .cli_latency import latency  # noqa: E402  (registered last: it imports nothing heavy)

cli.add_command(latency)

from .cli_compare import compare, quickstart, report  # noqa: E402

cli.add_command(compare)
cli.add_command(report)
cli.add_command(quickstart)

from .cli_accuracy import accuracy  # noqa: E402

cli.add_command(accuracy)

if __name__ == "__main__":  # pragma: no cover
    main()
