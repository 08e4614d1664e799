"""The report's statistics checked against values worked out by hand, and its parts.

The worked example: 7 seeds x 3 strategies (A, B, C). Hypervolume ratio per seed:

    seed   0     1     2     3     4     5     6
    A    0.80  0.82  0.75  0.90  0.85  0.78  0.88
    B    0.79  0.80  0.72  0.86  0.80  0.72  0.81
    C    0.75  0.83  0.71  0.84  0.88  0.76  0.81

Ranks per seed (1 = highest; B and C tie on seed 6 and share 2.5):
    A 1 2 1 1 2 1 1   -> 9/7    = 1.2857
    B 2 3 2 2 3 3 2.5 -> 17.5/7 = 2.5
    C 3 1 3 3 1 2 2.5 -> 15.5/7 = 2.2143    (rank sums: 9 + 17.5 + 15.5 = 42 = 7 x (1 + 2 + 3))

Medians and quartiles (numpy's linear interpolation; with 7 values the quartiles sit halfway
between the 2nd and 3rd and between the 5th and 6th sorted values):
    A sorted .75 .78 .80 .82 .85 .88 .90 -> median .82, Q1 .79,  Q3 .865, IQR .075
    B sorted .72 .72 .79 .80 .80 .81 .86 -> median .80, Q1 .755, Q3 .805, IQR .05
    C sorted .71 .75 .76 .81 .83 .84 .88 -> median .81, Q1 .755, Q3 .835, IQR .08
A has the best median, so B and C are tested against A.

Wilcoxon signed-rank (exact null: all 2^7 = 128 sign patterns of the ranks 1..7 equally likely):
    A - B = .01 .02 .03 .04 .05 .06 .07: all positive, W- = 0, W = min(W+, W-) = 0.
        P(W- <= 0) = 1/128 (only the empty set of ranks sums to 0); two-sided p = 2/128.
    A - C = .05 -.01 .04 .06 -.03 .02 .07: |d| ranks 5 1 4 6 3 2 7; the negatives have ranks 1
        and 3, W- = 4, W+ = 28 - 4 = 24, W = 4. Subsets of {1..7} summing to at most 4:
        {}, {1}, {2}, {3}, {1,2}, {4}, {1,3} = 7; two-sided p = 2 * 7/128 = 14/128.
Holm (m = 2): sorted p = 2/128 (B), 14/128 (C); adjusted B = 2 * 2/128 = 4/128 = 0.03125,
    C = max(4/128, 1 * 14/128) = 14/128 = 0.109375. At alpha 0.05: B is significantly worse,
    C is not significantly different.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.report import (
    INDICATORS,
    ReportError,
    average_ranks,
    build_report,
    collect,
    holm,
    summary_table,
    wilcoxon_pvalue,
)
from hwnas.bench.report.collect import ProblemRuns
from hwnas.bench.report.render import (
    markdown_table,
    predictor_section,
    summary_rows,
    training_section,
)
from hwnas.bench.scoring import ReferenceFront

HV = {"A": [0.80, 0.82, 0.75, 0.90, 0.85, 0.78, 0.88],
      "B": [0.79, 0.80, 0.72, 0.86, 0.80, 0.72, 0.81],
      "C": [0.75, 0.83, 0.71, 0.84, 0.88, 0.76, 0.81]}
# IGD+ and regret; C's seed 3 found no feasible point (infinite regret), left out of its median
IGD = {"A": [0.10, 0.12, 0.08, 0.20, 0.15, 0.11, 0.09],
       "B": [0.30, 0.10, 0.20, 0.40, 0.50, 0.60, 0.70],
       "C": [0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]}
REGRET = {"A": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
          "B": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
          "C": [2.0, 1.0, 4.0, math.inf, 3.0, 6.0, 5.0]}
RECALL = {"A": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "B": [0.0] * 7, "C": [0.5] * 7}


def _scores(budget: int = 100) -> pd.DataFrame:
    rows = []
    for s in HV:
        for seed in range(7):
            rows.append({"strategy": s, "seed": seed, "budget": budget, "evaluations": budget,
                         "hv_ratio": HV[s][seed], "igd_plus": IGD[s][seed],
                         "recall": RECALL[s][seed], "regret": REGRET[s][seed]})
    return pd.DataFrame(rows)


def _exact_wilcoxon(d: np.ndarray) -> tuple[float, float]:
    """W = min(W+, W-) and its two-sided exact p-value, by enumerating every sign pattern.

    Written out here, independent of scipy; valid for differences with no zeros or ties.
    """
    ranks = np.argsort(np.argsort(np.abs(d))) + 1
    w = min(ranks[d > 0].sum(), ranks[d < 0].sum())
    n = len(d)
    at_most = sum(sum(subset) <= w for k in range(n + 1)
                  for subset in itertools.combinations(range(1, n + 1), k))
    return float(w), min(1.0, 2 * at_most / 2**n)


# ---------------------------------------------------------------------- Holm
def test_holm_step_down_by_hand():
    # sorted: .005 (x4 = .02), .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04, raised to .06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, and the cap carries down the steps: .5 x 2 -> 1, then max(1, .6) = 1
    assert holm([0.5, 0.6]).tolist() == [1.0, 1.0]
    # one hypothesis is not adjusted; ties get the same value whichever is taken first
    assert holm([0.2]).tolist() == [0.2]
    assert holm([0.01, 0.01, 0.5]) == pytest.approx([0.03, 0.03, 0.5])
    assert holm([]).shape == (0,)


# ---------------------------------------------------------------------- Wilcoxon
def test_wilcoxon_exact_p_values_by_hand():
    a, b, c = (np.array(HV[s]) for s in "ABC")
    # the enumeration agrees with the counts worked out in the module docstring
    assert _exact_wilcoxon(a - b) == (0.0, 2 / 128)
    assert _exact_wilcoxon(a - c) == (4.0, 14 / 128)
    assert wilcoxon_pvalue(a, b) == pytest.approx(2 / 128, rel=1e-12)
    assert wilcoxon_pvalue(a, c) == pytest.approx(14 / 128, rel=1e-12)
    # symmetric in its arguments (two-sided)
    assert wilcoxon_pvalue(c, a) == pytest.approx(14 / 128, rel=1e-12)


def test_wilcoxon_against_scipy_as_a_second_opinion():
    from scipy.stats import wilcoxon

    a, c = np.array(HV["A"]), np.array(HV["C"])
    res = wilcoxon(a, c, method="exact")
    assert res.statistic == 4.0 and res.pvalue == pytest.approx(14 / 128)


def test_wilcoxon_with_nothing_to_test_is_one():
    assert wilcoxon_pvalue([0.5, 0.6, 0.7], [0.5, 0.6, 0.7]) == 1.0  # every difference zero
    assert wilcoxon_pvalue([0.9], [0.1]) == 1.0  # a single pair
    assert wilcoxon_pvalue([], []) == 1.0


# ---------------------------------------------------------------------- ranks
def test_average_ranks_by_hand_with_a_tie():
    wide = pd.DataFrame(HV)
    ranks = average_ranks(wide)
    assert ranks.to_dict() == pytest.approx({"A": 9 / 7, "B": 17.5 / 7, "C": 15.5 / 7})
    # lower is better (IGD+): every seed's order reverses, so the ranks are 4 minus the above
    assert average_ranks(wide, higher_is_better=False).to_dict() == pytest.approx(
        {"A": 4 - 9 / 7, "B": 4 - 17.5 / 7, "C": 4 - 15.5 / 7})
    # a seed a strategy did not run is left out of that seed's ranking: seed 0 ranks A 1, C 2
    gap = wide.copy()
    gap.loc[0, "B"] = np.nan
    assert average_ranks(gap)["C"] == pytest.approx((15.5 - 3 + 2) / 7)
    assert average_ranks(gap)["B"] == pytest.approx((17.5 - 2) / 6)


# ---------------------------------------------------------------------- summary table
def test_summary_table_by_hand():
    table = summary_table(_scores(), 100).set_index("strategy")
    # sorted by average rank: A 1.29, C 2.21, B 2.5
    assert table.index.tolist() == ["A", "C", "B"]
    assert table["runs"].tolist() == [7, 7, 7]
    assert table["avg_rank"].to_dict() == pytest.approx({"A": 9 / 7, "C": 15.5 / 7,
                                                         "B": 17.5 / 7})
    assert table["hv_ratio"].to_dict() == pytest.approx({"A": 0.82, "B": 0.80, "C": 0.81})
    assert table["hv_ratio_iqr"].to_dict() == pytest.approx({"A": 0.075, "B": 0.05,
                                                             "C": 0.08})
    # IGD+ A sorted .08 .09 .10 .11 .12 .15 .20: median .11, Q1 .095, Q3 .135
    # IGD+ B sorted .1 .2 .3 .4 .5 .6 .7: median .4, Q1 .25, Q3 .55
    assert table["igd_plus"].to_dict() == pytest.approx({"A": 0.11, "B": 0.4, "C": 0.05})
    assert table["igd_plus_iqr"].to_dict() == pytest.approx({"A": 0.04, "B": 0.3, "C": 0.0})
    # regret C without the infinite seed: 1 2 3 4 5 6, median 3.5, Q1 at 1.25 -> 2.25,
    # Q3 at 3.75 -> 4.75, IQR 2.5; A 1..7: median 4, Q1 2.5, Q3 5.5, IQR 3
    assert table["regret"].to_dict() == pytest.approx({"A": 4.0, "B": 0.0, "C": 3.5})
    assert table["regret_iqr"].to_dict() == pytest.approx({"A": 3.0, "B": 0.0, "C": 2.5})
    assert table["recall"].to_dict() == pytest.approx({"A": 0.3, "B": 0.0, "C": 0.5})
    assert table["recall_iqr"].to_dict() == pytest.approx({"A": 0.3, "B": 0.0, "C": 0.0})
    # Holm-adjusted Wilcoxon p-values against the best (A)
    assert np.isnan(table.loc["A", "p_holm"])
    assert table.loc["B", "p_holm"] == pytest.approx(4 / 128)
    assert table.loc["C", "p_holm"] == pytest.approx(14 / 128)
    assert table["vs_best"].to_dict() == {"A": "best", "B": "worse (significant)",
                                          "C": "not significantly different"}
    # at alpha 0.01 B's 0.03125 is no longer significant
    strict = summary_table(_scores(), 100, alpha=0.01).set_index("strategy")
    assert strict.loc["B", "vs_best"] == "not significantly different"


def test_summary_table_pairs_seeds_and_handles_one_strategy():
    scores = _scores()
    # B lost seeds 0 and 1: A vs B is tested on seeds 2..6 only, A - B = .03 .04 .05 .06 .07,
    # all positive: exact two-sided p = 2/32; Holm with C (14/128): .0625 x 2 = .125 for B,
    # and C's 14/128 = .109 is raised to .125 by the step-down maximum
    short = scores[~((scores["strategy"] == "B") & scores["seed"].isin([0, 1]))]
    table = summary_table(short, 100).set_index("strategy")
    assert table.loc["B", "runs"] == 5
    assert table.loc["B", "p_holm"] == pytest.approx(0.125)
    assert table.loc["C", "p_holm"] == pytest.approx(0.125)
    alone = summary_table(scores[scores["strategy"] == "A"], 100)
    assert alone["vs_best"].tolist() == ["best"] and alone["avg_rank"].tolist() == [1.0]
    assert summary_table(scores, 999).empty  # no run reached that budget


def test_summary_table_rows_as_rendered():
    header, rows = summary_rows(summary_table(_scores(), 100))
    assert header[:3] == ["strategy", "runs", "avg rank"]
    assert header[3:7] == [INDICATORS[i][0] + " median (IQR)" for i in INDICATORS]
    assert rows[0] == ["A", "7", "1.29", "0.82 (0.075)", "0.3 (0.3)", "0.11 (0.04)", "4 (3)",
                       "best"]
    assert rows[1][0] == "C" and rows[1][-1] == "not significantly different (p=0.109)"
    assert rows[2][:3] == ["B", "7", "2.50"] and rows[2][-1] == "worse (significant) (p=0.0312)"
    assert markdown_table(["a", "b"], [["1", "2"]]) == ["| a | b |", "| --- | --- |",
                                                        "| 1 | 2 |"]


# ---------------------------------------------------------------------- rendering
def test_training_section_escapes_the_pipes_of_architectures_in_markdown_only():
    arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|"
    ev = pd.DataFrame({"arch": [arch, "|none~0|+|none~0|none~1|"], "accuracy": [90.0, 10.0],
                       "params": [1.5, 2.0]})
    ref = ReferenceFront(np.zeros((1, 2)), [arch], 90.0, "union", 2)
    training = {"trained": 2, "cache_hits": 0, "epochs_run": 2, "epochs_saved": 0,
                "inherited_runs": 0, "train_seconds": 3.4, "dataset": "digits",
                "recipe": {"epochs": 1, "batch_size": 64, "lr": 0.05, "width": 1.0,
                           "train_fraction": 0.5, "seed": 0}}
    problem = ProblemRuns("live", {"objectives": ["accuracy", "params"]}, ref,
                      [("random", 0, ev)], [2], [("random", 0, training)])
    md, parts = training_section(problem)
    assert md[0].startswith("Accuracy is the validation accuracy of each network trained now on "
                            "digits (1 epochs, batch 64") and "50% of the training set" in md[0]
    assert "| random | 0 | 2 | 0 | 2 | 0 | 0 | 3 |" in md
    # the dominated network is left out; the front's arch is escaped for Markdown, not HTML
    assert "| \\|nor_conv_3x3~0\\|+\\|skip_connect~0\\|none~1\\| | 90 | 1.5 |" in md
    assert not any("none~0" in line for line in md)
    assert f"<td>{arch}</td>" in parts[-1]


def test_predictor_section_and_its_errors(tmp_path):
    good = tmp_path / "pred.json"
    good.write_text(json.dumps({"table": [{"device": "pixel2", "spearman": 0.91234, "n": 20}]}))
    md, parts = predictor_section([good])
    assert md == ["### Predictor: pred", "", "| device | spearman | n |",
                  "| --- | --- | --- |", "| pixel2 | 0.912 | 20 |", ""]
    assert "<td>0.912</td>" in parts[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(ReportError, match="cannot read predictor results"):
        predictor_section([bad])
    bad.write_text(json.dumps({"table": []}))
    with pytest.raises(ReportError, match="expected a 'table' list"):
        predictor_section([bad])


# ---------------------------------------------------------------------- collecting
def test_collect_refuses_what_is_not_a_run_or_compare_folder(tmp_path):
    with pytest.raises(ReportError, match="not a folder"):
        collect([tmp_path / "missing"])
    with pytest.raises(ReportError, match="neither a compare folder"):
        collect([tmp_path])
    with pytest.raises(ReportError, match="no finished runs"):
        collect([])


CONFIG = """
[compare]
seeds = [0, 1, 2]
budgets = [10, 20]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
device = "dev_a"
objectives = ["accuracy", "latency"]

[[strategies]]
name = "random"

[[strategies]]
name = "local"
"""


def test_report_tables_agree_with_the_compare_runners_indicators(synthetic_data, tmp_path):
    """The report scores runs itself; its medians match those of ``indicators.parquet``."""
    from hwnas.bench.compare import load_config, run_compare

    (tmp_path / "grid.toml").write_text(CONFIG)
    out = tmp_path / "cmp"
    run_compare(load_config(tmp_path / "grid.toml"), out, str(synthetic_data))
    paths = build_report([out], tmp_path / "rep", str(synthetic_data))
    assert paths["figures"] == 2
    md = Path(paths["md"]).read_text()
    ind = pd.read_parquet(out / "indicators.parquet")
    (problem,) = collect([out], str(synthetic_data))
    assert problem.budgets == [10, 20] and len(problem.runs) == 6
    for budget in (10, 20):
        table = summary_table(ind, budget).set_index("strategy")
        for label, g in ind[ind["budget"] == budget].groupby("strategy"):
            assert table.loc[label, "hv_ratio"] == pytest.approx(g["hv_ratio"].median())
        _, rows = summary_rows(summary_table(ind, budget))
        block = md.split(f"**Budget {budget}**")[1].split("\n\n")[1]
        assert block.splitlines()[2:] == ["| " + " | ".join(r) + " |" for r in rows]


@pytest.mark.parametrize("content", ["[1, 2, 3]", '"text"', '{"table": 3}', "{}"])
def test_predictor_results_of_the_wrong_shape_are_a_report_error(tmp_path, content):
    from hwnas.bench.report.errors import ReportError
    from hwnas.bench.report.render import predictor_section

    path = tmp_path / "pred.json"
    path.write_text(content)
    with pytest.raises(ReportError, match="expected a 'table' list of rows"):
        predictor_section([path])


def test_a_compare_json_that_is_no_manifest_is_one_clear_error(tmp_path):
    from hwnas.bench.report.collect import _compare_problems
    from hwnas.bench.report.errors import ReportError

    (tmp_path / "compare.json").write_text("[]")
    with pytest.raises(ReportError, match="not the manifest hwnas compare writes"):
        _compare_problems(tmp_path, {})
