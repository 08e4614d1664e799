"""Verify and ship: measure a search's front on the real target, rebuild it, write the networks.

``hwnas deploy RUN_OR_COMPARE_DIR --device DEVICE [--top K] --out DIR``: :func:`deploy` reads the
search (:mod:`.candidates`), measures the front and its nearest runners-up on a target
(:mod:`.targets`: a runtime of this machine, or a registered remote scheme), compares predicted
with measured latency and rebuilds the front (:mod:`.verify`), and writes the deployable set with
its ONNX files and a report (:mod:`.render`).
"""

from .candidates import (
    SELECTION_RULE,
    DeployError,
    SearchOutcome,
    accuracy_source,
    read_search,
    select_candidates,
)
from .render import deploy_section, markdown_table, scatter_png
from .run import DEFAULT_TOP, DEPLOY_FILES, DeployResult, deploy
from .targets import (
    DeployTarget,
    LocalTarget,
    TargetOptions,
    list_targets,
    register_target,
    resolve_target,
)
from .verify import compare_latency, summarize_comparison

__all__ = [
    "DEFAULT_TOP",
    "DEPLOY_FILES",
    "SELECTION_RULE",
    "DeployError",
    "DeployResult",
    "DeployTarget",
    "LocalTarget",
    "SearchOutcome",
    "TargetOptions",
    "accuracy_source",
    "compare_latency",
    "deploy",
    "deploy_section",
    "list_targets",
    "markdown_table",
    "read_search",
    "register_target",
    "resolve_target",
    "scatter_png",
    "select_candidates",
    "summarize_comparison",
]
