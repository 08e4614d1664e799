"""The agent's HTTP server: a Starlette app served by uvicorn (wire protocol v1, README.md).

Starlette and uvicorn are small, pure Python, maintained, and install from wheels on aarch64 and
armv7 without torch; they parse HTTP so the agent does not have to. The app answers four routes
(``GET /v1/info``, ``PUT /v1/models/{sha256}``, ``POST /v1/measure``), checks the token before
anything else, reads bodies with a cap, and hands measurements to the watchdogged
:class:`~hwnas.latency.agent.worker.Worker` on a thread, so the event loop stays free to answer
``503 busy`` while one runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import socket
import tempfile
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..memory import MemoryMeasurementError, MemoryProbe
from .security import check_onnx, read_capped, token_ok
from .wire import (
    MAX_JSON_BYTES,
    MEMORY_RUNTIMES,
    PROTOCOL_VERSION,
    AgentError,
    WireError,
    check_sha256,
    environment_digest,
    parse_measure,
)
from .worker import Worker

__all__ = ["AgentSettings", "ModelCache", "Agent", "create_app", "bind_socket", "serve"]


@dataclass(frozen=True)
class AgentSettings:
    """How an agent serves.

    Attributes:
        token: the shared secret every request must carry as ``Authorization: Bearer <token>``.
        device: the name it reports (``--device-name``, default the hostname).
        max_model_bytes: cap on one uploaded model (413 above it).
        cache_bytes: bound of the in-memory model cache (least recently used models leave first).
        max_timeout_s: cap on a request's ``timeout_s``.
    """

    token: str
    device: str
    max_model_bytes: int = 64 * 2**20
    cache_bytes: int = 256 * 2**20
    max_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not self.token:
            raise AgentError("the agent's token is empty")
        if self.max_model_bytes < 1 or self.cache_bytes < self.max_model_bytes:
            raise AgentError("need 1 <= max_model_bytes <= cache_bytes")
        if self.max_timeout_s <= 0:
            raise AgentError("max_timeout_s must be > 0")


class ModelCache:
    """Uploaded models by sha256, in memory, bounded by bytes (least recently used leave first)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._models: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()  # PUTs run on the loop, measurements read on a thread

    def put(self, sha: str, data: bytes) -> None:
        with self._lock:
            self._models[sha] = data
            self._models.move_to_end(sha)
            while sum(map(len, self._models.values())) > self.max_bytes:
                self._models.popitem(last=False)

    def get(self, sha: str) -> bytes | None:
        with self._lock:
            data = self._models.get(sha)
            if data is not None:
                self._models.move_to_end(sha)
            return data

    def __len__(self) -> int:
        return len(self._models)


def _hwnas_version() -> str:
    try:
        return version("hwnas")
    except PackageNotFoundError:
        return "0+unknown"


class Agent:
    """The agent's state: settings, model cache, worker and the one-measurement-at-a-time flag."""

    def __init__(self, settings: AgentSettings, worker: Worker | None = None):
        self.settings = settings
        self.cache = ModelCache(settings.cache_bytes)
        self.worker = worker or Worker()
        self.busy = False
        self._probe: MemoryProbe | None = None
        self._scratch: str | None = None

    def memory(self, sha: str, data: bytes, backend: str, threads: int,
               graph_optimization: str) -> dict[str, Any]:
        """Peak memory of the model (:mod:`hwnas.latency.memory`: a fork of a torch-free server
        per measurement) as the wire's ``memory`` object, or ``{"error": ...}``.

        The probe reads a file: the model is written into the agent's own private folder under
        the sha256 the agent computed from the bytes (never a name from the request), and
        removed afterwards.
        """
        runtime = MEMORY_RUNTIMES.get(backend)
        if runtime is None:
            return {"error": f"peak memory is not measured for backend {backend} (a process's "
                             f"resident set does not show GPU memory); measured for "
                             f"{', '.join(MEMORY_RUNTIMES)}"}
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="hwnas-agent-")  # mode 0700
        path = os.path.join(self._scratch, hashlib.sha256(data).hexdigest() + ".onnx")
        try:
            with open(path, "wb") as f:
                f.write(data)
            if self._probe is None:
                self._probe = MemoryProbe()
            m = self._probe.measure(path, threads, graph_optimization, runtime)
            return {**m.to_dict(), "memory_mb": m.peak_mb}
        except (MemoryMeasurementError, OSError) as e:
            return {"error": " ".join(str(e).replace(path, f"model {sha[:12]}").split())}
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)

    def stop(self) -> None:
        """Stop the worker and the memory probe; remove the scratch folder."""
        self.worker.stop()
        if self._probe is not None:
            self._probe.close()
            self._probe = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def start(self) -> dict[str, Any]:
        """Start the worker; its ready message says the environment and the backends."""
        return self.worker.start()

    @property
    def ready(self) -> dict[str, Any]:
        """The worker's ready message, from its first start: the environment and backends do not
        change when a killed worker is replaced, and /v1/info must not wait for a restart."""
        return self.worker.info_ if self.worker.info_ is not None else self.start()

    @property
    def environment(self) -> dict[str, Any]:
        return self.ready["environment"]

    def info(self) -> dict[str, Any]:
        ready = self.ready
        return {"protocol": PROTOCOL_VERSION, "agent": _hwnas_version(),
                "device": self.settings.device, "backends": ready["backends"],
                "environment": ready["environment"], "busy": self.busy,
                "cached_models": len(self.cache),
                "limits": {"max_model_bytes": self.settings.max_model_bytes,
                           "max_timeout_s": self.settings.max_timeout_s}}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status_code=status, headers=headers)


class _TokenGate:
    """ASGI middleware: a request without the token gets 401 before routing or reading its body."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if not token_ok(auth, self.token):
                response = _error(401, "missing or wrong token: send Authorization: Bearer "
                                       "<token>", {"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(agent: Agent) -> Starlette:
    """The Starlette app of ``agent`` (wire protocol v1)."""
    settings = agent.settings

    async def info(request: Request) -> JSONResponse:
        return JSONResponse(await run_in_threadpool(agent.info))

    async def put_model(request: Request) -> JSONResponse:
        sha = check_sha256(request.path_params["sha"])
        data = await read_capped(request.headers.get("content-length"), request.stream(),
                                 settings.max_model_bytes, "the model")
        if hashlib.sha256(data).hexdigest() != sha:
            raise WireError(400, "the body's sha256 is not the one in the path")
        await run_in_threadpool(check_onnx, data)  # before any session ever sees it
        agent.cache.put(sha, data)
        return JSONResponse({"sha256": sha, "bytes": len(data)}, status_code=201)

    async def post_measure(request: Request) -> JSONResponse:
        body = await read_capped(request.headers.get("content-length"), request.stream(),
                                 MAX_JSON_BYTES, "the request")
        req = parse_measure(body, settings.max_timeout_s)
        models: dict[str, bytes] = {}
        for sha in (req.model, req.reference):
            if sha is None:
                continue
            data = agent.cache.get(sha)
            if data is None:
                raise WireError(404, f"unknown model {sha}; PUT it to /v1/models/{sha} first")
            models[sha] = data
        if agent.busy:  # checked and set on the event loop, with no await between: no race
            return _error(503, "busy", {"Retry-After": "1"})
        agent.busy = True
        job = {"model": req.model, "reference": req.reference, "backend": req.backend,
               "config": dataclasses.asdict(req.config), "protocol": req.protocol.to_dict()}
        try:
            backends = (await run_in_threadpool(lambda: agent.ready))["backends"]
            if req.backend not in backends:
                raise WireError(400, f"backend {req.backend} is not available on this device; "
                                     f"valid: {', '.join(backends)}")
            reply = await run_in_threadpool(agent.worker.measure, job, models, req.timeout_s)
            environment = agent.environment
            if req.memory and reply["status"] == "ok":  # a model that failed has no memory
                reply["memory"] = await run_in_threadpool(
                    agent.memory, req.model, models[req.model], req.backend,
                    req.config.intra_op_threads, req.config.graph_optimization)
        except AgentError as e:
            if isinstance(e, WireError):
                raise
            reply, environment = {"status": "failed", "error": str(e), "seconds": 0.0}, None
        finally:
            agent.busy = False
        if reply["status"] == "ok":
            reply["device"] = settings.device
            reply["environment_digest"] = environment_digest(environment)
        return JSONResponse(reply)

    async def wire_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WireError)
        return _error(exc.status, str(exc))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        agent.stop()

    async def bug(request: Request, exc: Exception) -> JSONResponse:
        # still one JSON line, as every error body; the traceback goes to uvicorn's log
        return _error(500, f"internal error in the agent: {type(exc).__name__}: {exc}"[:300])

    app = Starlette(
        routes=[Route("/v1/info", info, methods=["GET"]),
                Route("/v1/models/{sha}", put_model, methods=["PUT"]),
                Route("/v1/measure", post_measure, methods=["POST"])],
        exception_handlers={WireError: wire_error, HTTPException: http_error, Exception: bug},
        lifespan=lifespan,
    )
    app.add_middleware(_TokenGate, token=settings.token)
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: a free one), bound before the server
    starts so a busy port is one clear error rather than a log line.

    Raises:
        AgentError: the address cannot be bound (in use, not this machine's, no permission).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise AgentError(f"--host {host!r} does not resolve ({e.strerror}); valid: 127.0.0.1, "
                         "0.0.0.0 or an address of this machine") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(64)
    except OSError as e:
        sock.close()
        raise AgentError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port "
                         "or stop what holds it") from None
    sock.set_inheritable(True)
    return sock


def serve(agent: Agent, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``agent`` on the bound ``sock`` until interrupted (uvicorn handles SIGINT/SIGTERM);
    the worker is stopped on the way out."""
    import uvicorn

    config = uvicorn.Config(create_app(agent), log_level=log_level, access_log=False,
                            lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        agent.stop()
        sock.close()
