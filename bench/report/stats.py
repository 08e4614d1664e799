"""The statistics of a comparison report: indicators per run, medians, ranks and tests.

For one problem and one budget, each strategy's runs (one per seed) are summarised by the median
and interquartile range of every indicator. Strategies are ranked per seed by hypervolume ratio
and the ranks averaged over seeds (ties share the mean of their ranks), as Demšar ranks
classifiers over data sets ("Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR
7, 2006); the seeds play the data sets. The strategy with the best median hypervolume ratio is
compared with each other strategy by Wilcoxon's signed-rank test on the paired seeds (Wilcoxon,
"Individual Comparisons by Ranking Methods", Biometrics Bulletin 1, 1945), and the p-values of
these comparisons are adjusted by Holm's step-down procedure (Holm, "A Simple Sequentially
Rejective Multiple Test Procedure", Scandinavian Journal of Statistics 6, 1979).

Across problems, :func:`rank_comparison` follows Demšar's recommendation for several strategies
over several data sets: average ranks, the Friedman test with Iman and Davenport's F statistic,
Nemenyi's critical difference for the critical-difference diagram, and Holm-corrected z tests of
every strategy against the best-ranked one (Demšar 2006, sections 3.2.2 and 3.2.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..scoring import score_run
from .collect import ProblemRuns

__all__ = ["INDICATORS", "RankComparison", "average_ranks", "holm", "nemenyi_cd",
           "problem_scores", "rank_comparison", "summary_table", "wilcoxon_pvalue"]

#: indicator column -> (label in the report, which direction is better)
INDICATORS = {"hv_ratio": ("hypervolume ratio", "max"), "recall": ("front recall", "max"),
              "igd_plus": ("IGD+", "min"), "regret": ("accuracy regret (pp)", "min")}


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, Scand. J. Statistics 1979).

    With the m p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of p_(i) is
    max_{j <= i} min(1, (m - j + 1) p_(j)): each hypothesis is rejected at level alpha exactly
    when Holm's procedure rejects it, and the family-wise error rate stays at most alpha.
    Returned in the order given.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    # the running maximum keeps the adjusted values in the order of the raw ones (step-down)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def wilcoxon_pvalue(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided p-value of Wilcoxon's signed-rank test of paired samples (Wilcoxon 1945).

    The statistic is the smaller of the rank sums of the positive and the negative differences
    x - y (ranks of |x - y|, zero differences dropped). scipy's default method is used: the exact
    null distribution for small samples without zero or tied differences, else the normal
    approximation. Where there is nothing to test (fewer than two pairs, or every difference
    zero) the p-value is 1.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or not (a - b != 0).any():
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def average_ranks(wide: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """Each column's rank per row (1 = best, ties share their mean rank), averaged over rows.

    ``wide`` holds one row per seed and one column per strategy; a missing value is left out of
    its row's ranking (Demšar, JMLR 2006, ranks over data sets).
    """
    return wide.rank(axis=1, ascending=not higher_is_better).mean(axis=0)


def problem_scores(problem: ProblemRuns, budgets: Sequence[int]) -> pd.DataFrame:
    """Every run's indicators at every budget: one row per (strategy, seed, budget)."""
    rows = []
    for label, seed, ev in problem.runs:
        for row in score_run(ev, problem.spec, problem.reference, budgets):
            rows.append({"strategy": label, "seed": seed, **row})
    return pd.DataFrame(rows)


def _quartiles(values: pd.Series) -> tuple[float, float, float]:
    # a run with no feasible point has an infinite IGD+ or regret: it is left out of the median
    if values.notna().any() and np.isfinite(values).any():
        q1, med, q3 = np.nanpercentile(values.replace(np.inf, np.nan), [25, 50, 75])
        return q1, med, q3
    return (np.nan,) * 3


def summary_table(scores: pd.DataFrame, budget: int, alpha: float = 0.05) -> pd.DataFrame:
    """Per strategy at one budget: median and IQR of every indicator, average rank (by
    hypervolume ratio, per seed), and the Holm-corrected Wilcoxon test against the best.

    Args:
        scores: rows of ``strategy``, ``seed``, ``budget`` and the :data:`INDICATORS` columns
            (as :func:`problem_scores` gives).
        budget: the budget whose rows are summarised.
        alpha: the family-wise level of the tests against the best.

    Returns:
        One row per strategy, sorted by average rank: ``runs``, each indicator's median and
        ``*_iqr``, ``avg_rank``, ``p_holm`` (NaN for the best) and ``vs_best`` (``best``,
        ``worse (significant)`` or ``not significantly different``). Empty where no run has
        the budget.
    """
    at = scores[scores["budget"] == budget]
    out = []
    for label, g in at.groupby("strategy", sort=True):
        row: dict[str, Any] = {"strategy": label, "runs": len(g)}
        for ind in INDICATORS:
            q1, med, q3 = _quartiles(g[ind])
            row[ind] = med
            row[f"{ind}_iqr"] = q3 - q1
        out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    wide = at.pivot_table(index="seed", columns="strategy", values="hv_ratio")
    table["avg_rank"] = table["strategy"].map(average_ranks(wide))
    best = table.loc[table["hv_ratio"].idxmax(), "strategy"]
    pvals, names = [], []
    for label in table["strategy"]:
        if label == best:
            continue
        # paired by seed: only seeds both strategies ran
        pair = wide[[best, label]].dropna()
        pvals.append(wilcoxon_pvalue(pair[best], pair[label]))
        names.append(label)
    adjusted = dict(zip(names, holm(pvals), strict=True)) if pvals else {}
    table["p_holm"] = table["strategy"].map(adjusted)
    table["vs_best"] = [
        "best" if s == best else ("worse (significant)" if adjusted[s] < alpha
                                  else "not significantly different")
        for s in table["strategy"]]
    return table.sort_values("avg_rank").reset_index(drop=True)


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of average ranks, ``q_alpha sqrt(k (k + 1) / (6 N))``.

    ``q_alpha`` is the studentized range statistic for k groups and infinite degrees of freedom
    divided by sqrt(2) (Demšar 2006, eq. 3 and Table 5: 1.960, 2.343, 2.569 for k = 2, 3, 4 at
    alpha 0.05); scipy's studentized range gives it for any k and alpha.
    """
    from scipy.stats import studentized_range

    q = float(studentized_range.ppf(1 - alpha, k, np.inf)) / np.sqrt(2)
    return float(q * np.sqrt(k * (k + 1) / (6 * n_blocks)))


@dataclass(frozen=True)
class RankComparison:
    """Strategies compared over blocks (problems, or the seeds of one problem), Demšar 2006.

    ``ranks`` are the average ranks (1 = best), sorted best first; ``friedman_p`` is the p-value
    of Iman and Davenport's F statistic (1 where every rank is equal); ``cd`` is Nemenyi's
    critical difference at ``alpha``; ``p_holm`` holds each strategy's Holm-corrected p-value
    against ``control`` (the best-ranked); ``cliques`` are the maximal groups of strategies
    whose average ranks differ by less than ``cd`` (the bars of the diagram)."""

    ranks: pd.Series
    n_blocks: int
    blocks: str
    friedman_chi2: float
    friedman_p: float
    cd: float
    alpha: float
    control: str
    p_holm: dict[str, float]
    cliques: list[list[str]]


def rank_comparison(wide: pd.DataFrame, higher_is_better: bool = True, alpha: float = 0.05,
                    blocks: str = "problems") -> RankComparison:
    """Average ranks, Friedman test, Nemenyi CD and Holm tests against the best (Demšar 2006).

    Args:
        wide: one row per block, one column per strategy (a block missing a strategy is left
            out: the Friedman test needs complete blocks).
        higher_is_better: the direction of the values (hypervolume ratio: higher).
        alpha: the level of the critical difference and of the tests.
        blocks: what a row is, for the report's caption.

    Raises:
        ReportError: fewer than two strategies, or no block with all of them.

    Example:
        >>> w = pd.DataFrame({"a": [.9, .8, .7], "b": [.5, .6, .4]})
        >>> rank_comparison(w).ranks.to_dict()
        {'a': 1.0, 'b': 2.0}
    """
    from scipy.stats import f as f_dist
    from scipy.stats import norm

    from .errors import ReportError

    complete = wide.dropna()
    k, n = complete.shape[1], complete.shape[0]
    if k < 2 or n < 1:
        raise ReportError(f"a rank comparison needs two strategies and a block with both; got "
                          f"{k} strategies and {n} complete {blocks}")
    ranks = average_ranks(complete, higher_is_better).sort_values(kind="stable")
    # Friedman's statistic from the average ranks (Demšar eq. 1), then Iman and Davenport's F,
    # which Demšar recommends as less conservative (eq. 2)
    chi2 = 12 * n / (k * (k + 1)) * (float((ranks ** 2).sum()) - k * (k + 1) ** 2 / 4)
    chi2 = max(chi2, 0.0)
    denom = n * (k - 1) - chi2
    if chi2 <= 1e-12 or n < 2:
        p = 1.0
    elif denom <= 0:  # every block ranks the strategies the same way
        p = 0.0
    else:
        p = float(f_dist.sf((n - 1) * chi2 / denom, k - 1, (k - 1) * (n - 1)))
    cd = nemenyi_cd(k, n, alpha)
    control = str(ranks.index[0])
    se = np.sqrt(k * (k + 1) / (6 * n))
    others = [str(s) for s in ranks.index[1:]]
    raw = [float(2 * norm.sf(abs(ranks[s] - ranks[control]) / se)) for s in others]
    p_holm = dict(zip(others, map(float, holm(raw)), strict=True)) if raw else {}
    names, values = [str(s) for s in ranks.index], ranks.to_numpy()
    spans = [(i, int(np.flatnonzero(values - values[i] < cd).max())) for i in range(k)]
    # a group is drawn when it holds two strategies or more and no wider group contains it
    cliques = [names[i:j + 1] for i, j in spans
               if j > i and not any(a <= i and j <= b and (a, b) != (i, j) for a, b in spans)]
    return RankComparison(ranks, n, blocks, chi2, p, cd, alpha, control, p_holm, cliques)
