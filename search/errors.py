"""Exceptions shared by every hwnas package.

Every error a user can cause derives from :class:`HwnasError`; the command line turns these into one
line and exit code 2, and lets anything else surface as a bug.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "HwnasError",
    "UnknownNameError",
    "ArchitectureError",
    "DataNotFoundError",
    "TableError",
    "NotInTableError",
]


class HwnasError(Exception):
    """Base class of errors caused by input (names, files, architecture strings)."""


class UnknownNameError(HwnasError, KeyError):
    """A name (space, task, device, strategy...) that is not registered.

    The message lists the valid names, so the user can correct the input in one step.
    """

    def __init__(self, kind: str, name: str, valid: Iterable[str], also: str = ""):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid) or 'none'}"
                         + (f"; {also}" if also else ""))

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class ArchitectureError(HwnasError, ValueError):
    """An architecture string or value that does not belong to its space; says what and where."""


class DataNotFoundError(HwnasError, FileNotFoundError):
    """The public benchmark tables could not be found."""


class TableError(HwnasError, ValueError):
    """A table that is missing, unreadable or inconsistent."""


class NotInTableError(HwnasError, KeyError):
    """A valid architecture that a (sampled) table does not cover, or an index out of range."""

    def __str__(self) -> str:
        return str(self.args[0])
