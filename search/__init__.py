"""Search spaces, architectures and (later) strategies and objectives: ``hwnas.search``.

Depends on no other hwnas package.
"""

from __future__ import annotations

from .lazy import lazy_exports

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

# name -> defining submodule, imported on first access (PEP 562): `import hwnas.X` stays
# light, so the device agent imports no torch (tests/latency/test_agent_server.py)
_EXPORTS = {
    ".data": ("CACHE_ENV_VAR", "ENV_VAR", "cache_root", "resolve_data_dir"),
    ".errors": (
        "ArchitectureError",
        "DataNotFoundError",
        "HwnasError",
        "NotInTableError",
        "TableError",
        "UnknownNameError",
    ),
    ".metrics": ("MetricSource",),
    ".objectives": (
        "Constraint",
        "Objective",
        "evaluate_objectives",
        "mnasnet_reward",
        "tchebycheff",
        "weighted_sum",
    ),
    ".pareto": (
        "constrained_ranks",
        "crowding_distance",
        "dominates",
        "non_dominated_sort",
        "pareto_mask",
    ),
    ".spaces.registry": ("SPACES", "get_space", "list_spaces"),
    ".spaces.space": ("Architecture", "Gene", "Graph", "RNGLike", "Space", "as_rng"),
    ".spaces.stats": ("ModelStats", "count_macs", "count_params", "model_stats"),
    ".strategies.base": (
        "STRATEGIES",
        "SearchRecord",
        "SearchResult",
        "Strategy",
        "create_strategy",
        "list_strategies",
        "register_strategy",
        "run_search",
    ),
    ".strategies.prior": ("PriorFeatures",),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
