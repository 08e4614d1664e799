"""NAS-Bench-201: strings, graph, the official network's exact parameter counts, index order."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hwnas.search import ArchitectureError, DataNotFoundError, count_params, get_space, model_stats
from hwnas.search.spaces.nb201 import NB201Space

S = get_space("nb201")


def cell(*ops: str) -> str:
    e = list(ops)
    return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"


# Hand derivation (C = 16, 32, 64; five cells per stage; all convs without bias, BN affine):
#   fixed part: stem 3*16*9 + 2*16 = 464; reduction 16->32: (16*32*9 + 64) + (32*32*9 + 64) + 16*32
#   = 14,464; reduction 32->64: (32*64*9 + 128) + (64*64*9 + 128) + 32*64 = 57,600; last BN 128;
#   classifier 64*10 + 10 = 650.  Total fixed = 73,306.
#   per edge: nor_conv_3x3 9C^2 + 2C, nor_conv_1x1 C^2 + 2C, others 0.
#   all 3x3: 5*6*(2,336 + 9,280 + 36,992) = 1,458,240 -> 1,531,546 (NAS-Bench-201's figure)
#   all 1x1: 5*6*(288 + 1,088 + 4,224) = 168,000 -> 241,306
#   two 1x1 edges: 5*2*(288 + 1,088 + 4,224) = 56,000 -> 129,306
#   one 3x3 + one 1x1: 5*((2,336+288) + (9,280+1,088) + (36,992+4,224)) = 271,040 -> 344,346
HAND_COUNTS = [
    (cell(*["nor_conv_3x3"] * 6), 1_531_546),
    (cell(*["skip_connect"] * 6), 73_306),
    (cell(*["none"] * 6), 73_306),
    (cell(*["avg_pool_3x3"] * 6), 73_306),
    (cell(*["nor_conv_1x1"] * 6), 241_306),
    (cell("avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect",
          "skip_connect"), 129_306),
    (cell("nor_conv_3x3", "none", "none", "nor_conv_1x1", "avg_pool_3x3", "none"), 344_346),
]


@pytest.mark.parametrize(("text", "params"), HAND_COUNTS)
def test_parameter_counts_match_hand_derivation(text, params):
    assert count_params(S.build(S.parse(text))) == params


def test_flops_of_the_largest_cell():
    # NAS-Bench-201 reports 220.11 M for the all-3x3 CIFAR-10 network
    stats = model_stats(S, S.parse(cell(*["nor_conv_3x3"] * 6)))
    assert stats.flops_m == pytest.approx(220.12, abs=0.01)


def test_none_edges_zero_or_dropped_give_the_same_function():
    arch = S.parse(cell("nor_conv_3x3", "none", "nor_conv_1x1", "none", "skip_connect", "none"))
    # `none` edges hold no parameters, so the same seed gives both networks the same weights
    torch.manual_seed(0)
    zero = S.build(arch).eval()
    torch.manual_seed(0)
    drop = S.build(arch, none="drop").eval()
    assert count_params(zero) == count_params(drop)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(zero(x), drop(x))
    with pytest.raises(ArchitectureError, match="none="):
        S.build(arch, none="nope")


def test_disconnected_cell_builds_with_dropped_none():
    arch = S.parse(cell(*["none"] * 6))
    with torch.no_grad():
        out = S.build(arch, none="drop").eval()(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)


@pytest.mark.parametrize(("text", "message"), [
    ("|nor_conv_3x3~0|+|none~0|none~1|", "3 node groups"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv' on edge 0->1"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end"),
])
def test_parse_errors_say_what_and_where(text, message):
    with pytest.raises(ArchitectureError, match=message):
        S.parse(text)


def test_graph_follows_the_cell():
    g = S.graph(S.parse(cell("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                             "avg_pool_3x3", "none")))
    assert g.ops == ("input", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                     "avg_pool_3x3", "none", "output")
    edges = {(int(i), int(j)) for i, j in zip(*g.adjacency.nonzero(), strict=True)}
    # op k feeds op m when k's target node is m's source node; node-3 edges feed the output
    assert edges == {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7),
                     (6, 7)}


def test_neighbours_count():
    assert len(S.neighbours(S.sample(0))) == 6 * 4


def test_index_comes_from_the_bundled_tables_unless_overridden(tmp_path):
    a = S.sample(0)
    assert NB201Space()[NB201Space().index(a)] == a
    with pytest.raises(DataNotFoundError, match="not a directory"):
        NB201Space(tmp_path / "missing")[0]


def test_index_order_comes_from_the_table(synthetic_data):
    root = synthetic_data
    table = pd.read_csv(root / "nb201" / "architectures.csv")
    space = NB201Space(root)
    assert len(space) == 15625
    for i in (0, 17, 15624):
        assert space.format(space[i]) == table["arch"][i]
        assert space.index(space[i]) == i
    assert [space.format(a) for a in list(space)[:3]] == table["arch"][:3].tolist()


def test_official_order_round_trips(public_data):
    space = NB201Space(public_data)
    assert len(list(space)) == 15625
    for i in (0, 1, 1462, 15624):
        assert space.index(space[i]) == i


def test_fast_stats_equal_built_network_stats():
    archs = S.sample_batch(12, rng=5) + [S.parse(t) for t, _ in HAND_COUNTS]
    for arch, fast in zip(archs, S.fast_stats(archs), strict=True):
        built = model_stats(S, arch)
        assert fast.params == built.params
        assert fast.flops_m == pytest.approx(built.flops_m, rel=1e-9)
    assert S.fast_stats(archs[:1], num_classes=100)[0].params == \
        model_stats(S, archs[0], num_classes=100).params
