"""The report's text: Markdown lines and HTML fragments, and the self-contained HTML page.

Each section is returned twice, as Markdown lines and as HTML parts, so the two documents always
say the same thing.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import signs_of
from .collect import ProblemRuns
from .errors import ReportError
from .stats import INDICATORS

__all__ = ["fmt", "html_page", "html_table", "markdown_table", "predictor_section",
           "problem_intro", "scatter_section", "summary_rows", "training_section"]

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%}")


def fmt(v: Any) -> str:
    """A cell: floats to three significant digits, a non-finite float as ``-``."""
    if isinstance(v, float | np.floating):
        return "-" if not np.isfinite(v) else f"{v:.3g}"
    return str(v)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines (no blank line after it); cells are taken as given."""
    return (["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            + ["| " + " | ".join(r) + " |" for r in rows])


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a :func:`~hwnas.bench.report.stats.summary_table`."""
    header = ["strategy", "runs", "avg rank"] + [INDICATORS[i][0] + " median (IQR)"
                                                 for i in INDICATORS] + ["vs best (Holm p)"]
    rows = []
    for _, r in table.iterrows():
        cells = [r["strategy"], str(r["runs"]), f"{r['avg_rank']:.2f}"]
        cells += [f"{fmt(r[i])} ({fmt(r[i + '_iqr'])})" for i in INDICATORS]
        p = r["p_holm"]
        cells.append(r["vs_best"] + ("" if pd.isna(p) else f" (p={p:.3g})"))
        rows.append(cells)
    return header, rows


def problem_intro(problem: ProblemRuns) -> tuple[list[str], list[str]]:
    """A problem's heading, its setup and how its reference front was obtained."""
    spec = problem.spec
    desc = (f"space {spec['space']}, objectives {', '.join(spec['objectives'])}"
            + (f", task {spec['task']}" if spec.get("task") else "")
            + (f", device {spec['device']}" if spec.get("device") else "")
            + (f", constraints {', '.join(spec['constraints'])}"
               if spec.get("constraints") else ""))
    ref = problem.reference
    note = (f"Reference: the {ref.kind} front ({len(ref.F)} points"
            + (f" among {ref.candidates} architectures" if ref.kind == "true" else
               ", the non-dominated union of all runs") + ").")
    md = [f"## {problem.name}", "", desc + ".", "", note, ""]
    parts = [f"<h2>{html.escape(problem.name)}</h2>",
             f"<p>{html.escape(desc)}.</p><p>{html.escape(note)}</p>"]
    return md, parts


def predictor_section(paths: Sequence[str | os.PathLike[str]]) -> tuple[list[str], list[str]]:
    """Rank-correlation tables of predictor benchmark JSON files (md lines, html parts).

    Raises:
        ReportError: a file that cannot be read or has no ``table`` (or ``summary``) of rows.
    """
    md, parts = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ReportError(f"{path}: cannot read predictor results: {e}") from None
        table = (data.get("table") or data.get("summary")) if isinstance(data, dict) else None
        if not isinstance(table, list) or not table or not isinstance(table[0], dict):
            raise ReportError(f"{path}: expected a 'table' list of rows (dicts)")
        cols = list(table[0])
        cells = [[fmt(r.get(c)) for c in cols] for r in table]
        md += [f"### Predictor: {Path(path).stem}", ""] + markdown_table(cols, cells) + [""]
        parts.append(f"<h3>Predictor: {html.escape(Path(path).stem)}</h3>"
                     + html_table(cols, cells))
    return md, parts


def training_section(problem: ProblemRuns) -> tuple[list[str], list[str]]:
    """How live-trained accuracy was obtained, per run, and the front the runs found."""
    from hwnas.search import pareto_mask

    first = problem.training[0][2]
    r = first.get("recipe", {})
    what = (f"Accuracy is the validation accuracy of each network trained now on "
            f"{first.get('dataset')} ({r.get('epochs')} epochs, batch {r.get('batch_size')}, "
            f"SGD lr {r.get('lr')} cosine, width x{r.get('width')}, "
            f"{r.get('train_fraction', 1):.0%} of the training set, seed {r.get('seed')}).")
    header = ["strategy", "seed", "trained", "from cache", "epochs run", "epochs saved (early "
              "stop)", "inherited weights", "training s"]
    rows = [[label, str(seed), str(t.get("trained")), str(t.get("cache_hits")),
             str(t.get("epochs_run")), str(t.get("epochs_saved")), str(t.get("inherited_runs")),
             f"{t.get('train_seconds', 0):.0f}"] for label, seed, t in problem.training]
    names = problem.spec["objectives"]
    union = pd.concat([ev for _, _, ev in problem.runs], ignore_index=True)
    union = union.drop_duplicates("arch")
    if "violation" in union:
        union = union[union["violation"] <= 0]
    front: list[list[str]] = []
    if len(union):
        F = union[names].to_numpy(dtype=np.float64) * signs_of(names)
        found = union[pareto_mask(F)].sort_values(names[0], ascending=False)
        front = [[a, *(fmt(v) for v in vals)]
                 for a, *vals in found[["arch", *names]].itertuples(index=False)]
    md = [what, ""] + markdown_table(header, rows) + [""]
    parts = [f"<p>{html.escape(what)}</p>", html_table(header, rows)]
    if front:
        fh = ["architecture", *names]
        # an NB201 architecture string is full of |, which would end a Markdown cell
        escaped = [[row[0].replace("|", "\\|"), *row[1:]] for row in front]
        md += ["Non-dominated networks found:", ""] + markdown_table(fh, escaped) + [""]
        parts += ["<p>Non-dominated networks found:</p>", html_table(fh, front)]
    return md, parts


def scatter_section(rows: Sequence[dict[str, Any]], b64: str, figure: str
                    ) -> tuple[list[str], list[str]]:
    """The predicted-vs-measured agreement table and its figure (file name, base64 PNG)."""
    cols = list(rows[0])
    cells = [[r["measured"], str(r["n"]), f"{r['spearman']:.3f}", f"{r['kendall']:.3f}",
              f"{r['mape_%']:.1f}"] for r in rows]
    md = ["## Predicted vs measured", ""] + markdown_table(cols, cells)
    md += ["", f"![predicted vs measured]({figure})", ""]
    parts = ["<h2>Predicted vs measured</h2>", html_table(cols, cells),
             f'<img alt="predicted vs measured" src="data:image/png;base64,{b64}">']
    return md, parts


def html_page(parts: Sequence[str]) -> str:
    """The whole HTML document: inline CSS and images, nothing fetched from elsewhere."""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hwnas report</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
