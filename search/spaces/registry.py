"""Spaces by name: ``get_space("nb201")``, ``list_spaces()``, ``register_space(...)``.

The registry names each space by ``"module:Class"`` (or a factory) and imports it on first use, so
``hwnas spaces`` stays fast. It does not import the spaces' base module; the base module imports
it (``str(arch)`` asks the registry for the space), so the dependency runs one way.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import HwnasError, UnknownNameError

if TYPE_CHECKING:
    from .space import Space

__all__ = ["get_space", "list_spaces", "register_space", "SPACES"]

#: name -> "module:Class" or a zero-argument factory
SPACES: dict[str, str | Callable[[], Space]] = {
    "nb201": "hwnas.search.spaces.nb201:NB201Space",
    "fbnet": "hwnas.search.spaces.fbnet:FBNetSpace",
    "ofa": "hwnas.search.spaces.ofa:OFASpace",
}
_INSTANCES: dict[str, Space] = {}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def list_spaces() -> list[str]:
    """Names of the registered spaces."""
    return list(SPACES)


def register_space(name: str, factory: str | Callable[[], Space], *,
                   replace: bool = False) -> None:
    """Register a space under ``name`` so every hwnas entry point (CLI, problems, strategies)
    finds it.

    Args:
        name: lower-case letters, digits and ``_`` (it appears in file names and strings).
        factory: ``"module:Class"`` or a zero-argument callable returning the space; the space's
            ``name`` attribute must equal ``name``.
        replace: allow replacing an already registered name.

    Raises:
        HwnasError: a malformed name, or a name already taken (without ``replace``).

    Example:
        >>> register_space("tiny", lambda: MyTinySpace())  # doctest: +SKIP
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise HwnasError(f"space name {name!r}: use 1-40 lower-case letters, digits and _, "
                         "starting with a letter")
    if name in SPACES and not replace:
        raise HwnasError(f"space {name!r} is already registered (pass replace=True)")
    SPACES[name] = factory
    _INSTANCES.pop(name, None)


def get_space(name: str) -> Space:
    """The shared instance of a space (spaces hold no mutable state).

    Raises:
        UnknownNameError: listing the valid names.

    Example:
        >>> get_space("nb201").size
        15625
    """
    space = _INSTANCES.get(name)
    if space is not None:
        return space
    if name not in SPACES:
        raise UnknownNameError("space", name, SPACES)
    factory = SPACES[name]
    if isinstance(factory, str):
        module, cls = factory.split(":")
        space = getattr(importlib.import_module(module), cls)()
    else:
        space = factory()
    if getattr(space, "name", None) != name:
        raise HwnasError(f"space {name!r}: its factory made a space named "
                         f"{getattr(space, 'name', None)!r}")
    _INSTANCES[name] = space
    return space
