"""Shared fixtures: where the public tables are (if anywhere), a private stats cache, and factories
that make small benchmark tables for tests that must not depend on the public ones."""

from __future__ import annotations

import os

# One BLAS thread: the strategies' small least-squares fits are slower, and their results can differ
# in the last bits, when OpenBLAS splits them across the CI machine's cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

settings.register_profile("hwnas", derandomize=True, deadline=None, max_examples=60)
settings.load_profile("hwnas")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def public_data() -> Path:
    """The public tables: the copy bundled with the package (always there)."""
    from hwnas.search.tables import bundled_dir

    return bundled_dir()


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own stats cache, its own results folder and no inherited HWNAS_DATA
    (a user's ``results/devices`` would otherwise show up in what a test lists)."""
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("HWNAS_RESULTS", str(tmp_path_factory.mktemp("results")))
    # set, then deleted: monkeypatch then removes HWNAS_DATA at teardown even when the test set
    # it itself (``hwnas --data DIR`` writes os.environ), so no later module fixture inherits it
    monkeypatch.setenv("HWNAS_DATA", "")
    monkeypatch.delenv("HWNAS_DATA")


@pytest.fixture(scope="session")
def nb201_kernel_universe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NB201 kernel universe enumerated once per test session (it takes tens of seconds);
    returns the cached file (see ``nb201_universe_cached``)."""
    from hwnas.latency import kernels as kmod
    from hwnas.search import get_space

    folder = tmp_path_factory.mktemp("universe_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWNAS_CACHE", str(folder))
        kmod._universe.cache_clear()
        kmod.kernel_universe(get_space("nb201"))
        kmod._universe.cache_clear()  # later tests read their own cache
    (path,) = (folder / "lut").glob("universe_nb201_*.json")
    return path


@pytest.fixture
def nb201_universe_cached(nb201_kernel_universe: Path, _isolated: None) -> Path:
    """The session's NB201 kernel universe copied into this test's own cache (``HWNAS_CACHE``)."""
    import shutil

    from hwnas.latency import kernels as kmod

    target = Path(os.environ["HWNAS_CACHE"]) / "lut" / nb201_kernel_universe.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(nb201_kernel_universe, target)
    kmod._universe.cache_clear()  # read from this test's cache
    yield target
    kmod._universe.cache_clear()


def make_nb201_tables(root: Path, seed: int = 0, devices: tuple[str, ...] = ("dev_a", "dev_b"),
                      ) -> Path:
    """Write a complete, made-up NB201 table set under ``root/nb201`` (all 15,625 cells in a
    shuffled order, random accuracies and latencies) and return ``root``."""
    from hwnas.search import get_space

    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    genes = np.stack(np.unravel_index(np.arange(space.size), tuple(space.n_choices)), axis=1)
    genes = genes[rng.permutation(len(genes))]
    archs = [space.format(space.from_genes(g)) for g in genes]
    folder = root / "nb201"
    folder.mkdir(parents=True, exist_ok=True)
    n = len(archs)
    pd.DataFrame({"index": np.arange(n), "arch": archs,
                  "cifar10_test_200ep": rng.uniform(10, 95, n).round(3)}).to_csv(
        folder / "architectures.csv", index=False)
    lat = {"index": np.arange(n)}
    for d in devices:
        lat[d] = rng.uniform(0.5, 20, n).round(4)
    pd.DataFrame(lat).to_csv(folder / "latency_ms.csv", index=False)
    return root


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A made-up but complete table folder (nb201 only), shared by the tests that only read it."""
    return make_nb201_tables(tmp_path_factory.mktemp("data"), seed=3)
