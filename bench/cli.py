"""The ``hwnas`` command line: argv in, dataclasses and library calls, text out.

This is the only module that prints. Errors a user can cause (:class:`HwnasError`, bad options)
become one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
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
    get_space,
    list_spaces,
)

from .cache import StatsCache
from .tables import EXPECTED_ROWS, SOURCES, load_tables

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
    help=f"Folder of the public benchmark tables (default: ${ENV_VAR}).",
)
@click.pass_context
def cli(ctx: click.Context, data: Path | None) -> None:
    """hwnas: hardware-aware neural architecture search benchmarking."""
    if data is not None:
        if not data.is_dir():
            raise DataNotFoundError(
                f"--data points at {str(data)!r}, which is not a directory; "
                "point it at the folder holding nb201/, fbnet/ and ofa/"
            )
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
    for name in space_names or tuple(list_spaces()):
        tables = load_tables(name)
        for dev in tables.devices:
            lat = tables.latency[dev]
            rows.append({
                "space": name, "device": dev, "rows": int(lat.notna().sum()),
                "median_ms": float(lat.median()), "source": f"public: {SOURCES[name]}",
            })
    if as_json:
        _echo_json(rows)
        return
    _print_table(
        ["space", "device", "rows", "median ms", "source"],
        [[r["space"], r["device"], r["rows"], f"{r['median_ms']:.3g}", r["source"]] for r in rows],
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
        if arch is None or task or device:
            raise
        tables = None
        warnings.warn("no public tables: showing size and FLOPs only", stacklevel=1)
    if tables is not None:
        if task:
            tables.check_task(task)
        if device:
            tables.check_device(device)
    if arch is None:
        arch = tables.arch_at(index)
    idx = None
    if tables is not None:
        try:
            idx = tables.index_of(arch)
        except NotInTableError:
            if task or device:
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
        out["latency_ms"] = {k: v for k, v in row["latency_ms"].items() if device in (None, k)}
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


# ---------------------------------------------------------------------- helpers
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


if __name__ == "__main__":  # pragma: no cover
    main()
