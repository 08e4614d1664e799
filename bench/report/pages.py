"""The interactive report: offline HTML pages of plotly figures, and an index linking them.

One page per problem (tables, fronts, 3-objective views, hypervolume, attainment surfaces), one
page comparing strategies over problems (critical-difference diagram, Friedman and Holm tests,
every study overlaid) and ``index.html``. Each page embeds plotly.js once, inline (the first
figure carries it), and links nothing but its sibling pages: it opens from a USB stick, an email
attachment or an air-gapped cluster. Every page says in a ``<meta name="hwnas-figures">`` tag how
many figures it holds, so a browser check can count what rendered against it.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .render import _CSS

__all__ = ["Page", "figure_html", "index_html", "page_html", "write_pages"]

#: plotly's logo links to its website; the page must not link out
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                 "toImageButtonOptions": {"format": "svg"}}

_PAGE_CSS = _CSS + (".plotly-graph-div{margin:1em 0}nav{margin:0 0 1.5em;font-size:14px}"
                    "nav a{margin-right:1em}.note{color:#555;font-size:14px}")


@dataclass
class Page:
    """One page: its file name, title, one line for the index, and its body in order (HTML
    strings and plotly figures)."""

    name: str
    title: str
    summary: str
    body: list[Any] = field(default_factory=list)

    @property
    def n_figures(self) -> int:
        """How many figures the page holds."""
        return sum(not isinstance(b, str) for b in self.body)


def figure_html(fig: Any, div_id: str, with_plotlyjs: bool) -> str:
    """A figure's ``<div>`` and script; the first figure of a page carries plotly.js inline
    (``include_plotlyjs=True``), the others reuse it."""
    return fig.to_html(full_html=False, include_plotlyjs=with_plotlyjs, div_id=div_id,
                       config=PLOTLY_CONFIG)


def _nav(pages: Sequence[Page]) -> str:
    links = ['<a href="index.html">index</a>']
    links += [f'<a href="{html.escape(p.name)}">{html.escape(p.title)}</a>' for p in pages]
    return "<nav>" + " ".join(links) + "</nav>"


def _document(title: str, body: str, n_figures: int) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"hwnas-figures\" content=\"{n_figures}\">"
            f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}</style></head><body>"
            + body + "</body></html>\n")


def page_html(page: Page, pages: Sequence[Page] = ()) -> str:
    """The whole document of ``page``, with links to ``pages``."""
    parts = [_nav(pages), f"<h1>{html.escape(page.title)}</h1>"]
    k = 0
    for item in page.body:
        if isinstance(item, str):
            parts.append(item)
        else:
            parts.append(figure_html(item, f"fig-{k}", with_plotlyjs=k == 0))
            k += 1
    return _document(page.title, "\n".join(parts), k)


def index_html(pages: Sequence[Page], static: Sequence[str] = ("report.html", "report.md")
               ) -> str:
    """The index: every interactive page with its figure count, and the static report."""
    rows = "".join(f'<li><a href="{html.escape(p.name)}">{html.escape(p.title)}</a> '
                   f'({p.n_figures} figures): {html.escape(p.summary)}</li>' for p in pages)
    stat = " and ".join(f'<a href="{html.escape(s)}">{html.escape(s)}</a>' for s in static)
    body = ("<h1>hwnas comparison report</h1><p>Interactive pages (hover a point for its "
            "architecture and values; click a legend entry to hide it, double-click to show "
            f"only it):</p><ul>{rows}</ul><p class=\"note\">The same tables with static figures, "
            f"for papers: {stat} (PNG files beside them).</p>")
    return _document("hwnas comparison report", body, 0)


def write_pages(pages: Sequence[Page], out: str | os.PathLike[str]) -> dict[str, int]:
    """Write every page and ``index.html`` into ``out`` (each atomically).

    Returns:
        page file name -> how many figures it holds (``index.html``: 0).
    """
    from hwnas.latency import atomic_write_text

    out = Path(out)
    for page in pages:
        atomic_write_text(out / page.name, page_html(page, pages))
    atomic_write_text(out / "index.html", index_html(pages))
    return {"index.html": 0, **{p.name: p.n_figures for p in pages}}
