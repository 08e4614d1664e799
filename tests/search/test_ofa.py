"""The once-for-all MobileNetV3 space: strings, canonical form, OFA configs, graph and networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.search import Architecture, ArchitectureError, count_params, get_space
from hwnas.search.spaces.ofa import DEPTHS, EXPANDS, KERNELS, RESOLUTIONS, OFASpace, make_divisible

SPACE = OFASpace()
N = len(SPACE.genes)
SMALLEST = "r128|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3"
MIXED = "r128|k7e6-k5e4|k3e3-k3e4-k5e6|k3e6-k7e3|k5e6-k7e6-k3e4-k3e3|k3e6-k5e3"

genes_st = st.lists(st.integers(0, 2), min_size=N - 1, max_size=N - 1).flatmap(
    lambda g: st.integers(0, len(RESOLUTIONS) - 1).map(lambda r: [*g, r])
)


def test_registered_and_declared() -> None:
    s = get_space("ofa")
    assert isinstance(s, OFASpace)
    assert (s.name, s.kind, s.num_classes) == ("ofa", "hierarchical", 1000)
    names = [g.name for g in s.genes]
    assert names[:5] == ["d0", "d1", "d2", "d3", "d4"]
    assert names[5] == "ks00" and names[24] == "ks19" and names[25] == "e00" and names[44] == "e19"
    assert names[45] == "r" and s.genes[45].choices == tuple(range(128, 225, 4))
    assert s.size == 25 * (9**2 + 9**3 + 9**4) ** 5


@settings(max_examples=200, deadline=None)
@given(genes_st)
def test_format_parse_round_trip(genes: list[int]) -> None:
    a = SPACE.from_genes(genes)
    text = SPACE.format(a)
    assert SPACE.parse(text) == a
    assert SPACE.parse(f"  {text}\n") == a
    fields = text.split("|")
    assert len(fields) == 6 and fields[0] == f"r{RESOLUTIONS[genes[-1]]}"
    for s, field in enumerate(fields[1:]):
        assert len(field.split("-")) == DEPTHS[genes[s]]
    assert SPACE.from_ofa_dict(SPACE.to_ofa_dict(a)) == a


def test_parse_values() -> None:
    a = SPACE.parse(MIXED)
    v = SPACE.values(a)
    assert v[:5] == (2, 3, 2, 4, 2)
    assert v[5:9] == (7, 5, 3, 3)  # stage 1: two layers, then canonical kernel 3
    assert v[25:29] == (6, 4, 3, 3)
    assert v[45] == 128
    assert str(a) == MIXED


def test_inactive_layers_are_canonical() -> None:
    a = list(SPACE.parse(MIXED).genes)
    b = list(a)
    b[5 + 2], b[25 + 3] = 2, 1  # stage 1 has depth 2: layers 2 and 3 are inactive
    b[5 + 4 * 4 + 3] = 1  # stage 5 too
    assert SPACE.from_genes(a) == SPACE.from_genes(b)
    assert str(SPACE.from_genes(a)) == str(SPACE.from_genes(b))
    mask = SPACE.active(a)
    assert mask[:5].all() and mask[45]
    assert mask.sum() == 5 + 2 * 13 + 1
    assert not mask[5 + 2] and not mask[25 + 3] and mask[5 + 4 * 3 + 3]


def test_groups_cover_every_gene_once() -> None:
    groups = SPACE.groups
    assert len(groups) == 6 and groups[-1] == (45,)
    assert sorted(i for g in groups for i in g) == list(range(N))
    assert groups[1] == (1, 9, 10, 11, 12, 29, 30, 31, 32)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "expected 6"),
        ("224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "resolution field '224'"),
        ("r130|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "resolution 130 is not one"),
        (
            "r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3-k3e3-k3e3-k3e3|k3e3-k3e3|k3e3-k3e3",
            "stage 3 of 5 has 5 layers; valid: 2-4",
        ),
        ("r224|k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "stage 1 of 5 has 1 layers"),
        ("r224|k3e3-k3e3||k3e3-k3e3|k3e3-k3e3|k3e3-k3e3", "stage 2 of 5 has 0 layers"),
        (
            "r224|k3e3-k3e3|k4e6-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3",
            "token 'k4e6' in stage 2 of 5: kernel 4 is not one of 3, 5, 7",
        ),
        ("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e5|k3e3-k3e3|k3e3-k3e3", "expand ratio 5"),
        ("r224|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-3x3|k3e3-k3e3", "token '3x3' in stage 4"),
    ],
)
def test_parse_errors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(ArchitectureError, match="^ofa: ") as info:
        SPACE.parse(text)
    assert fragment in str(info.value)


def test_ofa_dict_round_trip_by_hand() -> None:
    row = {
        "ks": [7, 5, 5, 5, 7, 7, 5, 7, 5, 7, 3, 7, 5, 3, 7, 3, 5, 3, 5, 3],
        "e": [6, 4, 4, 6, 6, 3, 4, 3, 3, 6, 3, 3, 3, 6, 3, 4, 6, 4, 3, 6],
        "d": [2, 2, 2, 2, 3],
        "r": 204,
    }
    a = SPACE.from_ofa_dict(row)
    assert str(a) == "r204|k7e6-k5e4|k7e6-k7e3|k5e3-k7e6|k5e3-k3e6|k5e6-k3e4-k5e3"
    d = SPACE.to_ofa_dict(a)
    assert d["d"] == row["d"] and d["r"] == 204
    for i in range(20):
        active = i % 4 < row["d"][i // 4]
        assert d["ks"][i] == (row["ks"][i] if active else 3)
        assert d["e"][i] == (row["e"][i] if active else 3)
    assert SPACE.from_ofa_dict(d) == a
    # an invalid value in an inactive layer does not matter; in an active one it does
    assert SPACE.from_ofa_dict({**row, "ks": [*row["ks"][:2], 9, *row["ks"][3:]]}) == a
    with pytest.raises(ArchitectureError, match=r"kernel ks\[1\] is 9"):
        SPACE.from_ofa_dict({**row, "ks": [row["ks"][0], 9, *row["ks"][2:]]})
    with pytest.raises(ArchitectureError, match="'e' has 19 values"):
        SPACE.from_ofa_dict({**row, "e": row["e"][:19]})
    with pytest.raises(ArchitectureError, match=r"depth d\[4\] is 5"):
        SPACE.from_ofa_dict({**row, "d": [2, 2, 2, 2, 5]})


def test_graph_is_a_chain_of_active_layers() -> None:
    a = SPACE.parse(MIXED)
    g = SPACE.graph(a)
    assert len(g.ops) == 13 + 2
    assert g.ops[0] == "input" and g.ops[-1] == "output" and g.ops[1:3] == ("k7e6", "k5e4")
    assert g.adjacency.dtype == np.uint8
    assert np.array_equal(g.adjacency, np.eye(15, k=1, dtype=np.uint8))


@pytest.mark.parametrize("text", [SMALLEST, MIXED])
def test_build_and_forward(text: str) -> None:
    a = SPACE.parse(text)
    assert SPACE.input_shape(a) == (3, 128, 128)
    model = SPACE.build(a).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *SPACE.input_shape(a)))
    assert out.shape == (2, 1000)
    assert SPACE.build(a, num_classes=10)(torch.randn(2, 3, 128, 128)).shape == (2, 10)


def test_make_divisible_matches_ofa_widths() -> None:
    # w1.2: 16 * 1.2 = 19.2 rounds to 16, which is over 10% below, so 24
    assert [make_divisible(c * 1.2) for c in (16, 24, 40, 80, 112, 160, 960, 1280)] == [
        24, 32, 48, 96, 136, 192, 1152, 1536,
    ]
    assert [make_divisible(c) for c in (144 // 4, 408 // 4, 816 // 4)] == [40, 104, 208]


def test_smallest_network_parameters_by_hand() -> None:
    # Width 1.2, all depths 2, every layer k3 e3, 1000 classes. conv weights + BN (2 per channel):
    #   stem 3x3 3->24:                  3*24*9 + 48                                   =     696
    #   first block dw3 24, pw 24->24:   216 + 48 + 576 + 48                           =     888
    #   stage 1 (32, no SE): 24->mid 72->32: 1728+144 + 648+144 + 2304+64              =   5,032
    #                        32->mid 96->32: 3072+192 + 864+192 + 3072+64              =   7,456
    #   stage 2 (48, SE):    32->96->48: 3072+192 + 864+192 + SE(96->24->96: 2328+2400)
    #                                    + 4608+96                                      =  13,752
    #                        48->144->48: 6912+288 + 1296+288 + SE(144->40->144:
    #                                    5800+5904) + 6912+96                           =  27,496
    #   stage 3 (96, no SE): 48->144->96: 6912+288 + 1296+288 + 13824+192              =  22,800
    #                        96->288->96: 27648+576 + 2592+576 + 27648+192             =  59,232
    #   stage 4 (136, SE):   96->288->136: 27648+576 + 2592+576 + SE(288->72->288:
    #                                    20808+21024) + 39168+272                       = 112,664
    #                        136->408->136: 55488+816 + 3672+816 + SE(408->104->408:
    #                                    42536+42840) + 55488+272                       = 201,928
    #   stage 5 (192, SE):   136->408->192: 55488+816 + 3672+816 + 42536+42840
    #                                    + 78336+384                                    = 224,888
    #                        192->576->192: 110592+1152 + 5184+1152 + SE(576->144->576:
    #                                    83088+83520) + 110592+384                      = 395,664
    #   final expand 192->1152 + BN:     221184 + 2304                                 = 223,488
    #   feature mix 1152->1536, no bias:                                                1,769,472
    #   classifier 1536->1000 + bias:                                                   1,537,000
    #   total                                                                           4,602,456
    assert count_params(SPACE.build(SPACE.parse(SMALLEST))) == 4_602_456


def test_mutate_stays_valid_and_changes() -> None:
    rng = np.random.default_rng(0)
    a = SPACE.sample(rng)
    for _ in range(50):
        b = SPACE.mutate(a, rng)
        assert isinstance(b, Architecture) and b != a
        assert SPACE.parse(str(b)) == b
        assert SPACE.from_genes(b.genes) == b  # already canonical
        a = b


def test_crossover_and_neighbours_stay_canonical() -> None:
    rng = np.random.default_rng(1)
    a, b = SPACE.sample(rng), SPACE.sample(rng)
    c = SPACE.crossover(a, b, rng)
    assert SPACE.from_genes(c.genes) == c
    nbrs = SPACE.neighbours(SPACE.parse(SMALLEST))
    # 5 depths x 2 + 10 layers x (2 kernels + 2 expands) + 24 resolutions, each distinct
    assert len(nbrs) == 10 + 40 + 24 == len(set(nbrs))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, on purpose
def test_onnx_export(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    model = SPACE.build(SPACE.parse(MIXED)).eval()
    x = torch.randn(1, 3, 128, 128)
    path = tmp_path / "ofa.onnx"
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17)
    onnx.checker.check_model(onnx.load(str(path)))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-3, atol=1e-4)


def test_public_table_rows_canonicalise_and_round_trip() -> None:
    from hwnas.search.tables import bundled_dir, read_frame

    frame, _ = read_frame(bundled_dir() / "ofa", "architectures")
    rows = [{"ks": list(map(int, k)), "e": list(map(int, e)), "d": list(map(int, d)), "r": int(r)}
            for k, e, d, r in zip(frame["ks"], frame["e"], frame["d"], frame["r"], strict=True)]
    assert len(rows) == 5000
    archs = []
    for row in rows:
        a = SPACE.from_ofa_dict(row)
        assert SPACE.parse(str(a)) == a
        assert SPACE.from_ofa_dict(SPACE.to_ofa_dict(a)) == a
        assert all(k in KERNELS for k in row["ks"]) and all(e in EXPANDS for e in row["e"])
        archs.append(a)
    assert len(set(archs)) == len(archs)
