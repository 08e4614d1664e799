"""The agent's wire protocol v1: what a request may hold, checked once, and what a reply holds.

A request is parsed into frozen values here and nowhere else; anything unexpected (an unknown key,
a wrong type, a value out of range) is a :class:`WireError` carrying the HTTP status, and the
server answers ``{"error": "<one line>"}``. The fields of ``config`` and ``protocol`` are exactly
those of :class:`~hwnas.latency.session.RuntimeConfig` and
:class:`~hwnas.latency.protocol.MeasurementProtocol`, so host and agent share one definition.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from hwnas.search.errors import HwnasError

from ..protocol import Measurement, MeasurementProtocol
from ..session import RuntimeConfig

__all__ = [
    "PROTOCOL_VERSION",
    "BACKENDS",
    "MAX_JSON_BYTES",
    "MEMORY_RUNTIMES",
    "AgentError",
    "WireError",
    "MeasureRequest",
    "check_sha256",
    "parse_json",
    "parse_measure",
    "measurement_json",
    "environment_digest",
]

PROTOCOL_VERSION = 1
#: backend name -> what it runs on (the same names as hwnas.latency's runtimes)
BACKENDS = {"ort-cpu": "ONNX Runtime, CPUExecutionProvider",
            "ort-cuda": "ONNX Runtime, CUDAExecutionProvider (I/O bound on the GPU)",
            "ov-cpu": "OpenVINO, CPU device, f32 inference precision"}
#: a measure request is a few hundred bytes; anything bigger is not one
MAX_JSON_BYTES = 64 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MEASURE_KEYS = {"model", "reference", "backend", "config", "protocol", "timeout_s", "memory"}
#: backend -> the runtime the agent's memory probe loads its model in (none: not measured)
MEMORY_RUNTIMES = {"ort-cpu": "onnxruntime", "ov-cpu": "openvino"}


class AgentError(HwnasError):
    """A device agent that cannot start or serve as asked; the message says what to change."""


class WireError(AgentError):
    """A request the agent refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MeasureRequest:
    """A checked ``POST /v1/measure`` body."""

    model: str
    reference: str | None
    backend: str
    config: RuntimeConfig
    protocol: MeasurementProtocol
    timeout_s: float
    memory: bool = False


def check_sha256(text: str, what: str = "model") -> str:
    """``text`` when it is a lower-case hex sha256, else a 400 :class:`WireError`."""
    if not isinstance(text, str) or not _SHA256.match(text):
        raise WireError(400, f"{what} must be a sha256: 64 lower-case hex digits")
    return text


def parse_json(body: bytes) -> Any:
    """The JSON value of a UTF-8 body (400 when it is not one; NaN and Infinity refused)."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as e:
        raise WireError(400, f"the body is not UTF-8 JSON ({e})") from None


def _typed(value: Any, expected: type, where: str) -> Any:
    # bool is an int in Python; on the wire it is not, and an int is a fine float
    ok = (isinstance(value, bool) if expected is bool else
          isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
          if expected is float else
          isinstance(value, int) and not isinstance(value, bool) if expected is int else
          isinstance(value, expected))
    if not ok:
        raise WireError(400, f"{where} must be {expected.__name__}, got {type(value).__name__}")
    return float(value) if expected is float else value


def _dataclass_from(cls: type, value: Any, where: str) -> Any:
    """``cls(**value)`` with every key known and every value of its field's type (defaults fill
    missing keys); the class's own checks (``__post_init__``) become a 400."""
    if not isinstance(value, dict):
        raise WireError(400, f"{where} must be an object")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise WireError(400, f"unknown key(s) in {where}: {', '.join(unknown)}; valid: "
                             f"{', '.join(fields)}")
    kwargs = {k: _typed(v, type(fields[k].default), f"{where}.{k}") for k, v in value.items()}
    try:
        return cls(**kwargs)
    except HwnasError as e:
        raise WireError(400, f"{where}: {e}") from None


def parse_measure(body: bytes, max_timeout_s: float) -> MeasureRequest:
    """Check a ``POST /v1/measure`` body (see README.md); ``timeout_s`` is capped at
    ``max_timeout_s``.

    Raises:
        WireError: 400 naming the first thing wrong.
    """
    obj = parse_json(body)
    if not isinstance(obj, dict):
        raise WireError(400, "the body must be a JSON object")
    unknown = sorted(set(obj) - _MEASURE_KEYS)
    if unknown:
        raise WireError(400, f"unknown key(s): {', '.join(unknown)}; valid: "
                             f"{', '.join(sorted(_MEASURE_KEYS))}")
    if "model" not in obj:
        raise WireError(400, "missing key: model (the sha256 of a model PUT before)")
    backend = obj.get("backend", "ort-cpu")
    if backend not in BACKENDS:
        raise WireError(400, f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    reference = obj.get("reference")
    timeout = _typed(obj.get("timeout_s", 120.0), float, "timeout_s")
    if timeout <= 0:
        raise WireError(400, f"timeout_s must be > 0, got {timeout}")
    return MeasureRequest(
        model=check_sha256(obj["model"]),
        reference=None if reference is None else check_sha256(reference, "reference"),
        backend=backend,
        config=_dataclass_from(RuntimeConfig, obj.get("config", {}), "config"),
        protocol=_dataclass_from(MeasurementProtocol, obj.get("protocol", {}), "protocol"),
        timeout_s=min(timeout, max_timeout_s),
        memory=_typed(obj.get("memory", False), bool, "memory"),
    )


def measurement_json(m: Measurement) -> dict[str, Any]:
    """A :class:`Measurement` as JSON: its statistics, and ``samples`` (the raw ms)."""
    out = m.row()
    out["samples"] = [float(x) for x in m.samples_ms]
    return out


def environment_digest(environment: dict[str, Any]) -> str:
    """sha256 of the environment as canonical JSON (sorted keys, no spaces): a host can check a
    reply came from the environment ``/v1/info`` described."""
    text = json.dumps(environment, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
