"""Learning to learn: ``hwnas.meta`` (MAML, Meta-SGD, LSTM meta-learner, meta-predictors)."""

__all__: list[str] = []
