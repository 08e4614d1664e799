"""The ceiling-as-a-curve study (hwnas.bench.studies.latency_ceiling_curve), bundled tables."""

from __future__ import annotations

import json

from hwnas.bench.studies import latency_ceiling_curve as lcc


def _lodo(ceilings: dict[str, float]) -> dict:
    curves = {str(k): {"hwnas:default/rho": {"mean": 0.80}, "ridge/rho": {"mean": 0.75}}
              for k in (5, 10, 20, 50, 100)}
    return {"spaces": {"fbnet": {"devices": {
        d: {"role": "validation", "curves": curves, "ceiling": {"best": c}}
        for d, c in ceilings.items()}}}}


def test_devices_are_those_below_the_linear_enough_ceiling_or_those_named():
    res = _lodo({"essential_ph_1": 0.80, "titanx_1": 0.999})
    assert lcc.curve_devices(res) == [("fbnet", "essential_ph_1")]
    assert lcc.curve_devices(res, ["fbnet:titanx_1"]) == [("fbnet", "titanx_1")]


def test_more_own_measurements_rank_better_and_the_report_compares_with_hwnas(tmp_path):
    curve = lcc.device_curve("fbnet", "essential_ph_1", sizes=(20, 500), repeats=2)
    at20, at500 = curve["sizes"]["20"], curve["sizes"]["500"]
    assert at20["boosted_log"]["rho"] == [0.0, 0.0]  # 20 points: the trees cannot split
    assert at500["best"] > at20["best"] > 0.3 and len(at500["linear_ms"]["tau"]) == 2
    result = {"sizes_requested": [20, 500], "devices": {"fbnet:essential_ph_1": curve}}
    text = lcc.markdown(result, _lodo({"essential_ph_1": 0.80}))
    assert "| fbnet | essential_ph_1 | validation | 0.800 |" in text
    beats = at20["best"] <= 0.80
    assert f"on {int(beats)}/1 devices" in text


def test_cli_refuses_an_unknown_device_in_one_line(tmp_path, capsys):
    lodo = tmp_path / "lodo.json"
    lodo.write_text(json.dumps(_lodo({"essential_ph_1": 0.80})))
    assert lcc.main(["--lodo", str(lodo), "--devices", "fbnet:nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: not in lodo.json: fbnet:nope") and "\n" not in err
    assert lcc.main(["--lodo", str(lodo), "--sizes", "2"]) == 2
    assert lcc.main(["--lodo", str(tmp_path / "missing.json")]) == 2
