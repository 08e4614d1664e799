"""The NB201 weight-sharing supernet: paths, extraction, SPOS training, BN recalibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.search import HwnasError, get_space
from hwnas.search.errors import ArchitectureError
from hwnas.search.oneshot.supernet import (
    NB201Supernet,
    SupernetAccuracy,
    evaluate_subnet,
    recalibrate_bn,
    train_supernet,
)

SPACE = get_space("nb201")


def _data(n: int = 96, seed: int = 0, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(10, (n,), generator=g)
    # a learnable signal: the label shifts the image's mean
    x = torch.randn(n, channels, 8, 8, generator=g) + 0.5 * y.view(-1, 1, 1, 1).float()
    return x, y


def _net(channels: int = 1, seed: int = 0) -> NB201Supernet:
    torch.manual_seed(seed)
    return NB201Supernet(num_classes=10, c=4, cells_per_stage=1, in_channels=channels)


def test_forward_shape_for_sampled_paths():
    net = _net()
    x, _ = _data(6)
    for arch in SPACE.sample_batch(5, rng=0):
        assert net(x, arch).shape == (6, 10)
    assert net(x, weights=torch.full((6, 5), 0.2)).shape == (6, 10)


def test_forward_rejects_bad_paths():
    net = _net()
    x, _ = _data(2)
    with pytest.raises(ArchitectureError):
        net(x, (0, 1, 2))
    with pytest.raises(ArchitectureError):
        net(x)


@pytest.mark.parametrize("train", [True, False])
def test_extracted_network_equals_the_path(train):
    net = _net(channels=3)
    x, _ = _data(5, channels=3)
    for arch in SPACE.sample_batch(3, rng=1):
        sub = net.extract(arch)
        net.train(train)
        sub.train(train)
        torch.testing.assert_close(net(x, arch), sub(x), rtol=0, atol=0)


def test_extract_with_grey_stem():
    net = _net(channels=1).eval()
    arch = SPACE.sample(2)
    x, _ = _data(4)
    torch.testing.assert_close(net(x, arch), net.extract(arch).eval()(x))


def test_different_paths_give_different_outputs():
    net = _net().eval()
    x, _ = _data(4)
    a = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                    "nor_conv_3x3~1|nor_conv_3x3~2|")
    b = SPACE.parse("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|"
                    "skip_connect~1|avg_pool_3x3~2|")
    assert not torch.allclose(net(x, a), net(x, b))


@pytest.mark.parametrize("genes", [(0,) * 6, (3, 3, 3, 0, 0, 0)])
def test_no_path_to_the_output_ignores_the_input(genes):
    # all edges into node 3 are `none`: every cell outputs zeros, whatever the image
    net = _net().eval()
    x, _ = _data(4)
    out = net(x, genes)
    torch.testing.assert_close(out, out[:1].expand_as(out))


def test_training_reduces_loss_and_is_deterministic():
    x, y = _data(128)
    logs, states = [], []
    for _ in range(2):
        net = _net()
        logs.append(train_supernet(net, (x, y), epochs=6, seed=3, batch_size=32, lr=0.05))
        states.append(net.state_dict())
    assert logs[0].epoch_loss[-1] < logs[0].epoch_loss[0]
    assert logs[0].epoch_loss == logs[1].epoch_loss
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k])


def test_train_rejects_zero_epochs():
    with pytest.raises(HwnasError):
        train_supernet(_net(), _data(8), epochs=0)


def test_bn_recalibration_changes_statistics():
    net = _net()
    x, y = _data(64)
    train_supernet(net, (x, y), epochs=1, seed=0, batch_size=32)
    arch = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                       "nor_conv_3x3~1|nor_conv_3x3~2|")
    bn = net.cells[0].edges[0][3][2]  # edge 1<-0, nor_conv_3x3, its BatchNorm
    before = bn.running_mean.clone()
    recalibrate_bn(net, arch, (x * 3 + 1, y), batches=2, batch_size=32)
    assert not torch.allclose(before, bn.running_mean)
    assert bn.momentum == 0.1  # restored


def test_evaluate_subnet_and_metric_source():
    net = _net()
    x, y = _data(96)
    train_supernet(net, (x, y), epochs=2, seed=0, batch_size=32)
    archs = SPACE.sample_batch(3, rng=4)
    acc = evaluate_subnet(net, archs[0], (x[:32], y[:32]), (x, y), bn_batches=2, batch_size=32)
    assert 0.0 <= acc <= 100.0
    source = SupernetAccuracy(net, (x[:32], y[:32]), (x, y), bn_batches=2, batch_size=32)
    values = source.evaluate(archs)
    assert values.shape == (3,) and np.all((values >= 0) & (values <= 100))
    assert values[0] == pytest.approx(acc)
    # same seed, same calibration batches: the score does not depend on what ran before
    np.testing.assert_array_equal(values, source.evaluate(archs[::-1])[::-1])
    assert source.name == "accuracy:supernet" and source.unit == "%"


def test_dataset_input():
    from torch.utils.data import TensorDataset

    x, y = _data(32)
    net = _net()
    log = train_supernet(net, TensorDataset(x, y), epochs=1, seed=0, batch_size=16)
    assert log.steps == 2
