"""Spaces by name: ``get_space("nb201")``, ``list_spaces()``."""

from __future__ import annotations

import importlib
from functools import cache

from .errors import UnknownNameError
from .space import Space

__all__ = ["get_space", "list_spaces", "SPACES"]

#: name -> "module:Class"; imported on first use so that `hwnas spaces` stays fast
SPACES: dict[str, str] = {
    "nb201": "hwnas.search.nb201:NB201Space",
    "fbnet": "hwnas.search.fbnet:FBNetSpace",
    "ofa": "hwnas.search.ofa:OFASpace",
}


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return list(SPACES)


@cache
def get_space(name: str) -> Space:
    """The shared instance of a space (spaces hold no mutable state).

    Raises:
        UnknownNameError: listing the valid names.

    Example:
        >>> get_space("nb201").size
        15625
    """
    if name not in SPACES:
        raise UnknownNameError("space", name, SPACES)
    module, cls = SPACES[name].split(":")
    return getattr(importlib.import_module(module), cls)()
