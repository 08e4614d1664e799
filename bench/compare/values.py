"""The reading rules of a compare config: its errors, safe names, and typed values of one table.

Every level of a config (``[compare]``, each ``[[problems]]``, each ``[[strategies]]``, a grid
built in code) is read through :class:`Table`, so an unknown key, a value of the wrong type or
range, or a name that could not be a folder is refused in one line, the same way everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hwnas.search import HwnasError

from ..core.minimize import MAX_SEED

__all__ = ["ConfigError", "Table", "check_name", "is_int", "one_line", "show", "EXECUTORS",
           "MAX_BUDGET", "MAX_SEED", "NAME_RULE", "SAFE_NAME", "TOP_KEYS", "COMPARE_KEYS",
           "PROBLEM_KEYS", "STRATEGY_KEYS"]

EXECUTORS = ("process", "ray", "serial")
#: a larger budget is a typo or a runaway job (NAS benchmarks evaluate thousands, not millions)
MAX_BUDGET = 1_000_000

# keys of each level of a config, in the order the error messages list them
TOP_KEYS = ("compare", "problems", "strategies")
COMPARE_KEYS = ("seeds", "budgets", "executor", "workers", "ray_address")
PROBLEM_KEYS = ("name", "space", "task", "device", "devices", "objectives", "constraints")
STRATEGY_KEYS = ("name", "label", "options", "prior")

#: what a problem name or strategy label may be: it becomes one folder of ``OUT/runs/``
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
NAME_RULE = ("1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter, digit or _ "
             "(it names a folder)")


class ConfigError(HwnasError):
    """A compare config that cannot be run as written; the message says what and where."""


def show(value: Any) -> str:
    """A value as an error message quotes it: repr (so no newline gets in), at most 60 chars."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name if it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def is_int(v: Any) -> bool:
    """An integer that is not a bool (TOML's ``true`` must not pass for 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a safe folder name (one path component; see ``SAFE_NAME``).

    Raises:
        ConfigError: anything else (``../x``, ``a/b``, ``.``, ``''``, a non-string).
    """
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        raise ConfigError(f"{what} {show(value)} is not a valid name; valid: {NAME_RULE}")
    return value


class Table:
    """One table of a config: refuses unknown keys on sight and reads typed values."""

    def __init__(self, raw: Any, where: str, valid: tuple[str, ...]):
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a table, got {show(raw)}")
        unknown = [k for k in raw if k not in valid]
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid: "
                              f"{', '.join(valid)}")
        self.raw, self.where = raw, where

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def _bad(self, key: str, kind: str) -> ConfigError:
        return ConfigError(f"{self.where}: '{key}' must be {kind}, got {show(self.raw[key])}")

    def text(self, key: str, default: Any = ...) -> Any:
        if key not in self.raw:
            if default is ...:
                raise ConfigError(f"{self.where}: missing '{key}'")
            return default
        v = self.raw[key]
        if not isinstance(v, str) or not v:
            raise self._bad(key, "a non-empty string")
        return v

    def integer(self, key: str, default: Any, minimum: int, maximum: int) -> Any:
        if key not in self.raw:
            return default
        v = self.raw[key]
        if not is_int(v) or not minimum <= v <= maximum:
            raise self._bad(key, f"an integer in {minimum}..{maximum}")
        return v

    def texts(self, key: str, default: list[str]) -> list[str]:
        if key not in self.raw:
            return list(default)
        v = self.raw[key]
        if not (isinstance(v, list) and all(isinstance(x, str) and x for x in v)):
            raise self._bad(key, "a list of non-empty strings")
        if len(set(v)) != len(v):
            raise ConfigError(f"{self.where}: '{key}' names an entry twice: {show(v)}")
        return list(v)

    def integers(self, key: str, default: list[int], minimum: int, maximum: int) -> list[int]:
        if key not in self.raw:
            return list(default)
        v = self.raw[key]
        if not (isinstance(v, list) and v and all(is_int(x) and minimum <= x <= maximum
                                                  for x in v)):
            raise self._bad(key, f"a non-empty list of integers in {minimum}..{maximum}")
        return list(v)

    def table(self, key: str) -> dict[str, Any]:
        v = self.raw.get(key, {})
        if not isinstance(v, Mapping):
            raise self._bad(key, "a table (options = { population = 20 })")
        return dict(v)
