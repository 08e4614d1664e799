"""Comparison reports: one self-contained HTML file and a Markdown file with figures.

Per problem: a summary table (median and IQR of hypervolume ratio, front recall, IGD+ and
constrained regret at every budget checkpoint, each strategy's average rank over seeds (Demšar,
JMLR 2006), and a Wilcoxon signed-rank test over seeds (Wilcoxon 1945) of each strategy against
the best, Holm-corrected (Holm 1979)), anytime curves (median line, IQR band), and the fronts found
against the reference front. Inputs are ``hwnas compare`` folders or ``hwnas search`` run folders;
predictor benchmark results can be added.

The flow, one module a stage: :mod:`.collect` (folders -> problems), :mod:`.stats` (indicators,
ranks, tests, summary tables), :mod:`.figures`, :mod:`.render` (Markdown and HTML), and
:mod:`.build` (``build_report``, which runs them in turn).
"""

from .build import build_report
from .collect import ProblemRuns, collect
from .errors import ReportError
from .figures import prediction_scatter
from .stats import INDICATORS, average_ranks, holm, problem_scores, summary_table, wilcoxon_pvalue

__all__ = [
    "INDICATORS",
    "ProblemRuns",
    "ReportError",
    "average_ranks",
    "build_report",
    "collect",
    "holm",
    "prediction_scatter",
    "problem_scores",
    "summary_table",
    "wilcoxon_pvalue",
]
