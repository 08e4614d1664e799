"""Learning to learn: ``hwnas.meta`` (MAML, Meta-SGD, LSTM meta-learner, meta-learned predictors)."""

__all__: list[str] = []
