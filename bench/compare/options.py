"""A strategy's options checked against its constructor's signature, before any run.

The strategies take plain numbers and do not all check them, so a typo (``populaton``) or a
value out of range (``population = -3``) would otherwise surface in a worker after the grid ran.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from hwnas.search import HwnasError

from .values import ConfigError, is_int, one_line, show

__all__ = ["check_options"]

#: integer options where 0 is meaningful (every other integer option counts something: >= 1)
_INT_MINIMUM = {"max_redraws": 0}


def _unit_interval(name: str) -> bool:
    """Probabilities and fractions."""
    return name.endswith(("_prob", "_fraction")) or name == "baseline_decay"


def _check_value(option: str, value: Any, param: inspect.Parameter) -> str | None:
    """What is wrong with ``value`` for a strategy parameter, from its annotation and default;
    ``None`` if nothing."""
    kinds = {k.strip() for k in str(param.annotation).split("|")} - {"None"}
    if not kinds or param.annotation is inspect.Parameter.empty:
        return None  # not annotated: the constructor decides
    if "bool" in kinds and isinstance(value, bool):
        return None
    if "int" in kinds and is_int(value):
        low = _INT_MINIMUM.get(option, 1)
        return None if value >= low else f"an integer >= {low}"
    if "float" in kinds and (is_int(value) or isinstance(value, float)):
        x = float(value)
        inf_ok = isinstance(param.default, float) and math.isinf(param.default)
        if math.isnan(x) or (math.isinf(x) and not inf_ok) or x < 0:
            return "a finite number >= 0" + (" (or inf)" if inf_ok else "")
        if _unit_interval(option) and x > 1:
            return "a number in 0..1"
        return None
    if "str" in kinds and isinstance(value, str):
        return None
    if any(k.startswith(("Sequence[int]", "list[int]", "tuple[int")) for k in kinds) and (
            isinstance(value, list) and all(is_int(x) and x >= 0 for x in value)):
        return None
    words = {"int": f"an integer >= {_INT_MINIMUM.get(option, 1)}", "float": "a number",
             "str": "a string", "bool": "true or false"}
    wanted = [words.get(k, "a list of integers >= 0" if "[int" in k else k) for k in sorted(kinds)]
    return " or ".join(wanted)


def _strategy_class(name: str) -> type | None:
    from hwnas.search.strategies.base import STRATEGIES

    target = STRATEGIES.get(name)
    if not isinstance(target, str) or ":" not in target:
        return None
    module, cls = target.split(":")
    return getattr(__import__(module, fromlist=[cls]), cls)


def check_options(name: str, options: dict[str, Any], where: str, n_objectives: int = 2,
                  build: bool = True) -> None:
    """Check each option's name, type and range from the strategy's signature, then (``build``)
    build the strategy once (on NB201, for ``n_objectives``, the most any problem of the config
    has), so a misspelt or invalid option fails here, not in a worker after the grid ran.

    Raises:
        ConfigError: an unknown option (listing the valid ones) or an invalid value.
    """
    from hwnas.search import create_strategy, get_space

    cls = _strategy_class(name)
    if cls is not None:
        params = {k: p for k, p in inspect.signature(cls).parameters.items()
                  if k not in ("space", "n_objectives", "seed", "prior")}
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)} for {name!r}; "
                              f"valid: {', '.join(params) or 'none'}")
        for option, value in options.items():
            wrong = _check_value(option, value, params[option])
            if wrong:
                raise ConfigError(f"{where}: option {option!r} of {name!r} must be {wrong}, got "
                                  f"{show(value)}")
    if not build:
        return
    try:
        create_strategy(name, get_space("nb201"), n_objectives, seed=0, **options)
    except (HwnasError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: invalid options for {name!r}: {one_line(e)}") from None
