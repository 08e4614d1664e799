"""Memory, size and energy as metric sources and objectives: live, cached, through minimize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.bench import Problem, create_source, minimize
from hwnas.bench.cli import main
from hwnas.latency import ProfileStore, export_onnx
from hwnas.latency.energy import EnergyUnsupportedError, energy_sensor
from hwnas.latency.memory import initializer_bytes
from hwnas.search import HwnasError, get_space

SPACE = get_space("nb201")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One export cache for the module: each network is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(cache))


@pytest.mark.slow
def test_memory_and_size_objectives_through_minimize(tmp_path):
    problem = Problem.from_names("nb201", ["accuracy", "memory", "size"])
    assert problem.directions == ["max", "min", "min"]
    try:
        result = minimize(problem, "random", budget=3, seed=0)
        frame = result.to_frame()
        assert len(frame) == 3
        assert (frame["memory"] > 0).all() and (frame["size"] > 0).all()
        # kept in a store like live latency's: asked again, nothing is measured again
        memory = problem.objectives[1].source
        store_dir = memory.out_dir
        archs = [SPACE.parse(a) for a in frame["arch"]]
        again = memory.evaluate(archs)
        np.testing.assert_allclose(again, frame["memory"].to_numpy())
        with ProfileStore(store_dir) as store:
            assert len(store.resources()) == 3
    finally:
        problem.close()
    assert store_dir.name == "live-resources-ort-cpu-nb201"


@pytest.mark.slow
def test_resource_sources_contract(tmp_path):
    archs = [SPACE.sample(np.random.default_rng(i)) for i in range(2)]
    for name in ("memory", "size", "size:weights"):
        source = create_source(name, SPACE, out=str(tmp_path / "res"))
        assert isinstance(source.name, str) and source.name and source.unit == "MiB"
        values = source.evaluate(archs)
        assert values.shape == (2,) and values.dtype == np.float64
        assert np.isfinite(values).all() and (values > 0).all()
        assert source.calls == 2 and source.cost_s > 0
        source.close()


def test_size_sources_match_the_file_and_its_weights(tmp_path):
    arch = SPACE.sample(5)
    size = create_source("size", SPACE, out=str(tmp_path / "res"))
    weights = create_source("size:weights", SPACE, out=str(tmp_path / "res"))
    path = export_onnx(SPACE, arch)
    assert size.evaluate([arch])[0] == pytest.approx(path.stat().st_size / 2**20)
    assert weights.evaluate([arch])[0] == pytest.approx(initializer_bytes(path) / 2**20)
    assert size.unit == weights.unit == "MiB"
    size.close()
    weights.close()


@pytest.mark.parametrize(("options", "message"), [
    ({"runtime": "torch-cpu"}, "reads no ONNX file"),
    ({"runtime": "no-such"}, "no-such"),
])
def test_memory_source_refuses_what_it_cannot_measure(options, message):
    with pytest.raises(HwnasError, match=message):
        create_source("memory", SPACE, **options)


def test_energy_says_unsupported_here_or_reads_above_zero():
    ok, why = energy_sensor()
    if not ok:
        with pytest.raises(EnergyUnsupportedError, match="^energy is unsupported here: .*RAPL"):
            create_source("energy", SPACE)
        with pytest.raises(EnergyUnsupportedError):
            Problem.from_names("nb201", ["accuracy", "energy"])
        return
    source = create_source("energy", SPACE, seconds=0.2)
    assert source.evaluate([SPACE.sample(1)])[0] > 0


@pytest.mark.slow
def test_search_cli_takes_memory_and_reports_energy_in_one_line(capsys, tmp_path):
    code = main(["search", "--space", "nb201", "--objectives", "accuracy,memory", "--strategy",
                 "random", "--budget", "2", "--seed", "1", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 0, err
    ev = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    assert "memory" in ev.columns and (ev["memory"] > 0).all()
    if not energy_sensor()[0]:
        code = main(["search", "--space", "nb201", "--objectives", "accuracy,energy",
                     "--budget", "2", "--out", str(tmp_path / "e")])
        err = capsys.readouterr().err
        assert code == 2 and "energy is unsupported here" in err and len(err.splitlines()) == 1
