"""Option types of the command line: every value is parsed and checked here, once.

Each type turns argv text into a typed value or refuses it with a message that names what is valid
(click adds the option's name), so a command body never sees a negative seed, a budget of 0, a
name that would become ``../../x`` or an output folder it cannot write.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import click

from ..core.minimize import MAX_SEED

__all__ = [
    "SEED",
    "BUDGET",
    "META_STEPS",
    "SHOTS",
    "SafeName",
    "StrictInt",
    "OutDir",
    "OutFile",
    "InFile",
    "NAME",
    "safe_component",
    "check_writable",
    "read_text",
    "SPACE",
    "SpaceName",
    "FiniteFloatRange",
    "NameList",
    "NonEmptyText",
    "TEXT",
    "TOKEN_FILE",
    "REMOTE_DEADLINE",
]

#: no search over these spaces can afford more unique evaluations; larger numbers only overflow
MAX_BUDGET = 10**9
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class StrictInt(click.ParamType):
    """An integer written as one (``1.5``, ``1e3`` and ``0x10`` are refused) within a range."""

    name = "integer"

    def __init__(self, low: int | None = None, high: int | None = None):
        self.low, self.high = low, high

    def _valid(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in {self.low}..{self.high}"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return "an integer"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip()
            if not re.fullmatch(r"[+-]?[0-9]{1,30}", text):
                self.fail(f"{value!r} is not valid; valid: {self._valid()}", param, ctx)
            n = int(text)
        if (self.low is not None and n < self.low) or (self.high is not None and n > self.high):
            self.fail(f"{n} is not valid; valid: {self._valid()}", param, ctx)
        return n

    def __repr__(self) -> str:
        return f"StrictInt({self.low}, {self.high})"


SEED = StrictInt(0, MAX_SEED)
BUDGET = StrictInt(1, MAX_BUDGET)
META_STEPS = StrictInt(0, 100_000)
SHOTS = StrictInt(1, 100_000)


def safe_component(text: str) -> bool:
    """Whether ``text`` is one path component of letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit (so never ``.``, ``..``, empty, absolute or hidden)."""
    return bool(_SAFE.fullmatch(text))


class SafeName(click.ParamType):
    """A name that becomes a folder: one path component of a safe character set."""

    name = "name"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value)
        if not safe_component(text):
            self.fail(f"{text!r} is not valid; valid: 1-64 letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit (one folder name, no '/')", param, ctx)
        return text


NAME = SafeName()


def check_writable(path: Path, what: str) -> None:
    """Refuse an output ``path`` that cannot be created: its nearest existing ancestor must be a
    folder this process can create files in (read-only folders and mounts, /proc, a path under a
    regular file are caught here, before any work).

    Raises:
        click.BadParameter: with the reason; ``what`` names the option.
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise click.BadParameter(f"{str(path)!r}: {str(probe)!r} is a file, not a folder; "
                                 "valid: a path in a writable folder", param_hint=what)
    try:
        # an unnamed file (O_TMPFILE where the system has it): creating one proves the folder
        # takes new files, and nothing is left behind
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise click.BadParameter(f"{str(path)!r}: cannot write in {str(probe)!r} "
                                 f"({e.strerror or e}); valid: a path in a writable folder",
                                 param_hint=what) from None


class FiniteFloatRange(click.FloatRange):
    """click's float range, refusing NaN (which compares false with both bounds, so click lets
    it through: ``--precision nan`` would never stop measuring)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if rv is not None and math.isnan(rv):
            self.fail(f"{value!r} is not a number; valid: {self._describe_range()}", param, ctx)
        return rv


class NonEmptyText(click.ParamType):
    """A text option that, when given, must say something (``--device ''`` is refused rather
    than read as "not given")."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        text = str(value)
        if not text.strip():
            self.fail("an empty value; valid: a non-empty name or path (or leave the option "
                      "out)", param, ctx)
        return text


TEXT = NonEmptyText()


class NameList(click.ParamType):
    """Comma-separated names: at least one, each once (``''``, ``','`` and ``a,a`` are refused
    rather than read as "the default" or counted twice)."""

    name = "names"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        names = [n.strip() for n in str(value).split(",")]
        if not any(names):
            self.fail(f"{value!r} names nothing; valid: comma-separated names (or leave the "
                      "option out for the default)", param, ctx)
        if not all(names):
            self.fail(f"{value!r} has an empty name; valid: comma-separated names such as a,b",
                      param, ctx)
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            self.fail(f"{', '.join(twice)} given twice; valid: each name once", param, ctx)
        return names


class _OutPath(click.ParamType):
    folder = True

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Path:
        text = os.fspath(value)
        if not text or "\x00" in text:
            self.fail(f"{text!r} is not valid; valid: a path", param, ctx)
        path = Path(text)
        if self.folder and path.exists() and not path.is_dir():
            self.fail(f"{text!r} is a file; valid: a folder (new or existing)", param, ctx)
        if not self.folder and path.is_dir():
            self.fail(f"{text!r} is a folder; valid: a file path", param, ctx)
        if not self.folder and path.exists() and not path.is_file():
            # a device, a FIFO or a socket: the atomic writer's rename would replace it
            self.fail(f"{text!r} is not a regular file; valid: a new or regular file path",
                      param, ctx)
        hint = param.get_error_hint(ctx) if param is not None and ctx is not None else "--out"
        check_writable(path if self.folder else path.parent, hint)
        return path


class OutDir(_OutPath):
    """An output folder: new or an existing folder, somewhere this process can write."""

    name = "folder"
    folder = True


class OutFile(_OutPath):
    """An output file: not a folder, in (or below) a folder this process can write."""

    name = "file"
    folder = False


class InFile(click.ParamType):
    """An input file that exists and is readable (its content is checked by its reader)."""

    name = "file"

    def __init__(self, label: str | None = None):
        self.label = label  # "config": messages read "cannot read config PATH: ..."

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Path:
        path = Path(os.fspath(value))
        if not path.exists():
            what = f"cannot read {self.label} " if self.label else ""
            self.fail(f"{what}{str(path)!r}: not found; valid: an existing file", param, ctx)
        if path.is_dir():
            self.fail(f"{str(path)!r} is a folder; valid: a file", param, ctx)
        if not os.access(path, os.R_OK):
            self.fail(f"{str(path)!r} is not readable", param, ctx)
        return path


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of an input file, or one :class:`click.BadParameter` saying why not."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise click.BadParameter(f"cannot read {str(path)!r}: {e.strerror or e}",
                                 param_hint=what) from None
    if b"\x00" in data:
        raise click.BadParameter(f"{str(path)!r} is a binary file; valid: UTF-8 text",
                                 param_hint=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise click.BadParameter(f"{str(path)!r} is not UTF-8 text (byte {e.start}); valid: "
                                 "UTF-8 text", param_hint=what) from None


class SpaceName(click.ParamType):
    """A registered search space (the registry's error, listing the valid names)."""

    name = "space"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from hwnas.search import UnknownNameError, list_spaces

        text = str(value)
        if text not in list_spaces():
            self.fail(str(UnknownNameError("space", text, list_spaces())), param, ctx)
        return text


SPACE = SpaceName()


#: the agents' token, shared by every command that reaches device agents
TOKEN_FILE = click.option(
    "--token-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="File with the agents' token on its first line [default: the token itself from "
         "$HWNAS_AGENT_TOKEN].")
#: how long to wait for an agent (a board still booting) before the work stops
REMOTE_DEADLINE = click.option(
    "--remote-deadline", type=FiniteFloatRange(min=0, min_open=True), default=300.0,
    show_default=True,
    help="Seconds without an answer from any agent before the work stops (resumable).")
