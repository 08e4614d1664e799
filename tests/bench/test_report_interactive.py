"""The interactive report's parts, checked by hand: attainment surfaces, the rank comparison
behind the critical-difference diagram, the figures and the offline pages (no browser here; see
test_report_browser.py)."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy.stats import f as f_dist
from scipy.stats import friedmanchisquare, norm

from hwnas.bench.report import ReportError
from hwnas.bench.report.attainment import attainment_level, attainment_surfaces
from hwnas.bench.report.collect import ProblemRuns
from hwnas.bench.report.interactive import (
    attainment_figure,
    cd_figure,
    hypervolume_figure,
    parallel_figure,
    pareto_figure,
    projections_figure,
)
from hwnas.bench.report.pages import Page, index_html, page_html, write_pages
from hwnas.bench.report.stats import nemenyi_cd, problem_scores, rank_comparison
from hwnas.bench.scoring import ReferenceFront


def test_attainment_surfaces_of_two_runs_by_hand():
    # run A reaches (1, 3) and (3, 1); run B reaches (2, 2). Attained by 1 of 2 runs: the
    # union's staircase; by 2 of 2: only what both reach, (2, 3) and (3, 2)
    a, b = np.array([[1.0, 3.0], [3.0, 1.0]]), np.array([[2.0, 2.0]])
    s = attainment_surfaces([a, b], (0.25, 0.5, 0.75, 1.0))
    assert s[0.25].tolist() == s[0.5].tolist() == [[1, 3], [2, 2], [3, 1]]
    assert s[0.75].tolist() == s[1.0].tolist() == [[2, 3], [3, 2]]


def test_attainment_median_of_three_runs_by_hand_with_an_empty_run():
    # the median (2 of 3) of {(1, 5)}, {(2, 4), (4, 1)} and an empty run: where both non-empty
    # runs reach; a run that found nothing never attains, so 3 of 3 is empty
    runs = [np.array([[1.0, 5.0]]), np.array([[2.0, 4.0], [4.0, 1.0]]), np.empty((0, 2))]
    s = attainment_surfaces(runs, (1 / 3, 0.5, 1.0))
    assert s[1 / 3].tolist() == [[1, 5], [2, 4], [4, 1]]
    assert s[0.5].tolist() == [[2, 5]]
    assert s[1.0].shape == (0, 2)


def test_attainment_surfaces_agree_with_counting_runs_at_every_point():
    """A point is inside the k/n surface exactly when at least k runs weakly dominate it."""
    rng = np.random.default_rng(0)
    runs = [rng.integers(0, 12, size=(rng.integers(1, 7), 2)).astype(float) for _ in range(5)]
    surfaces = attainment_surfaces(runs, (0.2, 0.4, 0.6, 0.8, 1.0))
    grid = np.arange(-1, 14, 0.5)
    for p, verts in surfaces.items():
        k = attainment_level(p, len(runs))
        for z1 in grid:
            for z2 in grid:
                z = np.array([z1, z2])
                attained = sum(bool((r <= z).all(axis=1).any()) for r in runs)
                inside = bool(len(verts)) and bool((verts <= z).all(axis=1).any())
                assert inside == (attained >= k), (p, z, attained)
        # a staircase: first objective rising, second falling
        assert (np.diff(verts[:, 0]) > 0).all() and (np.diff(verts[:, 1]) < 0).all()


def test_attainment_level_and_bad_input():
    assert [attainment_level(p, 4) for p in (0.25, 0.5, 0.75, 1.0)] == [1, 2, 3, 4]
    assert [attainment_level(p, 3) for p in (0.25, 0.5, 0.75)] == [1, 2, 3]
    with pytest.raises(ReportError, match="0 < fraction <= 1"):
        attainment_level(0.0, 3)
    with pytest.raises(ReportError, match="two objectives"):
        attainment_surfaces([np.ones((2, 3))])
    with pytest.raises(ReportError, match="at least one run"):
        attainment_surfaces([])


def test_nemenyi_cd_matches_demsar_table_5():
    # Demšar (JMLR 2006), Table 5a, q_0.05 for k = 2..6: the CD is q sqrt(k (k + 1) / (6 N))
    for k, q in {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850}.items():
        assert nemenyi_cd(k, 6) == pytest.approx(q * math.sqrt(k * (k + 1) / 36), abs=2e-3)


def test_rank_comparison_by_hand():
    # 4 problems x 4 strategies, no ties. Ranks per problem (1 = highest):
    #   a 1 1 2 1 -> 1.25   b 2 3 1 2 -> 2.0   c 3 2 3 4 -> 3.0   d 4 4 4 3 -> 3.75
    wide = pd.DataFrame({"a": [.9, .9, .8, .9], "b": [.8, .7, .9, .8], "c": [.7, .8, .7, .6],
                         "d": [.6, .6, .6, .7]})
    cmp = rank_comparison(wide)
    assert cmp.ranks.to_dict() == {"a": 1.25, "b": 2.0, "c": 3.0, "d": 3.75}
    # Friedman: 12 N / (k (k+1)) (sum R^2 - k (k+1)^2 / 4) = 2.4 (28.625 - 25) = 8.7, which is
    # scipy's statistic without ties; Iman-Davenport F = 3 x 8.7 / (12 - 8.7) on (3, 9) df
    assert cmp.friedman_chi2 == pytest.approx(8.7)
    assert cmp.friedman_chi2 == pytest.approx(friedmanchisquare(*wide.to_numpy().T).statistic)
    assert cmp.friedman_p == pytest.approx(f_dist.sf(26.1 / 3.3, 3, 9))
    # CD = 2.569 sqrt(20 / 24) = 2.345: a..c (1.75 apart) and b..d (1.75) are groups, a..d
    # (2.5 apart) is not; c..d is inside b..d and is not drawn on its own
    assert cmp.cd == pytest.approx(2.569 * math.sqrt(20 / 24), abs=1e-3)
    assert cmp.cliques == [["a", "b", "c"], ["b", "c", "d"]]
    # Holm against a: z = rank difference / sqrt(20 / 24); sorted p: d, c, b get x3, x2, x1
    p = {s: 2 * norm.sf(d / math.sqrt(20 / 24)) for s, d in (("b", .75), ("c", 1.75),
                                                            ("d", 2.5))}
    assert cmp.control == "a"
    assert cmp.p_holm["d"] == pytest.approx(3 * p["d"])
    assert cmp.p_holm["c"] == pytest.approx(max(3 * p["d"], 2 * p["c"]))
    assert cmp.p_holm["b"] == pytest.approx(max(2 * p["c"], p["b"]))


def test_rank_comparison_needs_two_strategies_and_complete_blocks():
    with pytest.raises(ReportError, match="two strategies"):
        rank_comparison(pd.DataFrame({"a": [1.0, 2.0]}))
    # a block missing a strategy is left out; ties share their rank; all equal: p = 1
    cmp = rank_comparison(pd.DataFrame({"a": [1.0, 1.0, np.nan], "b": [1.0, 1.0, 0.5]}))
    assert cmp.n_blocks == 2 and cmp.ranks.to_dict() == {"a": 1.5, "b": 1.5}
    assert cmp.friedman_p == 1.0 and cmp.cliques == [["a", "b"]]


NAMES3 = ["accuracy", "latency", "params"]


def _problem(names: list[str], constraints: list[str]) -> ProblemRuns:
    """A hand-made problem: a 4-point reference front and 2 strategies x 3 seeds of 8
    evaluations, some violating ``latency<=5``."""
    rng = np.random.default_rng(1)
    sign = np.array([-1.0 if n == "accuracy" else 1.0 for n in names])
    ref_nat = np.array([[90.0, 6.0, 4e5], [80.0, 3.0, 3e5], [70.0, 2.0, 2e5],
                        [60.0, 1.0, 1e5]])[:, :len(names)]
    ref = ReferenceFront(ref_nat * sign, [f"ref{i}" for i in range(4)], 90.0, "true", 100)
    runs = []
    for strategy in ("evolution", "random"):
        for seed in range(3):
            n = 8
            ev = pd.DataFrame({"step": np.arange(n), "index": np.arange(n),
                               "arch": [f"{strategy}-{seed}-{i}" for i in range(n)],
                               "accuracy": rng.uniform(50, 88, n),
                               "latency": rng.uniform(1, 8, n),
                               "params": rng.uniform(1e5, 5e5, n)})
            ev = ev[["step", "index", "arch", *names]]
            ev["violation"] = np.maximum(ev["latency"] - 5, 0) if constraints else 0.0
            runs.append((strategy, seed, ev))
    spec = {"space": "nb201", "objectives": names, "task": "t", "device": "d",
            "constraints": constraints}
    return ProblemRuns("hand", spec, ref, runs, [4, 8])


COLOURS = {"evolution": "#0173b2", "random": "#de8f05"}


@pytest.mark.slow
def test_pareto_figure_hovers_architectures_and_tells_infeasible_points_apart():
    problem = _problem(["accuracy", "latency"], ["latency<=5"])
    scores = problem_scores(problem, problem.budgets)
    fig = pareto_figure(problem, scores, COLOURS)
    names = [t.name for t in fig.data]
    assert names[0] == "true front"
    assert {"evolution: front", "evolution: infeasible", "random: feasible"} <= set(names)
    infeasible = next(t for t in fig.data if t.name == "evolution: infeasible")
    # every point drawn as infeasible violates the constraint, and carries its architecture
    assert len(infeasible.x) and all(x > 5 for x in infeasible.x)
    assert all(str(c[0]).startswith("evolution-") for c in infeasible.customdata)
    assert "%{customdata[0]}" in infeasible.hovertemplate and "violation" in \
        infeasible.hovertemplate
    front = next(t for t in fig.data if t.name == "evolution: front")
    assert all(x <= 5 for x in front.x)
    # without constraints there is no infeasible trace
    free = _problem(["accuracy", "latency"], [])
    fig = pareto_figure(free, problem_scores(free, free.budgets), COLOURS)
    assert not [t for t in fig.data if "infeasible" in t.name]


@pytest.mark.slow
def test_three_objective_views_and_attainment_figure():
    problem = _problem(NAMES3, [])
    scores = problem_scores(problem, problem.budgets)
    proj = projections_figure(problem, scores, COLOURS)
    # 3 pairs x (reference + 2 strategies), a legend entry per source once
    assert len(proj.data) == 9 and sum(t.showlegend for t in proj.data) == 3
    par = parallel_figure(problem, scores, COLOURS)
    assert [d.label for d in par.data[0].dimensions][:3] == ["accuracy (%)", "latency (ms)",
                                                             "parameters"]
    two = _problem(["accuracy", "latency"], [])
    eaf = attainment_figure(two, COLOURS)
    labels = [t.name for t in eaf.data]
    assert "evolution: 50% (3 runs)" in labels and "random: 25% (3 runs)" in labels
    median = next(t for t in eaf.data if t.name == "evolution: 50% (3 runs)")
    assert median.line.shape == "hv" and (np.diff(median.x) > 0).all()
    # accuracy is maximised: along the median surface it falls as latency rises
    assert (np.diff(median.y) > 0).all()
    hv = hypervolume_figure(two, problem_scores(two, [1, 2, 4, 8]), COLOURS)
    medians = [t for t in hv.data if t.name]
    assert [t.name for t in medians] == ["evolution (3 seeds)", "random (3 seeds)"]
    assert list(medians[0].x) == [1, 2, 4, 8]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


@pytest.mark.slow
def test_pages_embed_plotly_once_link_only_each_other_and_write_atomically(tmp_path):
    problem = _problem(["accuracy", "latency"], ["latency<=5"])
    scores = problem_scores(problem, problem.budgets)
    cmp = rank_comparison(pd.DataFrame({"evolution": [.9, .8, .7], "random": [.5, .6, .4]}))
    pages = [Page("one.html", "One", "two figures", ["<p>text</p>", pareto_figure(
        problem, scores, COLOURS), cd_figure(cmp)]), Page("empty.html", "Empty", "none", [])]
    text = page_html(pages[0], pages)
    assert text.count("plotly.js v") == 1 and text.count('class="plotly-graph-div"') == 2
    assert '<meta name="hwnas-figures" content="2">' in text
    links = _Links()
    links.feed(text)
    assert links.urls == ["index.html", "one.html", "empty.html"]
    assert "plotly.js v" not in page_html(pages[1], pages)
    counts = write_pages(pages, tmp_path)
    assert counts == {"index.html": 0, "one.html": 2, "empty.html": 0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.html", "index.html",
                                                          "one.html"]  # no temporary left
    index = index_html(pages)
    assert 'href="one.html"' in index and "(2 figures)" in index and 'href="report.md"' in index
    # the figure's data are in the page: the architectures to hover over
    assert re.search(r"evolution-[0-2]-[0-7]", text)
