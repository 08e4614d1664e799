"""Comparison reports: interactive offline HTML pages, and a static HTML and Markdown report.

Per problem: a summary table (median and IQR of hypervolume ratio, front recall, IGD+ and
constrained regret at every budget checkpoint, each strategy's average rank over seeds (Demšar,
JMLR 2006), and a Wilcoxon signed-rank test over seeds (Wilcoxon 1945) of each strategy against
the best, Holm-corrected (Holm 1979)), anytime curves (median line, IQR band), and the fronts found
against the reference front. Inputs are ``hwnas compare`` folders or ``hwnas search`` run folders;
predictor benchmark results can be added.

The interactive report (``index.html`` and a page per problem, plotly.js embedded, nothing fetched):
fronts with each architecture on hover and infeasible points marked, pairwise projections and
parallel coordinates of 3-objective fronts, hypervolume over evaluations (median, quartile band
over seeds), empirical attainment surfaces (Fonseca & Fleming 1996), every study overlaid, and a
critical-difference diagram of the strategies over problems with Friedman and Holm tests (Demšar
2006).

The flow, one module a stage: :mod:`.collect` (folders -> problems), :mod:`.stats` (indicators,
ranks, tests, summary tables), :mod:`.attainment`, :mod:`.figures` (static),
:mod:`.interactive` (plotly), :mod:`.render` (Markdown and HTML), :mod:`.pages` (the interactive
pages) and :mod:`.build` (``build_report``, which runs them in turn).
"""

from .attainment import attainment_surfaces
from .build import build_report
from .collect import ProblemRuns, collect
from .errors import ReportError
from .figures import prediction_scatter
from .stats import (
    INDICATORS,
    RankComparison,
    average_ranks,
    holm,
    nemenyi_cd,
    problem_scores,
    rank_comparison,
    summary_table,
    wilcoxon_pvalue,
)

__all__ = [
    "INDICATORS",
    "ProblemRuns",
    "RankComparison",
    "ReportError",
    "attainment_surfaces",
    "average_ranks",
    "build_report",
    "collect",
    "holm",
    "nemenyi_cd",
    "prediction_scatter",
    "problem_scores",
    "rank_comparison",
    "summary_table",
    "wilcoxon_pvalue",
]
