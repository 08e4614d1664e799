"""One-shot and differentiable search on NAS-Bench-201: a weight-sharing supernet (single-path
uniform sampling) and a Gumbel-softmax search with a latency term. Import the modules directly
(``hwnas.search.oneshot.supernet``, ``hwnas.search.oneshot.differentiable``): they need torch."""

__all__: list[str] = []
