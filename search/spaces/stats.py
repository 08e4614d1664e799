"""Size and compute of a built network: trainable parameters and multiply-accumulates.

FLOPs in hwnas follow the convention of NAS-Bench-201, FBNet and once-for-all: *multiply-accumulate
operations* of one forward pass on one input, in millions. They are counted by PyTorch's own
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products; it counts a
multiply-add as 2 FLOPs, which we halve). Element-wise work (BN, activations, pooling, additions)
is not counted, as in those papers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .space import Architecture, Space

if TYPE_CHECKING:  # torch is imported when a network is measured, not with hwnas.search
    import torch

__all__ = ["ModelStats", "count_params", "count_macs", "model_stats"]


@dataclass(frozen=True, slots=True)
class ModelStats:
    """Trainable parameters and millions of multiply-accumulates of one network."""

    params: int
    flops_m: float


def count_params(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: torch.nn.Module, input_shape: tuple[int, ...]) -> float:
    """Multiply-accumulates (not millions) of one forward pass on a batch of one."""
    model.eval()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((1, *input_shape))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 2.0


def model_stats(space: Space, arch: Architecture, num_classes: int | None = None) -> ModelStats:
    """Build ``arch``'s reference network and count its parameters and MACs.

    Example:
        >>> from hwnas.search import get_space
        >>> s = get_space("nb201")
        >>> model_stats(s, s.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        ...                         "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")).params
        1531546
    """
    model = space.build(arch, num_classes=num_classes)
    return ModelStats(count_params(model), count_macs(model, space.input_shape(arch)) / 1e6)
