"""The one core every search goes through: Problem -> minimize -> Result -> run folder."""

from .minimize import Result, SearchWarning, minimize
from .priors import build_prior, default_prior
from .problem import (
    DIRECTIONS,
    EVALUATE,
    OBJECTIVES,
    Problem,
    is_accuracy_file,
    named_objectives,
    signs_of,
)
from .reference import ReferenceFront, score_frame, true_front
from .runs import RUN_FILES, read_run, verify_run, write_run

__all__ = [
    "DIRECTIONS",
    "EVALUATE",
    "OBJECTIVES",
    "Problem",
    "RUN_FILES",
    "ReferenceFront",
    "Result",
    "SearchWarning",
    "build_prior",
    "default_prior",
    "is_accuracy_file",
    "minimize",
    "named_objectives",
    "read_run",
    "score_frame",
    "signs_of",
    "true_front",
    "verify_run",
    "write_run",
]
