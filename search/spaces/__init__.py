"""Search spaces: the architecture value, the space contract, the registry and the three spaces
(NAS-Bench-201 cells, FBNet chains, once-for-all MobileNetV3), with model statistics."""

from .registry import SPACES, get_space, list_spaces, register_space
from .space import Architecture, Gene, Graph, RNGLike, Space, as_rng
from .stats import ModelStats, count_macs, count_params, model_stats

__all__ = [
    "SPACES",
    "Architecture",
    "Gene",
    "Graph",
    "ModelStats",
    "RNGLike",
    "Space",
    "as_rng",
    "count_macs",
    "count_params",
    "get_space",
    "list_spaces",
    "model_stats",
    "register_space",
]
