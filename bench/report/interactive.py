"""The report's interactive figures (plotly): fronts, 3-objective views, hypervolume, attainment.

Each function returns a ``plotly.graph_objects.Figure``; :mod:`.pages` writes them into offline
HTML pages. Every figure is drawn with SVG traces except the parallel coordinates (plotly's
``parcoords`` is WebGL only), so the pages open in any browser and print. Hovering a point shows
the architecture's canonical string and its objective values, in the objectives' own units and
directions (the minimised values stay inside the report's statistics).

plotly is imported inside the functions, as matplotlib is in :mod:`.figures`: importing the
report stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..core import signs_of
from .attainment import QUARTILES, attainment_surfaces
from .collect import ProblemRuns
from .figures import UNITS
from .stats import INDICATORS, RankComparison

__all__ = ["attainment_figure", "cd_figure", "hypervolume_figure", "hex_colours",
           "median_runs", "parallel_figure", "pareto_figure", "projections_figure",
           "studies_figure", "studies_fronts_figure", "xy_objectives"]

_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "star", "hexagon")


def hex_colours(colours: dict[str, Any]) -> dict[str, str]:
    """The report's strategy colours (RGB tuples from :func:`.figures.palette`) as ``#rrggbb``."""
    from matplotlib.colors import to_hex

    return {k: to_hex(v) for k, v in colours.items()}


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def xy_objectives(names: Sequence[str]) -> tuple[str, str]:
    """The two objectives a front is drawn against: accuracy up the y axis where there is one,
    as in NAS papers (the same choice as the static figure)."""
    names = list(names)
    if len(names) < 2:
        return names[0], names[0]
    if "accuracy" in names:
        return next(n for n in names if n != "accuracy"), "accuracy"
    return names[0], names[1]


def median_runs(problem: ProblemRuns, scores: pd.DataFrame
                ) -> list[tuple[str, int, pd.DataFrame]]:
    """Per strategy, the run with the median hypervolume ratio at the last budget, cut to it
    (the run the static figure also shows)."""
    last = scores[scores["budget"] == scores["budget"].max()]
    budget = int(last["budget"].max())
    out = []
    for label, g in last.groupby("strategy", sort=True):
        seed = int(g.sort_values("hv_ratio", kind="stable")["seed"].iloc[len(g) // 2])
        ev = next(e for s, sd, e in problem.runs if s == label and sd == seed)
        out.append((str(label), seed, ev.iloc[:budget]))
    return out


def _marked(ev: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """A run's evaluations with ``feasible`` and ``front`` (feasible and non-dominated)."""
    from ..core.reference import feasible_front_mask

    F = ev[list(names)].to_numpy(dtype=np.float64) * signs_of(names)
    feasible = (ev["violation"].to_numpy(dtype=np.float64) <= 0 if "violation" in ev
                else np.ones(len(ev), dtype=bool))
    return ev.assign(feasible=feasible, front=feasible_front_mask(F, feasible))


def _hover(frame: pd.DataFrame, names: Sequence[str], what: str) -> tuple[np.ndarray, str]:
    """customdata and a hover template: the architecture, every objective, where it came from."""
    cols = ["arch", *names]
    extra = [c for c in ("step", "violation") if c in frame]
    data = frame[cols + extra].to_numpy(dtype=object)
    lines = [f"<b>{what}</b>", "%{customdata[0]}"]
    lines += [f"{UNITS.get(n, n)}: %{{customdata[{i + 1}]:.4~g}}" for i, n in enumerate(names)]
    for j, c in enumerate(extra):
        fmt = ":.3~g" if c == "violation" else ""
        lines.append(f"{c}: %{{customdata[{len(cols) + j}]{fmt}}}")
    return data, "<br>".join(lines) + "<extra></extra>"


def _log_axis(values: pd.Series) -> bool:
    # latency and parameters span decades on some spaces: a log axis keeps the small end legible
    v = values.replace(0, np.nan).dropna()
    return bool(len(v) and v.min() > 0 and v.max() / v.min() > 20)


def _reference(problem: ProblemRuns) -> pd.DataFrame:
    names = list(problem.spec["objectives"])
    ref = pd.DataFrame(problem.reference.F * signs_of(names), columns=names)
    return ref.assign(arch=problem.reference.archs)


def pareto_figure(problem: ProblemRuns, scores: pd.DataFrame, colours: dict[str, str]) -> Any:
    """Every evaluation of each strategy's median run against the reference front: its front
    (large), its other feasible points (faint) and, under constraints, its infeasible points
    (crosses), with the architecture and its values on hover."""
    import plotly.graph_objects as go

    names = list(problem.spec["objectives"])
    x, y = xy_objectives(names)
    fig = go.Figure()
    ref = _reference(problem).sort_values(x)
    data, tpl = _hover(ref, names, f"{problem.reference.kind} front")
    # a 2-objective front is a staircase; a 3-objective one seen in two of its objectives is not
    fig.add_trace(go.Scatter(x=ref[x], y=ref[y],
                             mode="lines+markers" if len(names) == 2 else "markers",
                             name=f"{problem.reference.kind} front",
                             line={"color": "black", "width": 1.2, "shape": "hv"},
                             marker={"size": 6, "color": "black"}, customdata=data,
                             hovertemplate=tpl))
    constrained = bool(problem.spec.get("constraints"))
    shown = [ref[x]]
    for label, seed, ev in median_runs(problem, scores):
        ev = _marked(ev, names)
        shown.append(ev[x])
        c = colours[label]
        parts = [("front", ev[ev["front"]], {"size": 10, "color": c,
                                              "line": {"color": "white", "width": 0.6}}),
                 ("feasible", ev[ev["feasible"] & ~ev["front"]],
                  {"size": 6, "color": _rgba(c, 0.35)})]
        if constrained or not ev["feasible"].all():
            parts.append(("infeasible", ev[~ev["feasible"]],
                          {"size": 7, "color": c, "symbol": "x-thin-open",
                           "line": {"width": 1.5, "color": c}}))
        for kind, part, marker in parts:
            data, tpl = _hover(part, names, f"{label} (seed {seed}): {kind}")
            fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="markers", marker=marker,
                                     name=f"{label}: {kind}", legendgroup=label,
                                     customdata=data, hovertemplate=tpl))
    budget = int(scores["budget"].max())
    title = f"{problem.name}: evaluations of each strategy's median run at {budget}"
    if constrained:
        title += f" (constraints {', '.join(problem.spec['constraints'])}; x: infeasible)"
    fig.update_layout(title=title, xaxis_title=UNITS.get(x, x), yaxis_title=UNITS.get(y, y),
                      legend_title="strategy: points", template="plotly_white", height=520)
    if _log_axis(pd.concat(shown)):
        fig.update_xaxes(type="log", title=UNITS.get(x, x) + " (log scale)")
    return fig


def _fronts(problem: ProblemRuns, scores: pd.DataFrame) -> pd.DataFrame:
    """The reference front and each median run's feasible front, stacked, with a ``source``."""
    names = list(problem.spec["objectives"])
    frames = [_reference(problem).assign(source=f"{problem.reference.kind} front")]
    for label, _, ev in median_runs(problem, scores):
        ev = _marked(ev, names)
        frames.append(ev[ev["front"]][["arch", *names]].assign(source=label))
    return pd.concat(frames, ignore_index=True)


def projections_figure(problem: ProblemRuns, scores: pd.DataFrame, colours: dict[str, str]
                       ) -> Any:
    """Three or more objectives: every pairwise projection of the fronts found and the
    reference front (a point on the 3-D front may be dominated in a projection)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(problem.spec["objectives"])
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    fig = make_subplots(rows=1, cols=len(pairs), horizontal_spacing=0.08)
    fronts = _fronts(problem, scores)
    for col, (a, b) in enumerate(pairs, start=1):
        for source, part in fronts.groupby("source", sort=False):
            c = colours.get(source, "black")
            data, tpl = _hover(part, names, str(source))
            fig.add_trace(go.Scatter(x=part[a], y=part[b], mode="markers", name=str(source),
                                     legendgroup=str(source), showlegend=col == 1,
                                     marker={"size": 6 if c == "black" else 9, "color": c,
                                             "opacity": 0.85},
                                     customdata=data, hovertemplate=tpl), row=1, col=col)
        fig.update_xaxes(title_text=UNITS.get(a, a), row=1, col=col)
        fig.update_yaxes(title_text=UNITS.get(b, b), row=1, col=col)
        if _log_axis(fronts[a]):
            fig.update_xaxes(type="log", row=1, col=col)
    fig.update_layout(title=f"{problem.name}: pairwise projections of the fronts found",
                      template="plotly_white", height=430)
    return fig


def parallel_figure(problem: ProblemRuns, scores: pd.DataFrame, colours: dict[str, str]) -> Any:
    """Three or more objectives: parallel coordinates of the fronts found (drag an axis to
    select a range), one colour per strategy, the reference front in grey."""
    import plotly.graph_objects as go

    names = list(problem.spec["objectives"])
    fronts = _fronts(problem, scores)
    sources = list(dict.fromkeys(fronts["source"]))
    code = fronts["source"].map({s: i for i, s in enumerate(sources)}).to_numpy()
    palette = [colours.get(s, "#999999") for s in sources]
    # a discrete colour scale: code i (of n) sits at (i + 0.5) / n, inside a flat band of its colour
    n = len(sources)
    scale = [[(i + d) / n, palette[i]] for i in range(n) for d in (0, 1)]
    dims = [{"label": UNITS.get(m, m), "values": fronts[m]} for m in names]
    dims.append({"label": "source", "values": code, "tickvals": list(range(len(sources))),
                 "ticktext": sources})
    fig = go.Figure(go.Parcoords(line={"color": code, "colorscale": scale,
                                       "cmin": -0.5, "cmax": len(sources) - 0.5},
                                 dimensions=dims))
    fig.update_layout(title=f"{problem.name}: parallel coordinates of the fronts found "
                            f"({', '.join(sources)})", template="plotly_white", height=450)
    return fig


def _bands(fig: Any, q: pd.DataFrame, colour: str, name: str, dash: str = "solid",
           group: str | None = None, hover: str = "") -> None:
    """A median line over a band between the first and third quartiles."""
    import plotly.graph_objects as go

    group = group or name
    x = q.index.to_numpy()
    fig.add_trace(go.Scatter(x=x, y=q[0.75], mode="lines", line={"width": 0}, hoverinfo="skip",
                             showlegend=False, legendgroup=group))
    fig.add_trace(go.Scatter(x=x, y=q[0.25], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor=_rgba(colour, 0.18), hoverinfo="skip", showlegend=False,
                             legendgroup=group))
    fig.add_trace(go.Scatter(
        x=x, y=q[0.5], mode="lines", name=name, legendgroup=group,
        line={"color": colour, "width": 2.2, "dash": dash},
        customdata=np.column_stack([q[0.25], q[0.75]]),
        hovertemplate=(f"<b>{name}</b><br>{hover}evaluations %{{x}}<br>median %{{y:.4f}}<br>"
                       "quartiles %{customdata[0]:.4f} - %{customdata[1]:.4f}<extra></extra>")))


def _quartile_curves(grid_scores: pd.DataFrame, indicator: str) -> dict[str, pd.DataFrame]:
    return {str(label): g.groupby("evaluations")[indicator].quantile([0.25, 0.5, 0.75]).unstack()
            for label, g in grid_scores.groupby("strategy", sort=True)}


def hypervolume_figure(problem: ProblemRuns, grid_scores: pd.DataFrame,
                       colours: dict[str, str]) -> Any:
    """Hypervolume ratio against evaluations: median over seeds, band between the quartiles."""
    import plotly.graph_objects as go

    fig = go.Figure()
    seeds = grid_scores.groupby("strategy")["seed"].nunique()
    for label, q in _quartile_curves(grid_scores, "hv_ratio").items():
        _bands(fig, q, colours[label], f"{label} ({seeds[label]} seeds)")
    fig.update_layout(title=f"{problem.name}: {INDICATORS['hv_ratio'][0]} over evaluations "
                            "(median over seeds, quartile band)",
                      xaxis_title="unique architectures evaluated",
                      yaxis_title=INDICATORS["hv_ratio"][0], template="plotly_white",
                      height=450, hovermode="closest")
    return fig


def attainment_figure(problem: ProblemRuns, colours: dict[str, str],
                      fractions: Sequence[float] = QUARTILES) -> Any:
    """Two objectives: each strategy's 25%, 50% and 75% empirical attainment surfaces over
    its seeds at the last budget (Fonseca & Fleming 1996; see :mod:`.attainment`)."""
    import plotly.graph_objects as go

    names = list(problem.spec["objectives"])
    x, y = xy_objectives(names)
    ix, iy = names.index(x), names.index(y)
    sign = signs_of(names)[[ix, iy]]
    budget = max(problem.budgets) if problem.budgets else None
    fig = go.Figure()
    ref = _reference(problem).sort_values(x)
    data, tpl = _hover(ref, names, f"{problem.reference.kind} front")
    fig.add_trace(go.Scatter(x=ref[x], y=ref[y], mode="markers",
                             name=f"{problem.reference.kind} front",
                             marker={"size": 6, "color": "black"}, customdata=data,
                             hovertemplate=tpl))
    dashes = {0.5: "solid", fractions[0]: "dot", fractions[-1]: "dash"}
    by_strategy: dict[str, list[np.ndarray]] = {}
    for label, _, ev in problem.runs:
        ev = ev.iloc[:budget] if budget else ev
        feasible = (ev["violation"].to_numpy() <= 0 if "violation" in ev
                    else np.ones(len(ev), dtype=bool))
        F = ev[[x, y]].to_numpy(dtype=np.float64)[feasible] * sign
        by_strategy.setdefault(str(label), []).append(F)
    for label, runs in sorted(by_strategy.items()):
        for p, pts in attainment_surfaces(runs, fractions).items():
            if not len(pts):
                continue
            nat = pts * sign  # back to the objectives' own directions
            fig.add_trace(go.Scatter(
                x=nat[:, 0], y=nat[:, 1], mode="lines+markers", legendgroup=label,
                name=f"{label}: {p:.0%} ({len(runs)} runs)",
                line={"color": colours[label], "shape": "hv", "dash": dashes.get(p, "dashdot"),
                      "width": 2.4 if p == 0.5 else 1.4}, marker={"size": 4},
                hovertemplate=(f"<b>{label}</b>: attained by {p:.0%} of the runs<br>"
                               f"{UNITS.get(x, x)}: %{{x:.4~g}}<br>{UNITS.get(y, y)}: "
                               "%{y:.4~g}<extra></extra>")))
    fig.update_layout(title=f"{problem.name}: empirical attainment surfaces at {budget} "
                            "evaluations (solid: median; dotted 25%, dashed 75% of the runs)",
                      xaxis_title=UNITS.get(x, x), yaxis_title=UNITS.get(y, y),
                      template="plotly_white", height=500)
    if _log_axis(ref[x]):
        fig.update_xaxes(type="log", title=UNITS.get(x, x) + " (log scale)")
    return fig


def studies_figure(problems: Sequence[ProblemRuns], grid_scores: Sequence[pd.DataFrame],
                   colours: dict[str, str]) -> Any:
    """Every study overlaid: the hypervolume-ratio curves (median, quartile band) of every
    strategy of every problem, a strategy's colour and a problem's dash. A ratio to each
    problem's own reference front, so problems of different scales share the axis."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for j, (problem, scores) in enumerate(zip(problems, grid_scores, strict=True)):
        for label, q in _quartile_curves(scores, "hv_ratio").items():
            _bands(fig, q, colours[label], f"{problem.name}: {label}",
                   dash=_DASHES[j % len(_DASHES)], hover=f"{problem.name}<br>")
    fig.update_layout(title="All studies: hypervolume ratio over evaluations (median, quartile "
                            "band)", xaxis_title="unique architectures evaluated",
                      yaxis_title=INDICATORS["hv_ratio"][0], template="plotly_white", height=500)
    return fig


def studies_fronts_figure(problems: Sequence[ProblemRuns], scores: Sequence[pd.DataFrame],
                          colours: dict[str, str]) -> Any:
    """The fronts of problems drawn against the same two objectives, overlaid: a strategy's
    colour, a problem's symbol, the architecture on hover."""
    import plotly.graph_objects as go

    fig = go.Figure()
    x, y = xy_objectives(problems[0].spec["objectives"])
    for j, (problem, sc) in enumerate(zip(problems, scores, strict=True)):
        names = list(problem.spec["objectives"])
        for source, part in _fronts(problem, sc).groupby("source", sort=False):
            c = colours.get(source, "black")
            part = part.sort_values(x)
            data, tpl = _hover(part, names, f"{problem.name}: {source}")
            # a staircase joins the points of a 2-objective front; a projection of a 3-objective
            # front is no staircase, so its points stand alone
            fig.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="lines+markers" if len(names) == 2 else "markers",
                name=f"{problem.name}: {source}",
                line={"color": c, "shape": "hv", "width": 1, "dash": _DASHES[j % len(_DASHES)]},
                marker={"symbol": _SYMBOLS[j % len(_SYMBOLS)], "size": 8, "color": c},
                customdata=data, hovertemplate=tpl))
    fig.update_layout(title=f"All studies: fronts found ({y} against {x}; median runs)",
                      xaxis_title=UNITS.get(x, x), yaxis_title=UNITS.get(y, y),
                      template="plotly_white", height=500)
    return fig


def cd_figure(cmp: RankComparison) -> Any:
    """A critical-difference diagram (Demšar 2006, fig. 1): average ranks on an axis, the
    Nemenyi CD as a bar, and thick lines joining strategies not significantly different."""
    import plotly.graph_objects as go

    k = len(cmp.ranks)
    fig = go.Figure()
    half = (k + 1) // 2
    # the rank axis, with a tick at every whole rank
    fig.add_trace(go.Scatter(x=[1, k], y=[0, 0], mode="lines", line={"color": "#333", "width": 1.5},
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=[v for r in range(1, k + 1) for v in (r, r, None)],
                             y=[v for _ in range(k) for v in (0, 0.08, None)], mode="lines",
                             line={"color": "#333", "width": 1.5}, hoverinfo="skip",
                             showlegend=False))
    for i, (name, rank) in enumerate(cmp.ranks.items()):
        # the better half is labelled on the left, the rest on the right (Demšar's layout)
        left = i < half
        level = -(i + 1) if left else -(k - i)
        end = 0.6 if left else k + 0.4
        p = cmp.p_holm.get(str(name))
        note = "best-ranked (control)" if p is None else f"Holm p vs {cmp.control}: {p:.3g}"
        fig.add_trace(go.Scatter(
            x=[rank, rank, end], y=[0, level * 0.35, level * 0.35], mode="lines+markers+text",
            line={"color": "#333", "width": 1}, marker={"size": [9, 0, 0], "color": "#333"},
            text=["", "", f"{name} ({rank:.2f})"],
            textposition="middle left" if left else "middle right", showlegend=False,
            hovertemplate=f"<b>{name}</b><br>average rank {rank:.3f}<br>{note}<extra></extra>"))
    for j, clique in enumerate(cmp.cliques):
        lo, hi = cmp.ranks[clique].min(), cmp.ranks[clique].max()
        fig.add_trace(go.Scatter(
            x=[lo - 0.03, hi + 0.03], y=[-0.15 - 0.12 * j] * 2, mode="lines",
            line={"color": "black", "width": 5}, showlegend=False,
            hovertemplate=f"not significantly different: {', '.join(clique)}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[1, 1 + cmp.cd], y=[0.45, 0.45], mode="lines+markers+text",
        line={"color": "#c0392b", "width": 3}, marker={"symbol": "line-ns-open", "size": 12},
        text=["", f"CD = {cmp.cd:.2f}"], textposition="top center", showlegend=False,
        hovertemplate=(f"Nemenyi critical difference at alpha {cmp.alpha}: {cmp.cd:.3f} "
                       f"({k} strategies, {cmp.n_blocks} {cmp.blocks})<extra></extra>")))
    fig.update_xaxes(range=[-0.9, k + 1.9], tickvals=list(range(1, k + 1)),
                     title="average rank (1 = best)", zeroline=False, showgrid=False)
    fig.update_yaxes(visible=False, range=[-0.35 * (half + 1), 0.8])
    fig.update_layout(title=(f"Critical-difference diagram: {k} strategies over "
                             f"{cmp.n_blocks} {cmp.blocks} (Friedman p = {cmp.friedman_p:.3g}, "
                             f"Nemenyi CD at alpha {cmp.alpha})"),
                      template="plotly_white", height=260 + 40 * half)
    return fig
