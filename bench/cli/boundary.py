"""The one error boundary of the command line.

Everything a user can cause — a bad value, an unknown name, a file that cannot be read or decoded,
a folder that cannot be written, a full disk, a corrupt cache — becomes one line on stderr naming
the path or option and what is valid, and exit code 2. Anything else is a bug in hwnas: one line
saying how to report it, exit code 1, and the traceback only with ``HWNAS_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
import traceback
import warnings
from collections.abc import Callable

import click

from hwnas.search import HwnasError, cache_root

__all__ = ["DEBUG_VAR", "guarded", "describe"]

DEBUG_VAR = "HWNAS_DEBUG"

#: exit codes
OK, BUG, USER, INTERRUPTED = 0, 1, 2, 130


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _os_error(e: OSError) -> str:
    path = e.filename if e.filename is not None else None
    where = f"{path}: " if path is not None else ""
    if e.filename2 is not None:
        where = f"{e.filename} -> {e.filename2}: "
    reason = e.strerror or type(e).__name__
    if e.errno == errno.ENOSPC:
        return f"{where}no space left on the device; free some space or choose another --out"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{where}{reason}; valid: a path this user can read and write"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{where}{reason}; a part of the path is a file, not a folder"
    return f"{where}{reason}"


def describe(e: BaseException) -> tuple[int, str] | None:
    """Exit code and one-line message for an expected failure; ``None`` for a bug."""
    if isinstance(e, click.exceptions.NoArgsIsHelpError):
        return USER, ""
    if isinstance(e, click.UsageError):
        return USER, e.format_message()
    if isinstance(e, click.exceptions.Abort | KeyboardInterrupt):
        return INTERRUPTED, "interrupted"
    if isinstance(e, click.FileError):
        return USER, e.format_message()
    if isinstance(e, click.ClickException):
        return USER, e.format_message()
    if isinstance(e, HwnasError):
        return USER, str(e)
    if isinstance(e, UnicodeDecodeError):
        return USER, (f"a file is not UTF-8 text ({e.reason} at byte {e.start}); valid: UTF-8 "
                      "text files")
    if isinstance(e, OSError):
        return USER, _os_error(e)
    if isinstance(e, sqlite3.DatabaseError):
        return USER, (f"a database file cannot be used ({e}); if it is in the cache, delete "
                      f"{cache_root()} or point HWNAS_CACHE at another folder")
    if isinstance(e, MemoryError):
        return USER, "out of memory; choose smaller inputs (budget, --archs, batch)"
    return None


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"hwnas: warning: {_one_line(message)}", err=True)


def guarded(run: Callable[[], int | None]) -> int:
    """Call ``run`` inside the boundary; returns the exit code (never raises, but SystemExit)."""
    warnings.showwarning = _warning_line
    try:
        rv = run()
        return rv if isinstance(rv, int) else OK
    except SystemExit as e:  # a command's own exit (130 after an interrupted profile)
        return e.code if isinstance(e.code, int) else (OK if e.code is None else USER)
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx else str(e))
        return USER
    except BaseException as e:  # the boundary: every failure is sorted below
        known = describe(e)
        if known is not None:
            code, message = known
            if code == INTERRUPTED:
                click.echo("hwnas: interrupted", err=True)
            else:
                click.echo(f"hwnas: error: {_one_line(message)}", err=True)
            if os.environ.get(DEBUG_VAR) == "1" and code == USER:
                traceback.print_exception(e, file=sys.stderr)
            return code
        if os.environ.get(DEBUG_VAR) == "1":
            traceback.print_exception(e, file=sys.stderr)
        click.echo(f"hwnas: internal error: {type(e).__name__}: {_one_line(e)[:300]}; this is a "
                   "bug in hwnas: please report it to the hwnas issue tracker with the command "
                   f"and its output when run with {DEBUG_VAR}=1", err=True)
        return BUG
