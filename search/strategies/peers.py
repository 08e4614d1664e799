"""Peer libraries as strategies: optuna's samplers and pymoo's algorithms, by name.

``optuna:tpe``, ``optuna:nsga2``, ``optuna:nsga3``, ``optuna:gp``, ``optuna:random``
(:mod:`.peers_optuna`, through optuna's ask-and-tell interface, Akiba et al., KDD 2019) and
``pymoo:nsga2``, ``pymoo:nsga3``, ``pymoo:moead``, ``pymoo:smsemoa``, ``pymoo:agemoea``
(:mod:`.peers_pymoo`, through pymoo's ``ask``/``tell``, Blank & Deb, IEEE Access 2020) are
registered strategies like hwnas's own: ``create_strategy("optuna:tpe", space, 2, seed=0)``,
``hwnas search --strategy pymoo:moead``, or a compare grid's ``name = "optuna:gp"``.

They run through the same loop (:func:`hwnas.search.run_search`), so the budget counts *unique*
evaluations whatever the peer does: an architecture it proposes again is told its known value
and costs nothing. Both libraries are optional extras; this module imports neither, and a peer
whose library is missing fails with one line naming the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import HwnasError

__all__ = ["OPTUNA_STRATEGIES", "PYMOO_STRATEGIES", "PEER_STRATEGIES", "PeerLibraryError",
           "require"]

#: registered name -> class in :mod:`hwnas.search.strategies.peers_optuna`
OPTUNA_STRATEGIES = {
    "optuna:tpe": "OptunaTPE",
    "optuna:nsga2": "OptunaNSGA2",
    "optuna:nsga3": "OptunaNSGA3",
    "optuna:gp": "OptunaGP",
    "optuna:random": "OptunaRandom",
}
#: registered name -> class in :mod:`hwnas.search.strategies.peers_pymoo`
PYMOO_STRATEGIES = {
    "pymoo:nsga2": "PymooNSGA2",
    "pymoo:nsga3": "PymooNSGA3",
    "pymoo:moead": "PymooMOEAD",
    "pymoo:smsemoa": "PymooSMSEMOA",
    "pymoo:agemoea": "PymooAGEMOEA",
}
#: every peer as a lazy registry entry (``"module:Class"``, imported on first use)
PEER_STRATEGIES = {
    **{name: f"hwnas.search.strategies.peers_optuna:{cls}"
       for name, cls in OPTUNA_STRATEGIES.items()},
    **{name: f"hwnas.search.strategies.peers_pymoo:{cls}"
       for name, cls in PYMOO_STRATEGIES.items()},
}


class PeerLibraryError(HwnasError):
    """A peer strategy whose library is not installed (or too old)."""


#: the extra of pyproject.toml that installs each library, and the oldest version that works
_EXTRAS = {"optuna": ("optuna", (3, 6)), "pymoo": ("pymoo", (0, 6))}


def _version(module: ModuleType) -> tuple[int, ...]:
    parts = []
    for p in str(getattr(module, "__version__", "0")).split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def require(library: str, strategy: str) -> ModuleType:
    """Import ``library`` (``optuna`` or ``pymoo``) for ``strategy``, or say how to install it.

    Raises:
        PeerLibraryError: the library is missing or older than the extra asks, in one line
            (``optuna:tpe needs optuna: pip install "hwnas[optuna]"``).
    """
    extra, oldest = _EXTRAS[library]
    hint = f'pip install "hwnas[{extra}]"'
    try:
        module = importlib.import_module(library)
    except ImportError:
        raise PeerLibraryError(f"{strategy} needs {library}, which is not installed: "
                               f"{hint}") from None
    if _version(module) < oldest:
        raise PeerLibraryError(f"{strategy} needs {library} >= {'.'.join(map(str, oldest))}, "
                               f"found {module.__version__}: {hint}")
    return module
