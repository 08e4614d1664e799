"""The per-cell seed test over a search benchmark's runs (hwnas.bench.studies.search_seed_test)."""

from __future__ import annotations

import json

import numpy as np

from hwnas.bench.studies import search_seed_test as st


def _runs(values: dict[str, list[float]], problem: str = "nb201/x/accuracy+latency") -> list:
    return [{"problem": problem, "strategy": name, "seed": i,
             "at": {"300": {"recall": v, "hv_ratio": 0.9 + v / 10}}}
            for name, vs in values.items() for i, v in enumerate(vs)]


def test_superiority_counts_ties_as_half():
    assert st.superiority(np.array([1.0]), np.array([1.0])) == 0.5
    assert st.superiority(np.array([2.0, 0.0]), np.array([1.0])) == 0.5
    assert st.superiority(np.array([2.0, 3.0]), np.array([1.0, 1.5])) == 1.0


def test_holm_steps_down_and_stops_at_the_first_kept():
    # thresholds for m = 4: 0.0125, 0.0167, 0.025, 0.05
    assert st.holm([0.01, 0.04, 0.015, 0.03]) == [True, False, True, False]
    assert st.holm([0.02, 0.001]) == [True, True]  # 0.001 <= 0.025, then 0.02 <= 0.05
    assert st.holm([0.06, 0.001]) == [False, True]


def test_a_clear_shift_is_significant_and_noise_is_not():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 0.7, 40).round(2).tolist()
    b = rng.uniform(0.2, 0.4, 40).round(2).tolist()
    c = rng.uniform(0.5, 0.7, 40).round(2).tolist()
    result = {"runs": _runs({"a": a, "b": b}) + _runs({"a": a, "b": c}, "nb201/y/acc")}
    recs = {(r["problem"], r["metric"]): r for r in st.seed_tests(result, "a", "b", ["recall"])}
    shifted, level = recs[("nb201/x/accuracy+latency", "recall")], recs[("nb201/y/acc", "recall")]
    assert shifted["significant"] and shifted["superiority"] == 1.0 and shifted["mean_diff"] > 0
    assert not level["significant"] and 0.3 < level["superiority"] < 0.7


def test_identical_values_are_not_tested():
    result = {"runs": _runs({"a": [0.5] * 5, "b": [0.5] * 5})}
    (rec,) = st.seed_tests(result, "a", "b", ["recall"])
    assert rec["p"] == 1.0 and not rec["significant"]


def test_cli_writes_the_records_and_refuses_an_unknown_strategy(tmp_path, capsys):
    src = tmp_path / "search.json"
    src.write_text(json.dumps({"seeds": 5, "runs": _runs({"a": [0.1, 0.2, 0.3, 0.2, 0.1],
                                                          "b": [0.2, 0.3, 0.4, 0.3, 0.2]})}))
    out = tmp_path / "test.json"
    assert st.main([str(src), "--a", "a", "--b", "b", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert {r["metric"] for r in written["records"]} == {"recall", "hv_ratio"}
    assert "a mean >= b mean in 0/1 cells" in capsys.readouterr().out
    assert st.main([str(src), "--a", "nope", "--b", "b"]) == 2
    err = capsys.readouterr().err
    assert "'nope' has no runs" in err and "a, b" in err
    (tmp_path / "bad.json").write_text("{")
    assert st.main([str(tmp_path / "bad.json")]) == 2
