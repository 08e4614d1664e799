"""Search spaces, architectures and (later) strategies and objectives: ``hwnas.search``.

Depends on no other hwnas package.
"""

from .data import CACHE_ENV_VAR, ENV_VAR, cache_root, resolve_data_dir
from .errors import (
    ArchitectureError,
    DataNotFoundError,
    HwnasError,
    NotInTableError,
    TableError,
    UnknownNameError,
)
from .metrics import MetricSource
from .objectives import (
    Constraint,
    Objective,
    evaluate_objectives,
    mnasnet_reward,
    tchebycheff,
    weighted_sum,
)
from .pareto import (
    constrained_ranks,
    crowding_distance,
    dominates,
    non_dominated_sort,
    pareto_mask,
)
from .spaces.registry import SPACES, get_space, list_spaces
from .spaces.space import Architecture, Gene, Graph, RNGLike, Space, as_rng
from .spaces.stats import ModelStats, count_macs, count_params, model_stats
from .strategies.base import (
    STRATEGIES,
    SearchRecord,
    SearchResult,
    Strategy,
    create_strategy,
    list_strategies,
    register_strategy,
    run_search,
)
from .strategies.prior import PriorFeatures

__all__ = [
    "STRATEGIES",
    "Constraint",
    "Objective",
    "SearchRecord",
    "SearchResult",
    "Strategy",
    "constrained_ranks",
    "create_strategy",
    "crowding_distance",
    "dominates",
    "evaluate_objectives",
    "list_strategies",
    "register_strategy",
    "mnasnet_reward",
    "non_dominated_sort",
    "pareto_mask",
    "run_search",
    "tchebycheff",
    "weighted_sum",
    "CACHE_ENV_VAR",
    "ENV_VAR",
    "SPACES",
    "Architecture",
    "ArchitectureError",
    "DataNotFoundError",
    "Gene",
    "Graph",
    "HwnasError",
    "MetricSource",
    "ModelStats",
    "PriorFeatures",
    "NotInTableError",
    "RNGLike",
    "Space",
    "TableError",
    "UnknownNameError",
    "as_rng",
    "cache_root",
    "count_macs",
    "count_params",
    "get_space",
    "list_spaces",
    "model_stats",
    "resolve_data_dir",
]
