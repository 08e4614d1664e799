"""What ``auto`` needs to know of a problem, and the record of what it did.

:class:`hwnas.search.strategies.AutoStrategy` picks a strategy from the problem's shape
(:class:`~hwnas.search.strategies.auto.AutoInputs`); this module reads that shape from a
:class:`~hwnas.bench.Problem` (or any problem :func:`~hwnas.bench.minimize` takes): the budget,
what can be evaluated at all, the objectives, what an evaluation costs, and the priors it may use
(:func:`hwnas.bench.core.priors.default_prior`, unless the caller names its own or turns them off).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwnas.search import HwnasError
from hwnas.search.strategies.prior import PriorFeatures

__all__ = ["LIVE_SOURCES", "auto_options", "evaluation_cost", "prior_record"]

#: metric sources (by name prefix) that train or measure as the search asks; a source may also
#: say so itself with a boolean ``live`` attribute
LIVE_SOURCES = ("accuracy:live", "latency:live", "live:", "memory", "energy", "local:", "remote:")


def evaluation_cost(problem: Any) -> str:
    """``live`` when some objective's source trains or measures now, else ``lookup``."""
    for o in getattr(problem, "objectives", None) or []:
        source = getattr(o, "source", None)
        if source is None:
            continue
        live = getattr(source, "live", None)
        if isinstance(live, bool):
            if live:
                return "live"
            continue
        if str(getattr(source, "name", "")).startswith(LIVE_SOURCES):
            return "live"
    return "lookup"


def _setup(problem: Any) -> dict[str, Any]:
    """Task, device, live dataset and which of accuracy/latency have a known source: from
    :meth:`Problem.from_names`'s record where there is one, else from the sources themselves
    (a table column or device); a source that says neither is not known."""
    from ..devices import TableLatency
    from ..sources import TableAccuracy

    setup = dict(getattr(problem, "setup", None) or {})
    names = list(problem.names)
    if {"task", "device"} <= set(setup):
        known = ["accuracy", "latency"]
        dataset = setup.get("dataset") if setup.get("evaluate") == "train" else None
        return {"task": setup["task"] if "accuracy" in names else None,
                "device": setup["device"] if "latency" in names else None,
                "dataset": dataset, "known": known}
    out: dict[str, Any] = {"task": None, "device": None, "dataset": None, "known": []}
    for o in getattr(problem, "objectives", None) or []:
        source = getattr(o, "source", None)
        if getattr(o, "name", None) == "accuracy" and isinstance(source, TableAccuracy):
            out["task"] = source.task
            out["known"].append("accuracy")
        elif getattr(o, "name", None) == "latency" and isinstance(source, TableLatency):
            out["device"] = source.device
            out["known"].append("latency")
    return out


def prior_record(prior: PriorFeatures | None, how: str) -> dict[str, Any]:
    """``{"how": how, "used": names}`` for priors named by the caller (or none)."""
    return {"how": how, "used": list(prior.names) if prior is not None else []}


def auto_options(problem: Any, budget: int, options: Mapping[str, Any], prior: bool
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keyword arguments of :class:`~hwnas.search.strategies.AutoStrategy` for ``problem``,
    and the record of its priors (``how``: ``given``, ``default`` or ``off``; ``used``;
    ``left_out``).

    Args:
        options: the caller's strategy options: at most ``prior`` (a :class:`PriorFeatures`).
        prior: hand ``auto`` the default priors when ``options`` names none.

    Raises:
        HwnasError: other options (``auto`` chooses them), priors both given and turned off.
    """
    from .priors import default_prior

    extra = sorted(set(options) - {"prior"})
    if extra:
        raise HwnasError(f"strategy 'auto' picks its strategy and that strategy's options from "
                         f"the problem; it takes none ({', '.join(extra)} given): name a "
                         "strategy to set its options")
    given = options.get("prior")
    if given is not None and not prior:
        raise HwnasError("priors are both given and turned off; give one or the other")
    if given is not None:
        features, record = given, prior_record(given, "given")
    elif prior:
        setup = _setup(problem)
        features, record = default_prior(problem.space.name, getattr(problem, "tables", None),
                                         list(problem.names), setup["task"], setup["device"],
                                         setup["dataset"], setup["known"])
    else:
        features, record = None, prior_record(None, "off")
    max_evaluations = problem.max_evaluations()
    return ({"budget": int(budget), "max_evaluations": max_evaluations,
             "objectives": tuple(problem.names), "evaluation": evaluation_cost(problem),
             "prior": features}, record)
