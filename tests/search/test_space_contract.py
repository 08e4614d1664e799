"""The contract every registered space keeps, checked on each (sampled by hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hwnas.search import Architecture, ArchitectureError, Space, get_space, list_spaces

SPACES = list_spaces()


def archs(space: Space) -> st.SearchStrategy[Architecture]:
    return st.tuples(*(st.integers(0, len(g) - 1) for g in space.genes)).map(space.from_genes)


def space_and_arch() -> st.SearchStrategy[tuple[Space, Architecture]]:
    return st.sampled_from(SPACES).map(get_space).flatmap(
        lambda s: st.tuples(st.just(s), archs(s)))


@given(space_and_arch())
def test_parse_format_round_trip(pair):
    space, arch = pair
    text = space.format(arch)
    assert space.parse(text) == arch
    assert space.parse(f"  {text}\n") == arch
    assert str(arch) == text
    assert hash(space.parse(text)) == hash(arch)


@given(space_and_arch(), st.integers(0, 2**32 - 1))
def test_mutate_changes_one_choice_and_stays_in_space(pair, seed):
    space, arch = pair
    child = space.mutate(arch, seed)
    assert child != arch
    assert space.from_genes(child.genes) == child  # valid and canonical
    assert child == space.mutate(arch, seed)  # same seed, same child


@given(space_and_arch(), st.integers(0, 2**32 - 1))
def test_crossover_stays_in_space_and_inherits(pair, seed):
    space, a = pair
    b = space.sample(seed)
    child = space.crossover(a, b, seed)
    assert space.from_genes(child.genes) == child
    for group in space.groups:  # every group comes whole from one parent
        genes = [child.genes[i] for i in group]
        assert genes in ([a.genes[i] for i in group], [b.genes[i] for i in group])


@given(space_and_arch())
def test_encode_fixed_length_and_deterministic(pair):
    space, arch = pair
    x = space.encode(arch)
    assert x.shape == (space.encoding_length,)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, space.encode(arch))
    assert set(np.unique(x)) <= {0.0, 1.0}
    # one hot per active gene
    assert x.sum() == space.active(arch.genes).sum()


@pytest.mark.parametrize("name", SPACES)
def test_encode_batch_matches_single(name):
    space = get_space(name)
    batch = space.sample_batch(20, rng=3)
    np.testing.assert_array_equal(space.encode_batch(batch),
                                  np.stack([space.encode(a) for a in batch]))


@pytest.mark.parametrize("name", SPACES)
def test_neighbours_are_one_edit_away(name):
    space = get_space(name)
    arch = space.sample(5)
    nbrs = space.neighbours(arch)
    assert nbrs and arch not in nbrs and len(set(nbrs)) == len(nbrs)
    for n in nbrs[:50]:
        assert space.from_genes(n.genes) == n
        # one edit: one choice active in both changed (a depth change also (de)activates layers)
        both = space.active(arch.genes) & space.active(n.genes)
        assert ((np.array(n.genes) != np.array(arch.genes)) & both).sum() == 1


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_seeded(name):
    space = get_space(name)
    assert space.sample(11) == space.sample(11)
    assert space.sample_batch(5, 11) == space.sample_batch(5, np.random.default_rng(11))
    assert len(set(space.sample_batch(30, 1))) > 25


@pytest.mark.parametrize("name", SPACES)
def test_graph_is_a_dag_from_input_to_output(name):
    space = get_space(name)
    g = space.graph(space.sample(2))
    assert g.ops[0] == "input" and g.ops[-1] == "output"
    assert np.all(np.tril(g.adjacency) == 0)  # topological order
    assert g.adjacency[:, 0].sum() == 0 and g.adjacency[-1].sum() == 0


@pytest.mark.parametrize("name", SPACES)
def test_build_runs_forward(name):
    space = get_space(name)
    torch.manual_seed(0)
    for arch in space.sample_batch(2, rng=7):
        model = space.build(arch, num_classes=7).eval()
        c, h, w = space.input_shape(arch)
        if name == "ofa":  # keep the test fast: the network is fully convolutional
            h = w = 128
        with torch.no_grad():
            out = model(torch.randn(2, c, h, w))
        assert out.shape == (2, 7)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", SPACES)
def test_bad_values_are_rejected_with_the_gene_named(name):
    space = get_space(name)
    with pytest.raises(ArchitectureError, match="gene 0"):
        space.from_genes([len(space.genes[0])] + [0] * (len(space.genes) - 1))
    with pytest.raises(ArchitectureError, match="expected"):
        space.from_genes([0])
    with pytest.raises(ArchitectureError):
        space.parse("")
    other = next(s for s in SPACES if s != name)
    with pytest.raises(ArchitectureError, match="not an architecture"):
        space.format(get_space(other).sample(0))
