"""The ``hwnas`` group: the global ``--data`` option, the commands, and :func:`main`."""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from hwnas.search import ENV_VAR, DataNotFoundError
from hwnas.search.tables import override_dir

from .accuracy import accuracy
from .boundary import guarded
from .compare import compare
from .devices import devices
from .latency import latency
from .profile import profile
from .query import query
from .quickstart import quickstart
from .report import report
from .search import search
from .spaces import spaces

__all__ = ["cli", "main"]


def _version() -> str:
    try:
        return version("hwnas")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="hwnas", message="%(prog)s %(version)s")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder of your own benchmark tables, overriding the bundled copy (default: "
         f"${ENV_VAR}, else the tables shipped with hwnas).",
)
def cli(data: Path | None) -> None:
    """hwnas: hardware-aware neural architecture search benchmarking."""
    if data is not None:
        if not data.is_dir():
            raise DataNotFoundError(
                f"--data points at {str(data)!r}, which is not a directory; "
                "point it at a folder holding nb201/, fbnet/ or ofa/"
            )
        override_dir(data)  # a folder without any space folder is refused here, in one line
        # one place decides where the tables are; every later lookup (and every worker process
        # of compare) reads HWNAS_DATA
        os.environ[ENV_VAR] = str(data)


for _command in (spaces, devices, query, profile, search, latency, compare, report, quickstart,
                 accuracy):
    cli.add_command(_command)
cli.add_command(__import__(f"{__package__}.deploy", fromlist=["deploy"]).deploy)  # hwnas deploy


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hwnas`` console script; returns (and, from a shell, exits with) the
    status code: 0 done, 2 bad input or an expected failure (one line on stderr), 1 a bug, 130
    interrupted."""
    code = guarded(lambda: cli.main(args=argv, prog_name="hwnas", standalone_mode=False))
    if argv is None:
        sys.exit(code)
    return code
