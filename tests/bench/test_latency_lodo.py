"""The leave-one-device-out latency study's fixed parts (hwnas.bench.studies.latency_lodo)."""

from __future__ import annotations

from hwnas.bench.studies import latency_lodo as lodo


def test_folds_deal_every_device_once_by_name():
    devices = [f"d{i:02d}" for i in range(12)][::-1]
    folds = lodo.device_folds(devices, 5)
    assert [len(f) for f in folds] == [3, 3, 2, 2, 2]
    assert sorted(d for f in folds for d in f) == sorted(devices)
    assert folds[0] == ["d00", "d05", "d10"]  # sorted names, round robin: no seed involved
    assert lodo.device_folds(devices[:3], 5) == [["d09"], ["d10"], ["d11"]]  # no empty folds


def test_validation_devices_are_helps_train_and_valid_never_its_test():
    for space in lodo.SPACES:
        _, train, valid, test = lodo.SPLITS[space]
        val = lodo.validation_devices(space)
        assert set(val) == set(train) | set(valid) and not set(val) & set(test)


def _rec(role: str, hw: float, rg: float, ceiling: float) -> dict:
    curves = {str(k): {f"hwnas:default/{m}": {"mean": hw} for m in ("rho", "tau")}
              | {f"ridge/{m}": {"mean": rg} for m in ("rho", "tau")} for k in lodo.SHOT_COUNTS}
    return {"role": role, "curves": curves, "closest": {"device": "x", "rho": 0.5},
            "ceiling": {"best": ceiling, "best_tau": ceiling}}


def test_markdown_counts_wins_and_ceiling_gaps():
    res = {"spaces": {"nb201": {"devices": {
        "a": _rec("validation", 0.95, 0.94, 0.99),   # above ridge, within 0.05
        "b": _rec("held-out", 0.90, 0.92, 0.99),     # below ridge, 0.09 from the ceiling
    }}}}
    text = lodo.markdown(res, "default")
    assert "| nb201 | all | 2 | 0.925 | 0.930 | -0.005 | 1/2 | 1/2 |" in text
    assert "| nb201 | validation | 1 | 0.950 | 0.940 | +0.010 | 1/1 | 1/1 |" in text
    assert "| nb201 | hwnas rho | 0.925 | 0.925 | 0.925 | 0.925 | 0.925 |" in text
