"""Learning to learn: ``hwnas.meta``.

Gradient-based meta-learning as thin wrappers around an ``nn.Module`` (MAML, first-order MAML,
Meta-SGD), a learned LSTM optimiser, few-shot episode samplers and the MAML sinusoid benchmark.
Every wrapper has ``adapt(x_support, y_support, steps) -> Learner``; the caller owns the outer loop.
On top of them: few-shot latency transfer to a new device (HELP-style) and few-shot accuracy
transfer to a new task (dataset), two thin subclasses of one base (:mod:`.predictor_base`) whose
state is saved as plain checked arrays (:mod:`.state_io`), never unpickled.
"""

from .accuracy import AccuracyTask, AdaptedAccuracyPredictor, MetaAccuracyPredictor
from .accuracy_baselines import NearestSourcePredictor, PredictedAccuracy, ScratchAccuracyPredictor
from .accuracy_features import AccuracyFeatures
from .encoders import ArchEncoder, onehot_features, structure_features
from .errors import MetaError
from .functional import Learner, LossFn, Params, adapt_params, functional_forward, gd_steps
from .latency import AdaptedLatencyPredictor, LatencyTask, MetaLatencyPredictor
from .latency_features import LatencyFeatures, plan_shots
from .lstm import LSTMMetaLearner, preprocess_gradient
from .maml import MAML, MetaSGD
from .predictor_base import AdaptedPredictor, MetaPredictor
from .sinusoid import SinusoidDistribution, SinusoidTask, sinusoid_mlp, sinusoid_sampler
from .state_io import CacheError
from .tasks import Episode, TaskLike, TaskSampler, as_generator

__all__ = [
    # meta-learners
    "MAML",
    "MetaSGD",
    "LSTMMetaLearner",
    "Learner",
    "LossFn",
    "MetaError",
    "CacheError",
    "Params",
    "adapt_params",
    "functional_forward",
    "gd_steps",
    "preprocess_gradient",
    # tasks
    "Episode",
    "TaskLike",
    "TaskSampler",
    "as_generator",
    "SinusoidDistribution",
    "SinusoidTask",
    "sinusoid_mlp",
    "sinusoid_sampler",
    # few-shot predictors (shared base)
    "AdaptedPredictor",
    "MetaPredictor",
    # latency transfer
    "AdaptedLatencyPredictor",
    "ArchEncoder",
    "LatencyFeatures",
    "LatencyTask",
    "MetaLatencyPredictor",
    "onehot_features",
    "plan_shots",
    "structure_features",
    # accuracy transfer
    "AccuracyFeatures",
    "AccuracyTask",
    "AdaptedAccuracyPredictor",
    "MetaAccuracyPredictor",
    "NearestSourcePredictor",
    "PredictedAccuracy",
    "ScratchAccuracyPredictor",
]
