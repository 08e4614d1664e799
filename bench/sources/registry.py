"""One registry of metric sources by name, each with a typed options dataclass.

A metric source answers "this metric for these architectures" (:class:`hwnas.search.MetricSource`).
Sources are created by name, ``create_source("latency:table", space, device="pixel2")``, so that
the command line, :meth:`hwnas.bench.Problem.from_names` and a user's script build them the same
way; a user's own source plugs in with :func:`register_source`::

    @dataclass(frozen=True)
    class ZeroCostOptions:
        batch: int = 64

    register_source("zero-cost", lambda space, options: MyProxy(space, options.batch),
                    options=ZeroCostOptions)

Options are dataclasses that validate themselves in ``__post_init__``; a keyword that is not a
field is refused with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hwnas.search import HwnasError, MetricSource, Space, UnknownNameError

__all__ = ["SourceSpec", "register_source", "create_source", "list_sources", "source_spec"]

#: factory(space, options) -> a metric source
SourceFactory = Callable[[Space, Any], MetricSource]


@dataclass(frozen=True)
class SourceSpec:
    """A registered source: its factory, options class and a one-line description."""

    name: str
    factory: SourceFactory
    options: type | None
    doc: str = ""


_SOURCES: dict[str, SourceSpec] = {}


def register_source(name: str, factory: SourceFactory, options: type | None = None,
                    doc: str = "", replace: bool = False) -> None:
    """Register a metric source under ``name``.

    Args:
        factory: ``factory(space, options)`` returning a :class:`~hwnas.search.MetricSource`.
        options: a dataclass of the source's options (``None``: it takes none).
        doc: one line for listings.
        replace: allow replacing a registered name.

    Raises:
        HwnasError: an empty or taken name, a non-callable factory, options not a dataclass.
    """
    if not isinstance(name, str) or not name.strip():
        raise HwnasError(f"a metric source name must be a non-empty string, got {name!r}")
    if name in _SOURCES and not replace:
        raise HwnasError(f"metric source {name!r} is already registered (replace=True to "
                         "replace it)")
    if not callable(factory):
        raise HwnasError(f"metric source {name!r}: the factory must be callable")
    if options is not None and not dataclasses.is_dataclass(options):
        raise HwnasError(f"metric source {name!r}: options must be a dataclass, got {options!r}")
    _SOURCES[name] = SourceSpec(name, factory, options, doc)


def list_sources() -> list[str]:
    """Names of the registered metric sources."""
    return list(_SOURCES)


def source_spec(name: str) -> SourceSpec:
    """The registration of ``name``.

    Raises:
        UnknownNameError: listing the valid names.
    """
    if name not in _SOURCES:
        raise UnknownNameError("metric source", name, _SOURCES)
    return _SOURCES[name]


def create_source(name: str, space: Space, options: Any = None, **kwargs: Any) -> MetricSource:
    """A metric source by name, e.g. ``create_source("accuracy:table", space, task="...")``.

    Args:
        options: an instance of the source's options class, or a mapping of its fields;
            ``kwargs`` are more fields (they override ``options``' mapping).

    Raises:
        UnknownNameError: an unknown source.
        HwnasError: options of another type, unknown fields (listing the valid ones), values the
            options class refuses.
    """
    spec = source_spec(name)
    if spec.options is None:
        if options is not None or kwargs:
            raise HwnasError(f"metric source {name!r} takes no options")
        return spec.factory(space, None)
    if isinstance(options, spec.options) and not kwargs:
        return spec.factory(space, options)
    if options is not None and not isinstance(options, Mapping):
        raise HwnasError(f"metric source {name!r}: options must be a {spec.options.__name__} or "
                         f"a mapping, got {type(options).__name__}")
    fields = {**dict(options or {}), **kwargs}
    valid = [f.name for f in dataclasses.fields(spec.options)]
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise HwnasError(f"metric source {name!r}: unknown option(s) {', '.join(unknown)}; "
                         f"valid: {', '.join(valid) or 'none'}")
    try:
        typed = spec.options(**fields)
    except TypeError as e:  # a required field missing
        raise HwnasError(f"metric source {name!r}: {e}") from None
    return spec.factory(space, typed)
