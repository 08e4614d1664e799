"""The FBNet space of HW-NAS-Bench: strings, graph, the built network, its size and ONNX export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwnas.search import Architecture, ArchitectureError, count_params, get_space
from hwnas.search.spaces.fbnet import BLOCKS, FBNetSpace

SPACE = FBNetSpace()
N = 22

ROW = [  # row 0 of HW-NAS-Bench's FBNet table, written out by hand
    "k5_e6", "skip", "k3_e1_g2", "skip", "k5_e1", "skip", "skip", "skip", "k5_e6", "k5_e1",
    "k3_e1_g2", "k5_e1", "k5_e6", "k3_e6", "k3_e3", "k5_e6", "k3_e6", "k3_e3", "k5_e1", "k3_e3",
    "k5_e1", "k5_e1_g2",
]  # fmt: skip

genes_st = st.lists(st.integers(0, len(BLOCKS) - 1), min_size=N, max_size=N)


def arch_of(*blocks: str) -> Architecture:
    """The architecture with ``blocks`` in the first layers and ``skip`` in all the others."""
    return SPACE.from_blocks(list(blocks) + ["skip"] * (N - len(blocks)))


def test_declaration():
    assert get_space("fbnet").name == SPACE.name == "fbnet"
    assert SPACE.kind == "chain" and SPACE.num_classes == 100
    assert BLOCKS == (
        "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
    )  # fmt: skip
    assert [g.name for g in SPACE.genes] == [f"layer{i:02d}" for i in range(N)]
    assert all(g.choices == BLOCKS for g in SPACE.genes)
    assert SPACE.size == 9**22


@settings(max_examples=200, deadline=None)
@given(genes_st)
def test_parse_format_round_trip(genes):
    arch = SPACE.from_genes(genes)
    text = SPACE.format(arch)
    assert text.split("-") == [BLOCKS[g] for g in genes]
    assert SPACE.parse(text) == arch
    assert SPACE.parse(f"  {text}\n") == arch
    assert SPACE.from_blocks(text.split("-")) == arch


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("-".join(["k3_e1"] * 3 + ["k9_e1"] + ["k3_e1"] * 18), r"layer 3 is 'k9_e1'; valid: k3_e1"),
        ("-".join(["k3_e1"] * 21), r"expected 22 blocks .* got 21"),
        ("-".join(["k3_e1"] * 23), r"expected 22 blocks .* got 23"),
        ("", r"got 1"),
        ("-".join(["k3_e1"] * 21 + [""]), r"layer 21 is ''"),
        ("-".join(["K3_E1"] + ["k3_e1"] * 21), r"layer 0 is 'K3_E1'"),
    ],
)
def test_parse_errors_say_what_and_where(text, match):
    with pytest.raises(ArchitectureError, match=match):
        SPACE.parse(text)


def test_from_blocks_and_errors():
    arch = SPACE.from_blocks(ROW)
    assert arch.genes[:4] == (7, 8, 1, 8) and arch.genes[-1] == 5
    assert str(arch) == "-".join(ROW)
    with pytest.raises(ArchitectureError, match="expected 22 layers, got 21"):
        SPACE.from_blocks(ROW[:-1])
    with pytest.raises(ArchitectureError, match="layer 5 is 'conv'"):
        SPACE.from_blocks(ROW[:5] + ["conv"] + ROW[6:])
    with pytest.raises(ArchitectureError, match="use parse"):
        SPACE.from_blocks("-".join(ROW))
    with pytest.raises(ArchitectureError, match="not an architecture of the fbnet space"):
        SPACE.format(Architecture("nb201", (0,) * 6))


def test_graph_is_a_chain():
    arch = SPACE.from_blocks(ROW)
    g = SPACE.graph(arch)
    assert g.ops == ("input", *ROW, "output")
    assert g.adjacency.shape == (24, 24) and g.adjacency.dtype == np.uint8
    assert np.array_equal(g.adjacency, np.eye(24, k=1, dtype=np.uint8))
    assert SPACE.input_shape(arch) == (3, 32, 32)


@pytest.mark.parametrize(
    "blocks",
    [["skip"] * N, ["k5_e6"] * N, ROW, ["k3_e1_g2", "k5_e1_g2"] * (N // 2)],
    ids=["all-skip", "all-k5_e6", "row0", "grouped"],
)
def test_build_forward(blocks):
    model = SPACE.build(SPACE.from_blocks(blocks))
    assert model.training
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100) and torch.isfinite(out).all()
    small = SPACE.build(SPACE.from_blocks(blocks), num_classes=10)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# Parameters counted by hand. Fixed part: stem 3x3 conv 3->16 (432) + BN (32) = 464; head 1x1 conv
# 352->1504 (529,408) + BN (3,008) = 532,416; classifier 1504*100 + 100 = 150,500. Sum 683,380.
# A skip in a layer that changes channels/stride is a 1x1 conv + BN: c_in*c_out + 2*c_out, i.e.
# 16->24: 432, 24->32: 832, 32->64: 2,176, 64->112: 7,392, 112->184: 20,976, 184->352: 65,472
# (sum 97,280); every other skip (layer 0, 16->16, stride 1 included) is the identity: 0.
ALL_SKIP = 683_380 + 97_280  # = 780,660
# k3_e1_g2 in layer 0 (16->16): 1x1 g2 conv 16*8 = 128, BN 32; dw 3x3 16*9 = 144, BN 32;
# 1x1 g2 conv 128, BN 32: 496 instead of 0.
ONE_GROUPED = ALL_SKIP + 496  # = 781,156
# k5_e6 in layer 1 (16->24, expands the 16 input channels to 96): 1x1 16*96 = 1,536, BN 192;
# dw 5x5 96*25 = 2,400, BN 192; 1x1 96*24 = 2,304, BN 48: 6,672 instead of the 432 of the skip.
ONE_WIDE = ALL_SKIP - 432 + 6_672  # = 786,900


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        (arch_of(), ALL_SKIP),
        (arch_of("k3_e1_g2"), ONE_GROUPED),
        (arch_of("skip", "k5_e6"), ONE_WIDE),
    ],
    ids=["all-skip", "layer0-k3_e1_g2", "layer1-k5_e6"],
)
def test_param_counts_by_hand(arch, params):
    assert count_params(SPACE.build(arch)) == params


def test_residual_only_where_shapes_match():
    model = SPACE.build(SPACE.from_blocks(["k3_e3"] * N))
    residual = [layer.residual for layer in model.layers]
    first_of_stage = {1, 5, 9, 13, 17, 21}  # layer 0 keeps 16 channels and stride 1
    assert residual == [i not in first_of_stage for i in range(N)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter, on purpose
def test_onnx_export(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = SPACE.build(arch_of("k3_e1_g2", "k5_e6", "k3_e3")).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # logits of order 1 (not 1e-4): a meaningful comparison
        model.classifier.weight.normal_(generator=gen)
    x = torch.randn(1, 3, 32, 32, generator=gen)
    path = tmp_path / "fbnet.onnx"
    torch.onnx.export(model, x, str(path), dynamo=False, opset_version=17)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {"Conv", "Transpose", "Reshape", "Gemm"} <= {n.op_type for n in proto.graph.node}
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_every_table_row_parses():
    from hwnas.search.tables import bundled_dir, read_frame

    frame, _ = read_frame(bundled_dir() / "fbnet", "architectures")
    rows = frame.astype({c: str for c in frame.columns if c.startswith("layer")}).to_dict("records")
    archs = [SPACE.from_blocks([r[f"layer{i:02d}"] for i in range(N)]) for r in rows]
    assert len(archs) == len(rows) > 0
    assert all(SPACE.parse(str(a)) == a for a in archs)
