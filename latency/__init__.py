"""Measuring and modelling device latency: ``hwnas.latency`` (ONNX Runtime, CUDA, lookup tables)."""

__all__: list[str] = []
