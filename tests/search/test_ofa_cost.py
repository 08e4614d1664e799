"""OFA costs from per-layer tables (hwnas.search.spaces.ofa_cost) against built networks."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search.spaces.ofa import OFASpace
from hwnas.search.spaces.ofa_cost import ofa_costs
from hwnas.search.spaces.stats import model_stats


@pytest.mark.parametrize("width", [1.2, 1.0])
def test_table_costs_equal_the_built_networks(width):
    space = OFASpace(width)
    rng = np.random.default_rng(0)
    # two resolutions, networks of every depth mix: the tables of a resolution are shared
    archs = []
    for r in ("r128", "r224"):
        for _ in range(3):
            a = space.sample(rng)
            archs.append(space.parse(r + space.format(a)[4:]))
    costs = ofa_costs(space, archs)
    for a, (macs, params) in zip(archs, costs, strict=True):
        ref = model_stats(space, a)
        assert macs == pytest.approx(ref.flops_m, rel=1e-12)
        assert params == ref.params


def test_costs_grow_with_resolution_and_depth():
    space = OFASpace()
    small = space.parse("r160|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    wide = space.parse("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    deep = space.parse("r160|k7e6-k7e6-k7e6-k7e6|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")
    c = ofa_costs(space, [small, wide, deep])
    assert c[1, 0] > c[0, 0] and c[1, 1] == c[0, 1]  # resolution: compute, not parameters
    assert c[2, 0] > c[0, 0] and c[2, 1] > c[0, 1]
