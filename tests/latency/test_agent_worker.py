"""The agent worker's session policy, on real ONNX Runtime sessions in this process: it holds what
a local profile holds while timing (the reference's session and the model's), builds each model's
session with at most one other alive, and keeps the reference across jobs."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import asdict

from onnx import TensorProto, helper

from hwnas.latency.agent import worker
from hwnas.latency.session import RuntimeConfig

FAST = {"warmup_runs": 2, "min_runs": 10, "max_runs": 20, "chunk": 5, "target_precision": 0.05}


def _relu(width: int) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _job(model: str, reference: str | None) -> dict:
    return {"config": asdict(RuntimeConfig()), "protocol": FAST, "backend": "ort-cpu",
            "model": model, "reference": reference}


def test_sessions_are_evicted_before_a_build_and_the_reference_stays(monkeypatch):
    models = {w: _relu(w) for w in (16, 32, 64, 128)}
    sha = {w: hashlib.sha256(b).hexdigest() for w, b in models.items()}
    ref = 16
    sessions: OrderedDict = OrderedDict()
    built: list[tuple[int, int]] = []  # (width, sessions alive when its session was built)
    real = worker.model_timer

    def spy(data, backend, config):
        built.append((next(w for w, b in models.items() if b == data), len(sessions)))
        return real(data, backend, config)

    monkeypatch.setattr(worker, "model_timer", spy)
    for w in (32, 64, 128):
        blobs = {sha[w]: models[w], sha[ref]: models[ref]}
        out = worker._run(_job(sha[w], sha[ref]), blobs, sessions)
        assert out["status"] == "ok" and out["reference"]["median_ms"] > 0
        assert blobs == {}  # the received bytes are not held while timing
        assert len(sessions) == worker._SESSIONS
        assert sessions and next(reversed(sessions))[0] == sha[w]  # the model, then...
        assert sha[ref] in {k[0] for k in sessions}  # ...the reference, kept
    # the reference alone (a drift record) reuses its session
    worker._run(_job(sha[ref], None), {}, sessions)
    # the reference was built once, first; each model once, with one session (the reference)
    # alive, never two
    assert built == [(16, 0), (32, 1), (64, 1), (128, 1)]

