"""The one error a report raises for inputs it cannot use."""

from __future__ import annotations

from hwnas.search import HwnasError

__all__ = ["ReportError"]


class ReportError(HwnasError):
    """Inputs a report cannot be made from; the message names the folder and why."""
