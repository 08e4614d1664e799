"""The measuring worker process and the watchdog around it.

Every measurement runs in one persistent worker process (``multiprocessing``'s *spawn* context: a
fresh interpreter, no state forked from the server's threads), which keeps its sessions warm
between requests. The server talks to it over a pipe with JSON messages and raw model bytes
(``send_bytes``/``recv_bytes``: nothing is pickled, in either direction). When a model hangs the
runtime past the request's ``timeout_s``, or crashes it (a segfault in a kernel, the OOM killer),
the watchdog kills the worker, answers ``status: failed`` with the reason, and starts a fresh one
for the next request.

Timing is hwnas's own: :func:`hwnas.latency.protocol.measure_pair` / ``measure`` over the same
:func:`hwnas.latency.session.wall_timer` and :func:`~hwnas.latency.session.make_session` that a
local profile uses, so a remote measurement and a local one run the same code.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import signal
import time
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..environment import describe_environment
from ..protocol import MeasurementProtocol, measure, measure_pair
from ..session import RuntimeConfig, Timer, make_session, wall_timer
from .wire import AgentError, measurement_json

__all__ = ["Worker", "available_backends", "worker_main", "model_timer"]

#: warm sessions a worker keeps: a profile alternates a model and its reference. Not more: with
#: four (the model, the reference and the last two models kept alive), the same 60 networks were
#: timed 6% slower through the agent than locally, against 1.5% faster with two
#: (results/benchmarks/README.md, "Through a device agent")
_SESSIONS = 2


def available_backends() -> list[str]:
    """The backends that can run here: ort-cpu always; ort-cuda with a CUDA-enabled
    onnxruntime; ov-cpu when openvino imports and sees a CPU."""
    import onnxruntime as ort

    names = ["ort-cpu"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        names.append("ort-cuda")
    try:
        import openvino as ov

        if "CPU" in ov.Core().available_devices:
            names.append("ov-cpu")
    except Exception:  # noqa: BLE001 - an optional backend that fails to load is just absent
        pass
    return names


def _feed(inputs: list[tuple[str, str, list[Any]]], batch: int) -> dict[str, np.ndarray]:
    """Float32 standard normal from ``default_rng(0)`` in each input's static shape (as the host's
    runtimes feed); a dynamic first dimension is the batch."""
    rng = np.random.default_rng(0)
    feed = {}
    for name, dtype, shape in inputs:
        if dtype not in ("tensor(float)", "f32", "float32"):
            raise AgentError(f"input {name!r} is {dtype}; the agent feeds float32 inputs only")
        dims = []
        for i, d in enumerate(shape):
            if isinstance(d, int) and d > 0:
                dims.append(d)
            elif i == 0:
                dims.append(batch)
            else:
                raise AgentError(f"input {name!r} has a dynamic dimension {i} ({d!r}); export "
                                 "the model with a static input shape")
        feed[name] = rng.standard_normal(dims, dtype=np.float32)
    return feed


def _ort_timer(data: bytes, config: RuntimeConfig, cuda: bool) -> Timer:
    provider = "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"
    sess = make_session(data, config, provider)
    feed = _feed([(i.name, i.type, list(i.shape)) for i in sess.get_inputs()], config.batch)
    if not cuda:
        return wall_timer(lambda: sess.run(None, feed))
    import onnxruntime as ort

    # inputs and outputs stay on the GPU (I/O binding), as OrtCudaRuntime does: a call times the
    # network, not host-device copies; Run synchronises the stream
    binding = sess.io_binding()
    for name, x in feed.items():
        binding.bind_ortvalue_input(
            name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", config.device_id))
    for out in sess.get_outputs():
        binding.bind_output(out.name, "cuda", config.device_id)
    return wall_timer(lambda: sess.run_with_iobinding(binding))


def _ov_timer(data: bytes, config: RuntimeConfig) -> Timer:
    import openvino as ov

    # the settings of hwnas.latency.runtime.OpenVinoCpuRuntime: one infer request, the latency
    # hint, one stream, f32 inference precision set explicitly (else bf16 may be chosen)
    core = ov.Core()
    props: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                             "INFERENCE_PRECISION_HINT": "f32"}
    if config.intra_op_threads:
        props["INFERENCE_NUM_THREADS"] = config.intra_op_threads
    compiled = core.compile_model(core.read_model(io.BytesIO(data)), "CPU", props)
    shapes = []
    for i, port in enumerate(compiled.inputs):
        pshape = port.get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in pshape]
        shapes.append((port.any_name or str(i), port.get_element_type().to_string(), dims))
    feed = _feed(shapes, config.batch)
    request = compiled.create_infer_request()
    values = list(feed.values())
    return wall_timer(lambda: request.infer(values))


def model_timer(data: bytes, backend: str, config: RuntimeConfig) -> Timer:
    """A timer (n -> per-call ms) of the serialized ONNX model ``data`` on ``backend``."""
    if backend == "ov-cpu":
        return _ov_timer(data, config)
    return _ort_timer(data, config, cuda=backend == "ort-cuda")


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:500]


def _run(job: dict[str, Any], blobs: dict[str, bytes],
         sessions: OrderedDict[tuple[str, str, str], Timer]) -> dict[str, Any]:
    config = RuntimeConfig(**job["config"])
    protocol = MeasurementProtocol(**job["protocol"])

    def timer(sha: str) -> Timer:
        key = (sha, job["backend"], json.dumps(job["config"], sort_keys=True))
        if key not in sessions:
            # evict before building, as a local profile drops its last model's session before
            # it builds the next: with a third session alive while one was built, the agent
            # timed the same networks ~1% slower than a local profile (paired ratio agent /
            # local 1.009-1.024 before, 1.004-1.006 after: "Through a device agent")
            while len(sessions) >= _SESSIONS:
                sessions.popitem(last=False)
            sessions[key] = model_timer(blobs[sha], job["backend"], config)
        sessions.move_to_end(key)
        return sessions[key]

    t0 = time.perf_counter()
    # the reference first and the received bytes freed before timing, so that the worker holds
    # what a local profile holds while it times: the reference's session and the model's (no
    # further change in timing measured from these two, beside the eviction's)
    reference = None if job["reference"] is None else timer(job["reference"])
    mine = timer(job["model"])
    blobs.clear()
    if reference is None:
        m, r = measure(mine, protocol), None
    else:
        m, r = measure_pair(mine, protocol, reference)
    return {"status": "ok", "measurement": measurement_json(m),
            "reference": None if r is None else measurement_json(r),
            "seconds": time.perf_counter() - t0}


def worker_main(conn: Connection) -> None:
    """The worker process: report readiness (environment, backends), then measure jobs until the
    pipe closes. A job is one JSON message followed by the bytes of each model it names."""
    # Ctrl-C in the agent's terminal reaches the whole process group; the server decides when
    # the worker ends (it closes the pipe or kills it), so the worker ignores it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ready = {"ready": True, "environment": describe_environment(),
                 "backends": available_backends()}
    except Exception as e:  # noqa: BLE001 - the server turns this into one line at start-up
        ready = {"ready": False, "error": _one_line(e)}
    conn.send_bytes(json.dumps(ready).encode())
    sessions: OrderedDict[tuple[str, str, str], Timer] = OrderedDict()
    while True:
        try:
            job = json.loads(conn.recv_bytes())
            blobs = {sha: conn.recv_bytes() for sha in job["send"]}
        except (EOFError, OSError):
            return
        try:
            result = _run(job, blobs, sessions)
        except Exception as e:  # noqa: BLE001 - ONNXRuntimeError, OpenVINO's errors: a reply
            sessions.clear()  # a runtime that raised may hold a broken session
            result = {"status": "failed", "error": _one_line(e)}
        conn.send_bytes(json.dumps(result).encode())


class Worker:
    """The server's handle on its worker process: start it, send it a job, kill it when stuck.

    Not thread-safe: the server runs one measurement at a time.

    Args:
        startup_timeout_s: how long a fresh worker may take to import its runtimes.
    """

    def __init__(self, startup_timeout_s: float = 120.0):
        self.startup_timeout_s = startup_timeout_s
        self._ctx = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        #: the first worker's ready message: {"environment": ..., "backends": [...]}
        self.info_: dict[str, Any] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> dict[str, Any]:
        """Start the worker (if it is not running) and return its ready message.

        Raises:
            AgentError: it did not become ready.
        """
        if self._process is not None and self._process.is_alive():
            assert self.info_ is not None
            return self.info_
        self.stop()
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=worker_main, args=(child,), daemon=True,
                                    name="hwnas-agent-worker")
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(self.startup_timeout_s):
            self.stop()
            raise AgentError(f"the measuring worker did not start within "
                             f"{self.startup_timeout_s:.0f} s")
        try:
            ready = json.loads(parent.recv_bytes())
        except (EOFError, OSError):
            code = self._reap()
            raise AgentError(f"the measuring worker died at start-up (exit code {code})") from None
        if not ready.get("ready"):
            self.stop()
            raise AgentError(f"the measuring worker cannot run here: {ready.get('error')}")
        # the first ready message stands: a replacement worker on the same machine describes the
        # same environment, and the digest a host has seen must not change with a restart
        self.info_ = self.info_ or ready
        return self.info_

    def measure(self, job: dict[str, Any], models: dict[str, bytes],
                timeout_s: float) -> dict[str, Any]:
        """Run one job; a hang past ``timeout_s`` or a crash kills the worker and is a
        ``status: failed`` reply (the next call starts a fresh worker)."""
        t0 = time.perf_counter()
        self.start()
        assert self._conn is not None
        try:
            self._conn.send_bytes(json.dumps({**job, "send": list(models)}).encode())
            for data in models.values():
                self._conn.send_bytes(data)
            # the watchdog: a runtime stuck in native code cannot be interrupted, only killed
            if not self._conn.poll(timeout_s):
                self.stop()
                return {"status": "failed", "seconds": time.perf_counter() - t0,
                        "error": f"watchdog: no result after {timeout_s:.1f} s, worker killed"}
            reply = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError, BrokenPipeError):
            code = self._reap()
            return {"status": "failed", "seconds": time.perf_counter() - t0,
                    "error": f"runtime crashed (exit code {code}), worker restarted"}
        reply["seconds"] = time.perf_counter() - t0
        return reply

    def _reap(self) -> int | None:
        """Wait for a dead worker's exit code and forget it."""
        code = None
        if self._process is not None:
            self._process.join(5)
            code = self._process.exitcode
        self.stop()
        return code

    def stop(self) -> None:
        """Kill the worker (if any) and close the pipe."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join(5)
            self._process = None
