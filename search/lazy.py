"""Lazy re-exports for a package ``__init__`` (PEP 562 module ``__getattr__``).

A package ``__init__`` that imports every submodule eagerly makes ``import hwnas.search`` pull in
torch, pandas and scipy; the device agent (which runs on boards without torch) needs only a few
light modules. With :func:`lazy_exports` a package states ``name -> submodule`` once, keeps its
``__all__`` and every ``from package import name`` working, and imports a submodule on the first
access of one of its names (the pattern of SciPy's and scikit-image's ``lazy_loader``, SPEC 1).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, tuple[str, ...]],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package with lazy public names.

    Args:
        package: the package's ``__name__``.
        exports: submodule (relative, ``.runtime``, or absolute) -> the public names it defines.
        namespace: the package's ``globals()``; a resolved name is cached there, so each is looked
            up once.

    Returns:
        ``(__getattr__, __dir__)`` to assign in the package. A name that is neither exported nor a
        submodule raises ``AttributeError`` as usual.

    Example::

        __getattr__, __dir__ = lazy_exports(__name__, {".errors": ("HwnasError",)}, globals())
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            # ``package.submodule`` without an import statement worked with eager imports; keep it
            try:
                value: Any = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        else:
            value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where})

    return __getattr__, __dir__
