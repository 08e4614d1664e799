"""Search strategies behind one ask/tell contract, their registry and the search loop."""

from .auto import AutoStrategy, StrategyChoice, choose_strategy
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
    "AutoStrategy",
    "ExhaustiveSearch",
    "PriorFeatures",
    "RandomSearch",
    "SearchRecord",
    "SearchResult",
    "StrategyChoice",
    "Strategy",
    "choose_strategy",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "run_search",
]
