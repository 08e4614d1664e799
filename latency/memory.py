"""Peak memory, file size and weight bytes of an ONNX model under ONNX Runtime or OpenVINO,
torch-free.

Only the standard library, NumPy and ONNX Runtime (OpenVINO for its runtime) are imported (and
nothing else of hwnas's when the file runs as a script), so that a small agent on a target device
can reuse this module as it is: ``python memory.py MODEL.onnx`` prints one JSON measurement.

**Peak memory** is the growth of the process's peak resident set (``VmHWM``) over ONNX Runtime
session creation plus one inference, on Linux. The peak is reset first (``echo 5 >
/proc/self/clear_refs``, the kernel's documented reset of the high-water mark; see
Documentation/filesystems/proc.rst) so that ``VmHWM`` afterwards is the highest resident set
since the reset. Measuring in a long-lived process would under-count: memory freed by earlier
sessions is reused by malloc without raising the resident set. So each measurement runs in a
child *forked* from a small server that has imported ONNX Runtime and NumPy and never created a
session — every child starts from the same pristine heap, and the fork costs milliseconds where a
fresh interpreter costs half a second. The figure includes what the runtime itself touches for
this model (weights, arena, graph-optimisation copies, and the runtime's code pages its kernels
touch first: a forked child maps shared library pages afresh, some 20 MiB here); ONNX
Runtime's one-off environment set-up is done in the server, before the fork, so it is not counted.
OpenVINO (``runtime="openvino"``) is measured the same way over ``compile_model`` on the CPU device
plus one inference; the server loads OpenVINO and its CPU plugin library on the first such
request (without compiling anything, so that no thread pool exists when it forks), so the plugin's
loading is not counted either, while the pages its kernels first touch are.

**Weight bytes** are counted from the model's initializers (element count x element size of
their ONNX data type), read with a minimal protobuf reader instead of the ``onnx`` package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script (the server, an agent): import nothing of hwnas
    _Base: type[Exception] = Exception
else:
    try:
        from hwnas.search.errors import HwnasError as _Base
    except ImportError:  # copied onto a device without hwnas
        _Base = Exception

__all__ = [
    "METHOD",
    "METHOD_OPENVINO",
    "RUNTIMES",
    "MemoryMeasurement",
    "MemoryMeasurementError",
    "MemoryProbe",
    "initializer_bytes",
    "measure_in_process",
    "memory_supported",
    "onnx_file_bytes",
    "session_memory",
]

#: how peak memory is measured, written into every table's metadata
METHOD = ("peak resident-set growth (VmHWM after a reset through /proc/self/clear_refs, minus "
          "VmRSS before) of a process forked from a torch-free ONNX Runtime server whose runtime "
          "environment is already set up, over session creation (CPU execution provider) + one "
          "inference; includes runtime code pages the model's kernels first touch; MiB")

#: the same for OpenVINO
METHOD_OPENVINO = ("peak resident-set growth (VmHWM after a reset through /proc/self/clear_refs, "
                   "minus VmRSS before) of a process forked from a torch-free server that has "
                   "loaded OpenVINO and its CPU plugin, over compile_model (CPU device) + one "
                   "inference; includes code pages the model's kernels first touch; MiB")
#: the runtimes a measurement can use
RUNTIMES = ("onnxruntime", "openvino")

_CLEAR_REFS = "/proc/self/clear_refs"
#: a one-node ONNX model (Identity, opset 17), serialised; warms up ONNX Runtime in the server
_IDENTITY_MODEL = ("080812003a3a0a100a017812017922084964656e7469747912047761726d5a0f0a0178120a0a08"
                   "080112040a020801620f0a0179120a0a08080112040a02080142040a001011")
_STATUS = "/proc/self/status"


class MemoryMeasurementError(_Base):  # type: ignore[misc,valid-type]
    """Peak memory cannot be measured here, or the model did not load or run."""


@dataclass(frozen=True)
class MemoryMeasurement:
    """One peak-memory measurement.

    Attributes:
        peak_bytes: peak resident-set growth over session creation + first inference.
        baseline_bytes: resident set before (the server's, shared copy-on-write).
        onnxruntime: the version of the runtime that loaded the model (ONNX Runtime's, or
            OpenVINO's when ``runtime`` is ``openvino``).
        method: :data:`METHOD` or :data:`METHOD_OPENVINO`.
        runtime: ``onnxruntime`` or ``openvino``.
    """

    peak_bytes: int
    baseline_bytes: int
    onnxruntime: str
    method: str = METHOD
    runtime: str = "onnxruntime"

    @property
    def peak_mb(self) -> float:
        """``peak_bytes`` in MiB."""
        return self.peak_bytes / 2**20

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_supported() -> tuple[bool, str]:
    """``(True, "")`` where the peak can be reset and read (Linux >= 4.0), else why not."""
    if not sys.platform.startswith("linux"):
        return False, f"peak-RSS measurement needs Linux /proc (this is {sys.platform})"
    if not os.access(_CLEAR_REFS, os.W_OK) or not os.access(_STATUS, os.R_OK):
        return False, f"{_CLEAR_REFS} is not writable or {_STATUS} not readable"
    if not hasattr(os, "fork"):
        return False, "os.fork is not available"
    return True, ""


def _status_kb(field: str) -> int:
    with open(_STATUS) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise MemoryMeasurementError(f"{_STATUS} has no {field} line")


def _feeds(sess: Any) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]  # symbolic -> 1
        kind = inp.type[len("tensor("):-1]
        dtype = {"float": np.float32, "double": np.float64, "float16": np.float16,
                 "int64": np.int64, "int32": np.int32, "uint8": np.uint8,
                 "int8": np.int8, "bool": np.bool_}.get(kind, np.float32)
        feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def measure_in_process(path: str, intra_op_threads: int = 1, graph_optimization: str = "all",
                       runtime: str = "onnxruntime") -> dict[str, Any]:
    """Measure in *this* process (it should be fresh or freshly forked): reset the peak, load
    ``path`` in ``runtime`` (a CPU session, or OpenVINO's CPU device) and run it once, return
    :class:`MemoryMeasurement`'s fields.

    Raises:
        MemoryMeasurementError: the peak cannot be reset here, or an unknown runtime.
    """
    ok, why = memory_supported()
    if not ok:
        raise MemoryMeasurementError(why)
    if runtime not in RUNTIMES:
        raise MemoryMeasurementError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    if runtime == "openvino":
        return _measure_openvino(path, intra_op_threads)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[graph_optimization]
    with open(_CLEAR_REFS, "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = _status_kb("VmRSS")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    sess.run(None, _feeds(sess))
    peak = _status_kb("VmHWM")
    return {"peak_bytes": max(0, peak - before) * 1024, "baseline_bytes": before * 1024,
            "onnxruntime": ort.__version__, "method": METHOD, "runtime": "onnxruntime"}


def _openvino_core() -> Any:
    """OpenVINO's ``Core`` with the CPU plugin library loaded (reading a property loads it and
    compiles nothing: no inference thread pool exists yet, so forking stays safe)."""
    import openvino as ov

    core = ov.Core()
    core.get_property("CPU", "FULL_DEVICE_NAME")
    return core


_OV_CORE: Any = None


def _measure_openvino(path: str, threads: int) -> dict[str, Any]:
    import numpy as np
    import openvino as ov

    global _OV_CORE
    if _OV_CORE is None:
        _OV_CORE = _openvino_core()
    with open(_CLEAR_REFS, "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    compiled = _OV_CORE.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    rng = np.random.default_rng(0)
    feeds = {}
    for i, port in enumerate(compiled.inputs):
        shape = [d if d > 0 else 1 for d in
                 (dim.get_length() if dim.is_static else 1 for dim in port.get_partial_shape())]
        feeds[i] = rng.standard_normal(shape).astype(port.get_element_type().to_dtype())
    request.infer(feeds)
    peak = _status_kb("VmHWM")
    return {"peak_bytes": max(0, peak - before) * 1024, "baseline_bytes": before * 1024,
            "onnxruntime": ov.get_version(), "method": METHOD_OPENVINO, "runtime": "openvino"}


def _serve() -> None:
    """The fork server: one JSON request per stdin line, one JSON answer per stdout line."""
    global _OV_CORE
    import gc

    import numpy as np  # loaded once, before any fork, so that children do not grow by it
    import onnxruntime as ort

    # ONNX Runtime's process-wide environment (logging, allocator registry, kernel registries)
    # is built by the first session: build it here, once, on a one-node model, so that every
    # child measures the model's own memory rather than that fixed set-up cost
    warm = ort.InferenceSession(bytes.fromhex(_IDENTITY_MODEL), providers=["CPUExecutionProvider"])
    warm.run(None, {"x": np.zeros(1, np.float32)})
    del warm
    gc.collect()
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if request.get("runtime") == "openvino" and _OV_CORE is None:
            try:  # load OpenVINO here, once, before the fork
                _OV_CORE = _openvino_core()
            except Exception as e:  # noqa: BLE001  (not installed, no CPU plugin)
                out.write(json.dumps({"error": f"OpenVINO cannot load here: "
                                               f"{type(e).__name__}: {e}"}) + "\n")
                out.flush()
                continue
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: measure, answer through the pipe, leave without cleanup
            os.close(r)
            try:
                answer = measure_in_process(**request)
            except BaseException as e:  # noqa: BLE001  (every failure is an answer)
                answer = {"error": f"{type(e).__name__}: {e}"}
            os.write(w, json.dumps(answer).encode())
            os._exit(0)
        os.close(w)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        text = b"".join(chunks).decode() or json.dumps(
            {"error": f"the measuring child died (wait status {status})"})
        out.write(text.replace("\n", " ") + "\n")
        out.flush()


class MemoryProbe:
    """A torch-free fork server measuring peak memory, started on first use.

    Example:
        >>> with MemoryProbe() as probe:  # doctest: +SKIP
        ...     probe.measure("model.onnx").peak_mb
    """

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        ok, why = memory_supported()
        if not ok:
            raise MemoryMeasurementError(f"peak memory cannot be measured here: {why}")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        # -S -E would also skip site-packages; the server needs the environment's onnxruntime
        return subprocess.Popen([self.python, os.path.abspath(__file__), "--serve"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)

    def measure(self, path: str | os.PathLike[str], intra_op_threads: int = 1,
                graph_optimization: str = "all", runtime: str = "onnxruntime"
                ) -> MemoryMeasurement:
        """Peak memory of a CPU session on ``path`` (created and run once), in ONNX Runtime or
        OpenVINO (``runtime``).

        Raises:
            MemoryMeasurementError: not measurable here, the file is missing, or the model does
                not load or run.
        """
        if not Path(path).is_file():
            raise MemoryMeasurementError(f"no ONNX model at {path}")
        if runtime not in RUNTIMES:
            raise MemoryMeasurementError(f"unknown runtime {runtime!r}; valid: "
                                         f"{', '.join(RUNTIMES)}")
        request = json.dumps({"path": str(path), "intra_op_threads": int(intra_op_threads),
                              "graph_optimization": graph_optimization, "runtime": runtime})
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            assert self._proc.stdin is not None and self._proc.stdout is not None
            try:
                self._proc.stdin.write(request + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except (BrokenPipeError, OSError) as e:
                line = json.dumps({"error": f"the memory server stopped ({e})"})
            if not line:
                self.close()
                line = json.dumps({"error": "the memory server stopped"})
        answer = json.loads(line)
        if "error" in answer:
            raise MemoryMeasurementError(f"peak memory of {path}: {answer['error']}")
        return MemoryMeasurement(**answer)

    def close(self) -> None:
        """Stop the server (it also stops by itself when this process exits)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> MemoryProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def session_memory(path: str | os.PathLike[str], intra_op_threads: int = 1,
                   graph_optimization: str = "all", runtime: str = "onnxruntime"
                   ) -> MemoryMeasurement:
    """One measurement with a probe of its own (:class:`MemoryProbe` for many)."""
    with MemoryProbe() as probe:
        return probe.measure(path, intra_op_threads, graph_optimization, runtime)


def onnx_file_bytes(path: str | os.PathLike[str]) -> int:
    """Size of the ONNX file on disk, in bytes."""
    return os.path.getsize(path)


# ONNX TensorProto.DataType -> bytes per element (onnx.proto3); 4-bit types count one half
_ITEM_BYTES: dict[int, float] = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8,
                                 12: 4, 13: 8, 14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1,
                                 21: 0.5, 22: 0.5, 23: 0.5}


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _fields(buf: memoryview):  # noqa: ANN202  (yields (field, wire type, value))
    """Protocol-buffer wire format (developers.google.com/protocol-buffers/docs/encoding)."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise MemoryMeasurementError(f"not an ONNX model (protobuf wire type {wire})")
        yield field, wire, value


def _tensor_bytes(tensor: memoryview) -> float:
    dims: list[int] = []
    dtype = 0
    for field, wire, value in _fields(tensor):
        if field == 1 and wire == 0:  # dims, unpacked
            dims.append(int(value))
        elif field == 1 and wire == 2:  # dims, packed
            j = 0
            while j < len(value):
                d, j = _varint(value, j)
                dims.append(d)
        elif field == 2 and wire == 0:  # data_type
            dtype = int(value)
    count = 1
    for d in dims:
        count *= d
    return count * _ITEM_BYTES.get(dtype, 0)


def initializer_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of the model's weights: every graph initializer's element count times the size of
    its data type (the stored precision: 4 per FP32 parameter, 1 per INT8 weight).

    Raises:
        MemoryMeasurementError: the file is not an ONNX model.
    """
    data = memoryview(Path(path).read_bytes())
    total = 0.0
    try:
        for field, wire, graph in _fields(data):
            if field == 7 and wire == 2:  # ModelProto.graph
                for gfield, gwire, tensor in _fields(graph):
                    if gfield == 5 and gwire == 2:  # GraphProto.initializer
                        total += _tensor_bytes(tensor)
    except IndexError:
        raise MemoryMeasurementError(f"{path}: truncated or not an ONNX model") from None
    return int(round(total))


def _main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        _serve()
        return 0
    if len(argv) not in (1, 2) or argv[1:2] and argv[1] not in RUNTIMES:
        sys.stderr.write("usage: memory.py MODEL.onnx [onnxruntime|openvino]  (prints peak "
                         "memory, file and weight bytes as JSON)\n")
        return 2
    try:
        with MemoryProbe() as probe:
            m = probe.measure(argv[0], runtime=argv[1] if len(argv) == 2 else "onnxruntime")
        sys.stdout.write(json.dumps({**m.to_dict(), "onnx_bytes": onnx_file_bytes(argv[0]),
                                     "weight_bytes": initializer_bytes(argv[0])}) + "\n")
    except (MemoryMeasurementError, OSError) as e:
        sys.stderr.write(f"memory.py: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
