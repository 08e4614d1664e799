"""The table-rows search study (hwnas.bench.studies.search_fbnet) on FBNet's and OFA's tables."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hwnas.bench import load_tables
from hwnas.bench.harness import FrontScorer, run_any, score_checkpoints
from hwnas.bench.studies import search_fbnet
from hwnas.search.spaces.stats import model_stats


@pytest.mark.parametrize("space", ["fbnet", "ofa"])
def test_an_unknown_device_is_one_line_and_exit_2(space, monkeypatch, capsys, tmp_path):
    out = tmp_path / "out.json"
    monkeypatch.setattr(sys, "argv", ["search_fbnet.py", "--space", space, "--devices", "nope",
                                      "--seeds", "1", "--out", str(out)])
    assert search_fbnet.main() == 2
    err = capsys.readouterr().err.strip().splitlines()
    valid = {"fbnet": "fpga", "ofa": "titan_rtx_64"}[space]  # the line lists the valid devices
    assert len(err) == 1 and "nope" in err[0] and valid in err[0]
    assert not out.exists()


@pytest.mark.slow
def test_ofa_problem_is_latency_against_the_networks_own_compute():
    tables = load_tables("ofa")
    problem = search_fbnet.ofa_problem(tables, "titan_rtx_64")
    assert problem.F.shape == (len(tables.archs), 2)
    np.testing.assert_array_equal(problem.F[:, 0],
                                  tables.get_latency("titan_rtx_64", np.arange(len(tables.archs))))
    for i in (0, 1234, 4999):  # compute is maximised: minimised as its negative
        assert -problem.F[i, 1] == pytest.approx(model_stats(tables.space, tables.archs[i]).flops_m)
    assert 10 < len(problem.front) < len(tables.archs)
    # the surrogate scores the table's rows: a short run finds part of the front
    trace = run_any(problem, "surrogate", 0, 60)
    scores = score_checkpoints(FrontScorer(problem), trace, [60])[60]
    assert trace.evaluations == 60 and 0 < scores["hv_ratio"] <= 1.0
