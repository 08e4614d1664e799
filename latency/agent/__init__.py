"""The device agent: ``hwnas agent serve`` measures ONNX models for a remote host.

It runs on the target device (a Raspberry Pi, a Jetson, a lab server) with only onnxruntime, numpy,
onnx, starlette, uvicorn and click installed (no torch), and measures with hwnas's own protocol
(:mod:`hwnas.latency.protocol`) in a watchdogged worker process. The wire protocol is in
``README.md`` next to this file.
"""

from __future__ import annotations

from hwnas.search.lazy import lazy_exports

__all__ = [
    "BACKENDS",
    "PROTOCOL_VERSION",
    "TOKEN_ENV",
    "Agent",
    "AgentError",
    "AgentSettings",
    "WireError",
    "Worker",
    "available_backends",
    "bind_socket",
    "create_app",
    "read_token",
    "serve",
]

# lazy (PEP 562): the measuring worker process imports .worker alone, not the server's onnx,
# starlette and uvicorn (onnx alone takes seconds to import on a small board)
_EXPORTS = {
    ".security": ("TOKEN_ENV", "read_token"),
    ".server": ("Agent", "AgentSettings", "bind_socket", "create_app", "serve"),
    ".wire": ("BACKENDS", "PROTOCOL_VERSION", "AgentError", "WireError"),
    ".worker": ("Worker", "available_backends"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
