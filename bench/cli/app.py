"""The ``hwnas`` group: the global ``--data`` option, the commands, and :func:`main`.

The commands are loaded lazily (click's documented ``LazyGroup`` pattern, "Lazily Loading
Subcommands" in click's docs): ``hwnas agent serve`` on a board without torch imports the agent
command and nothing else, and ``hwnas --help`` still lists every command.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click

from hwnas.search import ENV_VAR, DataNotFoundError

from .boundary import guarded

__all__ = ["cli", "main", "LazyGroup", "COMMANDS"]

#: command name -> "module:attribute" in this package, in the order ``--help`` lists them
COMMANDS = {
    "spaces": "spaces:spaces",
    "devices": "devices:devices",
    "query": "query:query",
    "profile": "profile:profile",
    "search": "search:search",
    "latency": "latency:latency",
    "compare": "compare:compare",
    "report": "report:report",
    "quickstart": "quickstart:quickstart",
    "accuracy": "accuracy:accuracy",
    "agent": "agent:agent",
    "deploy": "deploy:deploy",
    "export": "export:export",
}


class ListingGroup(click.Group):
    """A group that names its commands when given one it does not have."""

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else None
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            ctx.fail(f"no such command {name!r}; valid: {', '.join(self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)


class LazyGroup(ListingGroup):
    """A group whose commands are imported when first named (or listed by ``--help``)."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy_commands, *(c for c in super().list_commands(ctx)
                                       if c not in self.lazy_commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            return self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module, _, attr = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(f".{module}", __package__), attr)
        if not isinstance(command, click.Command):  # a wrong table entry is a bug, say where
            raise TypeError(f"{module}:{attr} is not a click command")
        return command


def _version() -> str:
    try:
        return version("hwnas")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
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
        from hwnas.search.tables import override_dir  # here: it is no business of `agent`

        override_dir(data)  # a folder without any space folder is refused here, in one line
        # one place decides where the tables are; every later lookup (and every worker process
        # of compare) reads HWNAS_DATA
        os.environ[ENV_VAR] = str(data)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hwnas`` console script; returns (and, from a shell, exits with) the
    status code: 0 done, 2 bad input or an expected failure (one line on stderr), 1 a bug, 130
    interrupted."""
    code = guarded(lambda: cli.main(args=argv, prog_name="hwnas", standalone_mode=False))
    if argv is None:
        sys.exit(code)
    return code
