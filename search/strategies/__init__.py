"""Search strategies behind one ask/tell contract, their registry and the search loop."""

from .base import (
    STRATEGIES,
    ExhaustiveSearch,
    RandomSearch,
    SearchRecord,
    SearchResult,
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
    run_search,
)
from .prior import PriorFeatures

__all__ = [
    "STRATEGIES",
    "ExhaustiveSearch",
    "PriorFeatures",
    "RandomSearch",
    "SearchRecord",
    "SearchResult",
    "Strategy",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "run_search",
]
