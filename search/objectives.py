"""Objectives: a metric source plus a direction, optional hard constraints, scalarisations.

Directions are stated once, here; everything downstream minimises (``to_minimise`` negates what is
maximised). Scalarisations turn several objectives into one for single-objective strategies:
weighted sum, Tchebycheff (Miettinen, *Nonlinear Multiobjective Optimization*, 1999) and the
MnasNet soft constraint ``acc * (lat / T) ** w`` (Tan et al., "MnasNet: Platform-Aware Neural
Architecture Search for Mobile", CVPR 2019).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import HwnasError
from .metrics import MetricSource
from .spaces.space import Architecture

__all__ = [
    "Objective",
    "Constraint",
    "evaluate_objectives",
    "weighted_sum",
    "tchebycheff",
    "mnasnet_reward",
]


@dataclass(frozen=True)
class Objective:
    """A metric to minimise or maximise.

    Attributes:
        name: short name (``accuracy``, ``latency``, ``params``...).
        source: where values come from.
        direction: ``"min"`` or ``"max"``.
        weight: weight in scalarisations.
    """

    name: str
    source: MetricSource
    direction: str = "min"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise HwnasError(f"objective {self.name}: direction {self.direction!r}; "
                             "valid: min, max")

    @property
    def sign(self) -> float:
        """+1 for minimised objectives, -1 for maximised ones."""
        return 1.0 if self.direction == "min" else -1.0


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(<=|>=)\s*([-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """A hard constraint on an objective's natural value, e.g. ``latency <= 5``."""

    objective: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        # built directly (not parsed), a bad constraint would otherwise be silently always met
        if not isinstance(self.objective, str) or not self.objective:
            raise HwnasError(f"constraint objective {self.objective!r}; valid: an objective name")
        if self.op not in ("<=", ">="):
            raise HwnasError(f"constraint operator {self.op!r}; valid: <=, >=")
        if isinstance(self.bound, bool) or not isinstance(self.bound, int | float | np.number) \
                or not math.isfinite(self.bound):
            raise HwnasError(f"constraint bound {self.bound!r}; valid: a finite number")
        object.__setattr__(self, "bound", float(self.bound))

    @classmethod
    def parse(cls, text: str, names: Sequence[str]) -> Constraint:
        """Parse ``NAME<=VALUE`` or ``NAME>=VALUE``.

        Raises:
            HwnasError: a string that is not a constraint, or names no known objective.
        """
        m = _CONSTRAINT.match(text)
        if not m:
            raise HwnasError(f"constraint {text!r} does not parse; form: NAME<=VALUE or "
                             "NAME>=VALUE, e.g. latency<=5")
        name, op, value = m.groups()
        try:
            bound = float(value)
        except ValueError:
            raise HwnasError(f"constraint {text!r}: {value!r} is not a number; form: "
                             "NAME<=VALUE or NAME>=VALUE, e.g. latency<=5") from None
        if name not in names:
            raise HwnasError(f"constraint {text!r} names {name!r}, not an objective; valid: "
                             f"{', '.join(names)}")
        return cls(name, op, bound)

    def violation(self, values: np.ndarray) -> np.ndarray:
        """How far values are outside the bound (0 where satisfied)."""
        v = np.asarray(values, dtype=np.float64)
        excess = v - self.bound if self.op == "<=" else self.bound - v
        return np.maximum(0.0, excess)

    def __str__(self) -> str:
        return f"{self.objective}{self.op}{self.bound:g}"


def evaluate_objectives(
    objectives: Sequence[Objective], archs: Sequence[Architecture],
    constraints: Sequence[Constraint] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Natural values ``(n, m)``, minimised values ``(n, m)`` and total violation ``(n,)``."""
    values = np.column_stack([o.source.evaluate(archs) for o in objectives]) if archs else \
        np.zeros((0, len(objectives)))
    F = values * np.array([o.sign for o in objectives])
    names = [o.name for o in objectives]
    violation = np.zeros(len(archs))
    for c in constraints:
        violation += c.violation(values[:, names.index(c.objective)])
    return values, F, violation


def weighted_sum(F: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of minimised objectives (lower is better)."""
    return np.asarray(F, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)


def tchebycheff(F: np.ndarray, weights: Sequence[float], ideal: Sequence[float]) -> np.ndarray:
    """Weighted Tchebycheff distance to the ideal point (lower is better)."""
    F = np.asarray(F, dtype=np.float64)
    return np.max(np.asarray(weights) * np.abs(F - np.asarray(ideal)), axis=1)


def mnasnet_reward(accuracy: np.ndarray, latency: np.ndarray, target: float,
                   w: float = -0.07) -> np.ndarray:
    """MnasNet's soft-constrained reward ``acc * (lat / target) ** w`` (higher is better)."""
    return np.asarray(accuracy) * (np.asarray(latency) / target) ** w
