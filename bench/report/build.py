"""``build_report``: collect the runs, compute the statistics, draw the figures, write both files.

Per problem: a summary table at every budget checkpoint (see :mod:`.stats`), anytime curves and
the fronts found against the reference front (see :mod:`.figures`); then the predictor tables and
the predicted-vs-measured figure, if asked for.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .collect import collect
from .figures import anytime_figure, fronts_figure, palette, prediction_scatter, save_png
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
from .stats import problem_scores, summary_table

__all__ = ["build_report"]


def build_report(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 data_dir: str | None = None,
                 predictions: Sequence[str | os.PathLike[str]] = (),
                 scatter: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]] = (),
                 ) -> dict[str, Any]:
    """Write ``out/report.html`` (self-contained), ``out/report.md`` and ``out/*.png``.

    Args:
        inputs: compare folders and search run folders.
        out: the report's folder (created if missing).
        data_dir: the public tables' folder (default: ``HWNAS_DATA``, else the bundled copy).
        predictions: predictor benchmark JSON files (their ``table`` becomes a rho table).
        scatter: (predicted table, measured table) CSV pairs: a predicted-vs-measured figure and
            an agreement table.

    Returns:
        ``html`` and ``md`` (the two paths) and ``figures`` (how many PNGs were written).

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
    for problem in problems:
        imd, iparts = problem_intro(problem)
        md += imd
        parts += iparts
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
        slug = "".join(c if c.isalnum() else "_" for c in problem.name)
        for kind, fig in (("anytime", anytime_figure(problem, colours)),
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
    return {"html": out / "report.html", "md": out / "report.md", "figures": n_fig}
