"""A deploy on paper: the deployable table in Markdown, the report section and the scatter.

matplotlib is used through its object API (``Figure`` + the Agg canvas), so a deploy never
touches pyplot's global state or the caller's backend.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["markdown_table", "deploy_section", "scatter_png"]


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, float | np.floating):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (pipes in cells escaped, NaN blank)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:+.1%}"


def deploy_section(record: dict[str, Any], rows: pd.DataFrame, figure: str | None) -> str:
    """The Markdown section of one deploy: setup, predicted vs measured per candidate, the
    front's changes (also what ``hwnas report`` can embed)."""
    s, t, c = record["source"], record["target"], record["comparison"]
    lines = [
        f"## Deploy on {t['device']} ({t['precision']})",
        "",
        f"- search: `{s['folder']}` ({s['kind']}"
        + (f", problem {s['problem']}" if s["problem"] else "") +
        f", {s['runs']} run(s), {s['evaluations']} evaluations); objectives "
        f"{', '.join(s['objectives'])}"
        + (f"; constraints {', '.join(s['constraints'])}" if s["constraints"] else ""),
        f"- predicted latency: {s['latency_source']}; accuracy: {s['accuracy_source']}",
        f"- measured: {c['measured']} of {c['candidates']} candidates ({c['failed']} failed), "
        f"--top {record['selection']['top']}; {record['selection']['rule']}",
        f"- protocol: {_protocol(t['protocol'])}; store `{t['store']}`",
    ]
    if c.get("spearman") is not None:
        lines.append(f"- rank agreement predicted vs measured: Spearman {c['spearman']:.3f}, "
                     f"Kendall {c['kendall']:.3f}")
    if c.get("median_abs_rel_error") is not None:
        lines.append(f"- relative error: median |error| {c['median_abs_rel_error']:.1%}, max "
                     f"{c['max_abs_rel_error']:.1%}; measured / predicted (median) "
                     f"{c['median_measured_over_predicted']:.3g}")
    lines.append(f"- front: {c['front_size']} measured members of the search's front, "
                 f"{len(c['kept'])} kept, {len(c['fell_off'])} fell off, {len(c['joined'])} "
                 f"neighbours joined; measured front {c['measured_front_size']}")
    for w in record.get("warnings", []):
        lines.append(f"- warning: {w}")
    table = pd.DataFrame({
        "arch": rows["arch"],
        "layer pred -> meas": [f"{p} -> {'' if m is pd.NA else m}" for p, m in
                               zip(rows["layer"], rows["measured_layer"], strict=True)],
        "predicted ms": rows["predicted_ms"],
        "measured p50 ms": rows["measured_ms"],
        "error": [_pct(x) for x in rows["rel_error"]],
        "latency rank pred -> meas": [f"{p} -> {m}" if p is not pd.NA and m is not pd.NA else ""
                              for p, m in zip(rows["predicted_rank"], rows["measured_rank"],
                                              strict=True)],
        "front": rows["change"], "status": rows["status"],
    })
    lines += ["", markdown_table(table).rstrip()]
    if figure:
        lines += ["", f"![predicted vs measured latency]({figure})"]
    return "\n".join(lines) + "\n"


def _protocol(p: dict[str, Any]) -> str:
    paired = "paired with a reference network" if p.get("paired_reference") else "unpaired"
    return (f"{p['warmup_runs']} warm-up calls, {p['min_runs']}-{p['max_runs']} timed calls to "
            f"{p['target_precision']:.0%} CI, {p['rounds']} round(s), {paired}")


def scatter_png(rows: pd.DataFrame, device: str, predicted_label: str,
                title: str = "") -> bytes | None:
    """PNG bytes of measured against predicted latency (front members filled), or
    ``None`` when nothing measured has a prediction."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = rows[(rows["status"] == "ok") & rows["predicted_ms"].notna()]
    if ok.empty:
        return None
    fig = Figure(figsize=(5.2, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for keep, style in ((ok["on_measured_front"], dict(marker="o", label="measured front")),
                        (~ok["on_measured_front"], dict(marker="o", facecolors="none",
                                                         label="dominated once measured"))):
        part = ok[keep]
        if len(part):
            ax.scatter(part["predicted_ms"], part["measured_ms"], edgecolors="C0",
                       **({"color": "C0"} if "facecolors" not in style else {}), **style)
    fell = ok[ok["change"] == "fell off"]
    if len(fell):
        ax.scatter(fell["predicted_ms"], fell["measured_ms"], marker="x", color="C3",
                   label="fell off the front")
    lo = float(min(ok["predicted_ms"].min(), ok["measured_ms"].min()))
    hi = float(max(ok["predicted_ms"].max(), ok["measured_ms"].max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=0.8, ls="--", label="measured = predicted")
    if hi / lo > 20:  # a wide range reads in ratios; a narrow one in plain milliseconds
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"predicted latency (ms): {predicted_label}")
    ax.set_ylabel(f"measured p50 latency (ms): {device}")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
