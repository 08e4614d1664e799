"""``hwnas report``: an interactive HTML report (offline pages and an index), and a static one
(Markdown, PNG figures and one self-contained HTML file, for papers), of compare folders or search
runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.runs import check_out_folder
from .options import InFile, OutDir, read_text

__all__ = ["report"]


class _RunDir(click.ParamType):
    name = "folder"

    def convert(self, value, param, ctx) -> Path:
        path = Path(value)
        if not path.is_dir():
            self.fail(f"{str(path)!r} is not a folder; valid: a compare folder or a search run "
                      "folder", param, ctx)
        return path


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=_RunDir(),
                metavar="RUN_OR_COMPARE_DIR...")
@click.option("--out", type=OutDir(), required=True,
              help="Folder for index.html and its interactive pages, and for report.html, "
                   "report.md and the PNG figures.")
@click.option("--predictions", "predictions", multiple=True, type=InFile(),
              help="A predictor benchmark JSON (bench/scripts/latency_transfer.py) to include.")
@click.option("--scatter", "scatter", multiple=True, nargs=2, type=InFile(),
              metavar="PREDICTED MEASURED",
              help="Two tables (CSV: index or arch, latency_ms or accuracy) to plot predicted "
                   "against measured (repeatable).")
def report(inputs: tuple[Path, ...], out: Path, predictions: tuple[Path, ...],
           scatter: tuple[tuple[Path, Path], ...]) -> None:
    """Write an interactive HTML report (open index.html; it works offline) and a static
    Markdown/HTML report with PNG figures, of compare folders or search runs."""
    from ..report import build_report

    for path in predictions:
        read_text(path, "--predictions")
    for pair in scatter:
        for path in pair:
            read_text(path, "--scatter")
    check_out_folder(out, None)  # a report written into a run or compare folder mixes them
    # the data folder reaches the report through HWNAS_DATA, set by the group's --data
    paths = build_report(list(inputs), out, None, predictions=list(predictions),
                         scatter=list(scatter))
    click.echo(f"wrote {paths['html']} and {paths['md']} ({paths['figures']} figures)")
    pages = {k: v for k, v in paths["pages"].items() if k != "index.html"}
    click.echo(f"interactive: {paths['index']} ({len(pages)} pages, {sum(pages.values())} "
               "figures, offline)")
