"""Live evaluation: datasets, the seeded training recipe, early stopping, weight inheritance, and
the metric source that trains each architecture a search asks for."""

from .accuracy import LiveAccuracy
from .datasets import from_datasets, get_dataset
from .training import EarlyStopping, PeerStopping, TrainRecipe

__all__ = ["EarlyStopping", "LiveAccuracy", "PeerStopping", "TrainRecipe", "from_datasets",
           "get_dataset"]
