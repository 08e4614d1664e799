"""``build_report``: collect the runs, compute the statistics, draw the figures, write the files.

Per problem: a summary table at every budget checkpoint (see :mod:`.stats`), anytime curves and
the fronts found against the reference front (see :mod:`.figures`); then the predictor tables and
the predicted-vs-measured figure, if asked for. Those make the static report (Markdown, PNG and
one self-contained HTML file, for papers). Beside it, the interactive report (see :mod:`.pages`):
a page per problem with hoverable fronts, 3-objective views, hypervolume over evaluations and
attainment surfaces (see :mod:`.interactive`), a page comparing strategies over problems with a
critical-difference diagram, and ``index.html``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .collect import ProblemRuns, collect
from .errors import ReportError
from .figures import (
    anytime_figure,
    checkpoint_grid,
    fronts_figure,
    palette,
    prediction_scatter,
    save_png,
)
from .interactive import (
    attainment_figure,
    cd_figure,
    hex_colours,
    hypervolume_figure,
    parallel_figure,
    pareto_figure,
    projections_figure,
    studies_figure,
    studies_fronts_figure,
    xy_objectives,
)
from .pages import Page, write_pages
from .render import (
    html_page,
    html_table,
    markdown_table,
    predictor_section,
    problem_intro,
    scatter_section,
    summary_rows,
    training_section,
)
from .stats import RankComparison, problem_scores, rank_comparison, summary_table

__all__ = ["build_report"]


def build_report(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 data_dir: str | None = None,
                 predictions: Sequence[str | os.PathLike[str]] = (),
                 scatter: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]] = (),
                 ) -> dict[str, Any]:
    """Write the interactive report (``out/index.html``, ``out/strategies.html`` and a
    ``out/problem_*.html`` per problem, see :mod:`.pages`) and the static one
    (``out/report.html``, self-contained, ``out/report.md`` and ``out/*.png``), each file
    atomically. Predictor tables and predicted-vs-measured figures are in the static report.

    Args:
        inputs: compare folders and search run folders.
        out: the report's folder (created if missing).
        data_dir: the public tables' folder (default: ``HWNAS_DATA``, else the bundled copy).
        predictions: predictor benchmark JSON files (their ``table`` becomes a rho table).
        scatter: (predicted table, measured table) CSV pairs: a predicted-vs-measured figure and
            an agreement table.

    Returns:
        ``html`` and ``md`` (the two static files), ``figures`` (how many PNGs were written),
        ``index`` (the interactive report's ``index.html``) and ``pages`` (each interactive
        page's file name -> how many figures it holds).

    Raises:
        ReportError: an input folder that is not a finished run or compare folder.
    """
    import matplotlib

    # no display is needed (or wanted) to draw PNGs
    matplotlib.use("Agg")
    problems = collect(inputs, data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colours = palette([s for p in problems for s, _, _ in p.runs])
    md = ["# hwnas comparison report", ""]
    parts = ["<h1>hwnas comparison report</h1>"]
    n_fig = 0
    pages, all_scores, all_grid = [], [], []
    for problem in problems:
        imd, iparts = problem_intro(problem)
        md += imd
        parts += iparts
        start = len(parts)
        if problem.training:
            tmd, tparts = training_section(problem)
            md += tmd
            parts += tparts
        scores = problem_scores(problem, problem.budgets)
        for b in problem.budgets:
            header, rows = summary_rows(summary_table(scores, b))
            md += [f"**Budget {b}** (median over seeds; Wilcoxon signed-rank vs the best by "
                   "hypervolume ratio, Holm-corrected, alpha 0.05)", ""]
            md += markdown_table(header, rows) + [""]
            parts += [f"<h3>Budget {b}</h3>", html_table(header, rows)]
        grid = problem_scores(problem, checkpoint_grid(problem))
        pages.append(_problem_page(problem, scores, grid, colours, iparts + parts[start:]))
        all_scores.append(scores)
        all_grid.append(grid)
        slug = _slug(problem.name)
        for kind, fig in (("anytime", anytime_figure(problem, colours, grid)),
                          ("fronts", fronts_figure(problem, scores, colours))):
            name = f"{slug}_{kind}.png"
            b64 = save_png(fig, out / name)
            n_fig += 1
            md += [f"![{problem.name} {kind}]({name})", ""]
            parts.append(f'<img alt="{html.escape(problem.name)} {kind}" '
                         f'src="data:image/png;base64,{b64}">')
    pmd, pparts = predictor_section([Path(p) for p in predictions])
    md += pmd
    parts += pparts
    if scatter:
        rows, fig = prediction_scatter([(Path(a), Path(b)) for a, b in scatter])
        b64 = save_png(fig, out / "predicted_vs_measured.png")
        n_fig += 1
        smd, sparts = scatter_section(rows, b64, "predicted_vs_measured.png")
        md += smd
        parts += sparts
    from hwnas.latency import atomic_write_text

    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    atomic_write_text(out / "report.html", html_page(parts))
    pages.insert(0, _strategies_page(problems, all_scores, all_grid, colours))
    counts = write_pages(pages, out)
    return {"html": out / "report.html", "md": out / "report.md", "figures": n_fig,
            "index": out / "index.html", "pages": counts}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _problem_page(problem: ProblemRuns, scores: pd.DataFrame, grid: pd.DataFrame,
                  colours: dict[str, Any], tables: list[str]) -> Page:
    """A problem's page: its setup and tables, then its interactive figures."""
    c = hex_colours(colours)
    names = list(problem.spec["objectives"])
    body: list[Any] = [*tables[1:], pareto_figure(problem, scores, c)]
    if len(names) >= 3:
        body += ["<h2>Three objectives</h2><p class=\"note\">Each front projected on every pair of "
                 "objectives, and all objectives at once (drag along an axis to select).</p>",
                 projections_figure(problem, scores, c), parallel_figure(problem, scores, c)]
    body += ["<h2>Hypervolume over evaluations</h2>", hypervolume_figure(problem, grid, c)]
    if len(names) == 2:
        body += ["<h2>Empirical attainment surfaces</h2><p class=\"note\">The region attained "
                 "by at least 25%, 50% and 75% of each strategy's runs (Fonseca &amp; Fleming, "
                 "PPSN 1996): the median surface is a strategy's typical front, the band between "
                 "the others its spread over seeds.</p>", attainment_figure(problem, c)]
    kind = "3-objective" if len(names) >= 3 else "2-objective"
    return Page(f"problem_{_slug(problem.name)}.html", problem.name,
                f"{kind} problem ({', '.join(names)}), {len(problem.runs)} runs", body)


def _comparison(problems: Sequence[ProblemRuns], scores: Sequence[pd.DataFrame]
                ) -> RankComparison | None:
    """Strategies ranked over problems (each problem's median hypervolume ratio at its last
    budget); with one problem, over its seeds, as the summary tables rank them."""
    if len(problems) >= 2:
        cells = {p.name: s[s["budget"] == s["budget"].max()].groupby("strategy")["hv_ratio"]
                 .median() for p, s in zip(problems, scores, strict=True)}
        wide, blocks = pd.DataFrame(cells).T, "problems"
    else:
        s = scores[0]
        wide = s[s["budget"] == s["budget"].max()].pivot_table(index="seed", columns="strategy",
                                                              values="hv_ratio")
        blocks = f"seeds of {problems[0].name}"
    try:
        return rank_comparison(wide, blocks=blocks)
    except ReportError:
        return None


def _strategies_page(problems: Sequence[ProblemRuns], scores: Sequence[pd.DataFrame],
                     grids: Sequence[pd.DataFrame], colours: dict[str, Any]) -> Page:
    """Strategies over problems (CD diagram, Friedman and Holm tests) and every study overlaid."""
    c = hex_colours(colours)
    body: list[Any] = []
    cmp = _comparison(problems, scores)
    if cmp is None:
        body.append("<p>No ranking: it needs two strategies run on the same problems.</p>")
    else:
        body += [f"<h2>Average ranks over {html.escape(cmp.blocks)}</h2><p class=\"note\">Average "
                 "ranks by hypervolume ratio at the last budget (Demšar, JMLR 2006). Friedman "
                 f"test (Iman-Davenport F): p = {cmp.friedman_p:.3g}. Strategies joined by a "
                 "bar differ by less than Nemenyi's critical difference "
                 f"(CD = {cmp.cd:.3f} at alpha {cmp.alpha}).</p>", cd_figure(cmp)]
        header = ["strategy", "average rank", f"Holm p vs {cmp.control} (z test)", "verdict"]
        rows = [[str(s), f"{r:.3f}", "-" if s == cmp.control else f"{cmp.p_holm[s]:.3g}",
                 "best-ranked" if s == cmp.control else
                 ("worse (significant)" if cmp.p_holm[s] < cmp.alpha
                  else "not significantly different")] for s, r in cmp.ranks.items()]
        body.append(html_table(header, rows))
    body.append("<h2>Per problem: Wilcoxon signed-rank vs the best, Holm-corrected</h2>")
    for problem, s in zip(problems, scores, strict=True):
        header, rows = summary_rows(summary_table(s, int(s["budget"].max())))
        body += [f"<h3>{html.escape(problem.name)} at {int(s['budget'].max())} evaluations</h3>",
                 html_table(header, rows)]
    body += ["<h2>All studies overlaid</h2>", studies_figure(problems, grids, c)]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(problems):
        groups.setdefault(xy_objectives(p.spec["objectives"]), []).append(i)
    for members in groups.values():
        if len(members) >= 2:
            body.append(studies_fronts_figure([problems[i] for i in members],
                                              [scores[i] for i in members], c))
    return Page("strategies.html", "Strategies over problems",
                f"critical-difference diagram and tests over {len(problems)} problem(s), every "
                "study overlaid", body)
