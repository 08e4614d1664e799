"""Image-classification datasets for live evaluation (training candidate networks for real).

The default is scikit-learn's bundled handwritten digits (Alpaydin & Kaynak, UCI "Optical
Recognition of Handwritten Digits", 1998): 1,797 grey 8x8 images of 10 classes, shipped inside
scikit-learn, so live evaluation needs no download. The split is fixed by a seed and stratified,
so every evaluation of every architecture sees the same train/validation/test images.

Any ``torch.utils.data.Dataset`` of ``(image CxHxW tensor, int label)`` pairs can be used instead
through :func:`from_datasets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from hwnas.search import HwnasError

__all__ = ["ImageSplits", "load_digits", "from_datasets", "get_dataset", "list_datasets"]


@dataclass(frozen=True)
class ImageSplits:
    """Train, validation and test sets of one image-classification task.

    ``input_shape`` is ``(channels, height, width)``; ``name`` identifies the data *and* the split
    in caches (two splits of the same data must have different names).
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    input_shape: tuple[int, int, int]
    num_classes: int

    def describe(self) -> dict:
        return {"name": self.name, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes, "train": len(self.train),
                "val": len(self.val), "test": len(self.test)}


def load_digits(seed: int = 0, val_fraction: float = 0.2,
                test_fraction: float = 0.2) -> ImageSplits:
    """scikit-learn's handwritten digits as 1x8x8 float tensors in [0, 1], split stratified.

    Pixel values (0-16 in the source) are scaled to [0, 1] and standardised with the training
    set's mean and standard deviation, so no statistic leaks from validation or test images.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise HwnasError(f"val_fraction={val_fraction}, test_fraction={test_fraction}; valid: "
                         "both in (0, 1) with a sum below 1")
    data = _sk_digits()
    x = data.images.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=y)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction),
                                  random_state=seed, stratify=y[rest])
    mean, std = x[train].mean(), x[train].std()

    def part(ix: np.ndarray) -> TensorDataset:
        images = torch.from_numpy((x[ix] - mean) / std).unsqueeze(1)
        return TensorDataset(images, torch.from_numpy(y[ix]))

    return ImageSplits(f"digits-s{seed}", part(train), part(val), part(test), (1, 8, 8), 10)


def from_datasets(name: str, train: Dataset, val: Dataset, test: Dataset,
                  num_classes: int) -> ImageSplits:
    """Wrap user datasets (e.g. a torchvision ``ImageFolder`` with a tensor transform)."""
    image, _ = train[0]
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise HwnasError(f"dataset {name!r}: items must be (CxHxW tensor, label); got "
                         f"{type(image).__name__} of shape {getattr(image, 'shape', None)}")
    return ImageSplits(name, train, val, test, tuple(image.shape), int(num_classes))


_DATASETS: dict[str, Callable[..., ImageSplits]] = {"digits": load_digits}


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def get_dataset(name: str, seed: int = 0) -> ImageSplits:
    """A bundled dataset by name (``digits``)."""
    if name not in _DATASETS:
        from hwnas.search import UnknownNameError

        raise UnknownNameError("dataset", name, list_datasets())
    return _DATASETS[name](seed=seed)
