"""Reading a compare config from TOML into a checked :class:`CompareConfig`.

Everything that can be checked without the tables is checked here, in one place, before
anything runs or is written; :func:`hwnas.bench.compare.check_grid` checks the rest against the
tables.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from hwnas.search.strategies.base import DEFAULT_STRATEGY

from .options import check_options
from .spec import CompareConfig, ProblemSpec, StrategySpec, read_strategy
from .values import (
    COMPARE_KEYS,
    MAX_BUDGET,
    MAX_SEED,
    NAME_RULE,
    PROBLEM_KEYS,
    SAFE_NAME,
    STRATEGY_KEYS,
    TOP_KEYS,
    ConfigError,
    Table,
    check_name,
    one_line,
    show,
)

__all__ = ["load_config"]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}); a TOML config is UTF-8 "
                          "text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {one_line(e)}") from None


def _read_problems(raw: dict[str, Any], path: Path) -> dict[str, ProblemSpec]:
    """Every ``[[problems]]`` entry, one problem per device (``name-device`` for ``devices``)."""
    problems: dict[str, ProblemSpec] = {}
    for i, p in enumerate(raw.get("problems", [])):
        t = Table(p, f"{path}: problems[{i}]", PROBLEM_KEYS)
        name = check_name(t.text("name"), f"{t.where}: problem name")
        if "device" in t and "devices" in t:
            raise ConfigError(f"{t.where}: give 'device' or 'devices', not both")
        devices: list[str | None] = t.texts("devices", []) or [t.text("device", None)]
        if "devices" in t and not t.raw["devices"]:
            raise ConfigError(f"{t.where}: 'devices' is empty; list at least one device")
        for dev in devices:
            full = name if len(devices) == 1 else f"{name}-{dev}"
            if not SAFE_NAME.fullmatch(full):
                raise ConfigError(f"{t.where}: problem name {full!r} (name-device) is not a valid "
                                  f"name; valid: {NAME_RULE}; give a device path a [[problems]] "
                                  "entry of its own (device = ..., name = ...)")
            if full in problems:
                raise ConfigError(f"{t.where}: problem name {full!r} is used twice")
            problems[full] = ProblemSpec.read(t, dev)
    if not problems:
        raise ConfigError(f"{path}: no [[problems]]")
    return problems


def _read_strategies(raw: dict[str, Any], path: Path,
                     problems: dict[str, ProblemSpec]) -> dict[str, StrategySpec]:
    """Every ``[[strategies]]`` entry by label, its options checked, its prior no objective."""
    n_objectives = max(len(p.objectives) for p in problems.values())
    strategies: dict[str, StrategySpec] = {}
    for i, s in enumerate(raw.get("strategies", [])):
        t = Table(s, f"{path}: strategies[{i}]", STRATEGY_KEYS)
        spec = read_strategy(t)
        check_options(spec.name, spec.options, t.where, n_objectives)
        for pname, p in problems.items():
            leak = [x for x in spec.prior if (x == p.task and "accuracy" in p.objectives)
                    or (x == p.device and "latency" in p.objectives)]
            if leak:
                raise ConfigError(f"{t.where}: prior {leak[0]!r} is an objective of problem "
                                  f"{pname!r}; a prior must be another task, device or table")
        # a peer's name (optuna:tpe) cannot name a folder: its default label is optuna-tpe
        label = check_name(t.text("label", spec.name.replace(":", "-")),
                           f"{t.where}: strategy label")
        if label in strategies:
            raise ConfigError(f"{t.where}: strategy label {label!r} is used twice (set 'label')")
        strategies[label] = spec
    if "strategies" not in raw:
        # a grid that names no strategy runs what a search gets by default
        return {DEFAULT_STRATEGY: read_strategy(Table({"name": DEFAULT_STRATEGY},
                                                      f"{path}: default strategy",
                                                      STRATEGY_KEYS))}
    if not strategies:
        raise ConfigError(f"{path}: no [[strategies]]")
    return strategies


def load_config(path: str | os.PathLike[str]) -> CompareConfig:
    """Read and check a compare config (TOML); see :mod:`hwnas.bench.compare` for its form.

    Everything that can be checked without the tables is: unknown keys at every level (listing
    the valid ones), types and ranges, names that become folders, strategies and their options.
    :func:`hwnas.bench.compare.check_grid` (called by ``run_compare``) checks the rest against
    the tables.

    Raises:
        ConfigError: unreadable or undecodable file, invalid TOML, or a missing/invalid entry
            (one line, naming it and what is valid).
    """
    path = Path(path)
    raw = _read_toml(path)
    Table(raw, f"{path}", TOP_KEYS)
    head = Table(raw.get("compare", {}), f"{path}: [compare]", COMPARE_KEYS)
    seeds = head.integers("seeds", [0, 1, 2], 0, MAX_SEED)
    budgets = head.integers("budgets", [100], 1, MAX_BUDGET)
    executor = head.text("executor", "process")
    workers = head.integer("workers", os.cpu_count() or 1, 1, 4096)
    ray_address = head.text("ray_address", None)

    for key in ("problems", "strategies"):
        if not isinstance(raw.get(key, []), list):
            raise ConfigError(f"{path}: '{key}' must be an array of tables ([[{key}]]), got "
                              f"{show(raw[key])}")
    problems = _read_problems(raw, path)
    strategies = _read_strategies(raw, path, problems)
    return CompareConfig(problems, strategies, seeds, budgets, executor, workers, ray_address,
                         str(path))
