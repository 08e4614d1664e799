"""The device agent against a real uvicorn server on loopback, started with ``hwnas agent serve``
in a subprocess where importing torch, pandas, scipy, sklearn or matplotlib raises (a
``sitecustomize`` on PYTHONPATH installs the blocker in the server and in its spawned worker).

One server serves the whole module (a start costs seconds on a loaded machine); the tests that
kill its worker (hang, crash) run last in file order and check it keeps serving.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwnas.bench.cli import main
from hwnas.latency.agent.wire import environment_digest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token-for-tests"
BLOCKED = ("torch", "pandas", "scipy", "sklearn", "matplotlib")
NB201_ARCH = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
              "skip_connect~2|")
FAST = {"warmup_runs": 2, "min_runs": 10, "max_runs": 20, "chunk": 5, "target_precision": 0.05}
#: the slow model under a protocol that runs it at least 400 times: tens of seconds on a quiet
#: host (one call is about 0.13 s here), so a watchdog of seconds always fires first
LONG = {"warmup_runs": 2, "min_runs": 400, "max_runs": 400, "chunk": 5, "target_precision": 0.05}

_BLOCKER = f'''
import os, sys
_BLOCKED = {BLOCKED!r}
class _Refuse:
    """Refuse the heavy packages; log each attempt, so one swallowed by a try is still seen."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _BLOCKED:
            with open(os.environ["HWNAS_TEST_BLOCK_LOG"], "a") as f:
                f.write(f"{{os.getpid()}} {{name}}\\n")
            raise ImportError(f"{{name}} is blocked: the agent must not import it")
        return None
sys.meta_path.insert(0, _Refuse())
'''


# ---------------------------------------------------------------------- models
def _model(nodes, inputs, outputs, initializers=()) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _relu_model(width: int = 256) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])
    return _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])


def _slow_model(n: int = 1024, depth: int = 12) -> bytes:
    """Valid and tiny on disk, but each inference is ``depth`` n x n MatMuls (about 25 GFLOP at
    n=1024, depth=12): far longer per call than the tests' timeouts allow."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])
    nodes, prev = [], "x"
    for i in range(depth):
        nodes += [helper.make_node("MatMul", [prev, prev], [f"m{i}"]),
                  helper.make_node("Tanh", [f"m{i}"], [f"t{i}" if i < depth - 1 else "y"])]
        prev = f"t{i}"
    return _model(nodes, [x], [y])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("agent")
    (folder / "sitecustomize.py").write_text(_BLOCKER)
    token_file = folder / "token"
    token_file.write_text(TOKEN + "\n")
    log = folder / "blocked.log"
    env = {**os.environ, "PYTHONPATH": str(folder), "HWNAS_TEST_BLOCK_LOG": str(log)}
    env.pop("HWNAS_AGENT_TOKEN", None)
    stderr = (folder / "stderr.log").open("w")  # a file: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hwnas.bench.cli import main; main()", "agent", "serve",
         "--port", "0", "--token-file", str(token_file), "--device-name", "test-board",
         "--max-model-mb", "8"],
        stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    line = proc.stdout.readline()  # printed once the worker is ready
    if "serving" not in line:
        proc.kill()
        pytest.fail(f"agent did not start: {line!r} {(folder / 'stderr.log').read_text()[-2000:]}")
    url = line.split(" on ", 1)[1].split()[0]
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=120)
    try:
        yield {"url": url, "client": client, "proc": proc, "log": log}
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()


def _put(client: httpx.Client, data: bytes) -> httpx.Response:
    return client.put(f"/v1/models/{_sha(data)}", content=data,
                      headers={"Content-Type": "application/octet-stream"})


def _worker_pid(server_pid: int) -> int:
    """The server's spawned worker: its child running multiprocessing's spawn_main."""
    for children in Path(f"/proc/{server_pid}/task").glob("*/children"):
        for pid in children.read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                return int(pid)
    raise AssertionError("no worker process found")


def _wait_busy(client: httpx.Client, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.get("/v1/info").json()["busy"]:
            return
        time.sleep(0.05)
    raise AssertionError("the agent never became busy")


# ---------------------------------------------------------------------- measuring
def test_measures_an_exported_nb201_model_without_torch(agent, tmp_path):
    from hwnas.latency import export_onnx
    from hwnas.search import get_space

    space = get_space("nb201")
    data = export_onnx(space, space.parse(NB201_ARCH), batch=1, cache_dir=tmp_path).read_bytes()
    ref = _relu_model()
    client = agent["client"]
    info = client.get("/v1/info").json()
    assert info["protocol"] == 1 and info["device"] == "test-board"
    assert "ort-cpu" in info["backends"]
    assert info["limits"]["max_model_bytes"] == 8 * 2**20
    assert info["environment"]["cores"] >= 1 and info["environment"]["onnxruntime"]

    up = _put(client, data)
    assert up.status_code == 201 and up.json() == {"sha256": _sha(data), "bytes": len(data)}
    assert _put(client, ref).status_code == 201
    r = client.post("/v1/measure", json={
        "model": _sha(data), "reference": _sha(ref), "backend": "ort-cpu",
        "config": {"batch": 1, "intra_op_threads": 1, "inter_op_threads": 1,
                   "graph_optimization": "all", "device_id": 0},
        "protocol": FAST, "timeout_s": 120.0})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok", body
    m, rm = body["measurement"], body["reference"]
    assert FAST["min_runs"] <= m["n"] <= FAST["max_runs"] and len(m["samples"]) == m["n"]
    assert rm["n"] == m["n"]  # paired: chunk by chunk
    assert m["p10_ms"] <= m["median_ms"] <= m["p90_ms"]
    assert m["median_ms"] == pytest.approx(float(np.median(m["samples"])))
    assert m["ratio"] == pytest.approx(m["median_ms"] / rm["median_ms"])
    assert body["device"] == "test-board"
    assert body["environment_digest"] == environment_digest(info["environment"])
    assert client.get("/v1/info").json()["cached_models"] >= 2
    # neither the server nor its worker tried to import a blocked package
    assert not agent["log"].exists() or agent["log"].read_text() == ""


def test_ov_cpu_when_openvino_is_there(agent):
    client = agent["client"]
    if "ov-cpu" not in client.get("/v1/info").json()["backends"]:
        pytest.skip("openvino is not installed here")
    data = _relu_model(64)
    assert _put(client, data).status_code == 201
    body = client.post("/v1/measure", json={"model": _sha(data), "backend": "ov-cpu",
                                            "protocol": FAST}).json()
    assert body["status"] == "ok", body
    assert body["reference"] is None and body["measurement"]["ratio"] is None


# ---------------------------------------------------------------------- refusals
def test_no_token_or_a_wrong_one_is_401_and_nothing_runs(agent):
    url, client = agent["url"], agent["client"]
    data = _relu_model(32)
    before = client.get("/v1/info").json()["cached_models"]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        for method, path, kw in (("GET", "/v1/info", {}),
                                 ("PUT", f"/v1/models/{_sha(data)}", {"content": data}),
                                 ("POST", "/v1/measure", {"json": {"model": _sha(data)}}),
                                 ("GET", "/nowhere", {})):
            r = httpx.request(method, url + path, headers=headers, **kw)
            assert r.status_code == 401, (headers, path)
            assert "token" in r.json()["error"]
    assert client.get("/v1/info").json()["cached_models"] == before  # the PUTs stored nothing


def test_upload_refusals(agent):
    client = agent["client"]
    data = _relu_model(16)
    assert client.put("/v1/models/NOT-A-SHA", content=data).status_code == 400
    assert client.put(f"/v1/models/{_sha(data).upper()}", content=data).status_code == 400
    r = client.put(f"/v1/models/{_sha(b'other')}", content=data)
    assert r.status_code == 400 and "sha256" in r.json()["error"]
    junk = b"\x00\xff" * 100 + b"import os; os.system('boom')"
    r = _put(client, junk)
    assert r.status_code == 400 and "ONNX" in r.json()["error"]
    # parses as protobuf, but the checker refuses it (an operator that does not exist)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    bad = helper.make_model(helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])],
                                              "g", [x], [x]),
                            opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    r = _put(client, bad)
    assert r.status_code == 400 and "invalid" in r.json()["error"]
    big = bytes(8 * 2**20 + 1)  # over --max-model-mb 8
    assert _put(client, big).status_code == 413  # from Content-Length
    r = client.put(f"/v1/models/{_sha(big)}", content=iter([big[:2**22], big[2**22:]]))
    assert r.status_code == 413  # chunked: no Content-Length, caught while streaming
    assert r.json()["error"]


@pytest.mark.parametrize("body, status, says", [
    (b"{not json", 400, "JSON"),
    (b"[1, 2]", 400, "object"),
    (b'{"model": "' + b"a" * 64 + b'", "extra": 1}', 400, "unknown key"),
    (json.dumps({"model": "0" * 64, "protocol": {"min_runs": 5, "bogus": 1}}).encode(), 400,
     "unknown key"),
    (json.dumps({"model": "0" * 64, "protocol": {"min_runs": "5"}}).encode(), 400, "int"),
    (json.dumps({"model": "0" * 64, "protocol": {"paired_reference": 1}}).encode(), 400, "bool"),
    (json.dumps({"model": "0" * 64, "config": {"batch": True}}).encode(), 400, "int"),
    (json.dumps({"model": "0" * 64, "protocol": {"min_runs": 50, "max_runs": 5}}).encode(), 400,
     "min_runs"),
    (json.dumps({"model": "0" * 64, "config": {"graph_optimization": "x"}}).encode(), 400,
     "valid"),
    (json.dumps({"model": "0" * 64, "backend": "tpu"}).encode(), 400, "backend"),
    (json.dumps({"model": "0" * 64, "timeout_s": -1}).encode(), 400, "timeout_s"),
    (b'{"model": "0000", "timeout_s": NaN}', 400, "JSON"),
    (json.dumps({"model": "xyz"}).encode(), 400, "sha256"),
    (json.dumps({"backend": "ort-cpu"}).encode(), 400, "model"),
    (json.dumps({"model": "0" * 64}).encode(), 404, "unknown model"),
    (json.dumps({"model": "0" * 64, "pad": "x" * 70000}).encode(), 413, "cap"),
])
def test_measure_refusals(agent, body, status, says):
    r = agent["client"].post("/v1/measure", content=body,
                             headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


# ---------------------------------------------------------------------- watchdog
def test_busy_then_a_hang_is_killed_and_the_agent_keeps_serving(agent):
    client = agent["client"]
    slow, quick = _slow_model(), _relu_model(8)
    assert _put(client, slow).status_code == 201 and _put(client, quick).status_code == 201
    result: dict = {}
    hang = threading.Thread(target=lambda: result.update(client.post("/v1/measure", json={
        "model": _sha(slow), "protocol": LONG, "timeout_s": 3.0}).json()))
    hang.start()
    _wait_busy(client)
    r = client.post("/v1/measure", json={"model": _sha(quick), "protocol": FAST})
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json() == {"error": "busy"}
    hang.join(120)
    assert result["status"] == "failed" and "watchdog" in result["error"], result
    assert result["seconds"] >= 3.0
    # a fresh worker measures the next request
    again = client.post("/v1/measure", json={"model": _sha(quick), "protocol": FAST}).json()
    assert again["status"] == "ok", again


def test_a_crashed_worker_is_reported_and_replaced(agent):
    client = agent["client"]
    slow, quick = _slow_model(), _relu_model(8)
    assert _put(client, slow).status_code == 201 and _put(client, quick).status_code == 201
    client.post("/v1/measure", json={"model": _sha(quick), "protocol": FAST})  # a live worker
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(client.post("/v1/measure", json={
        "model": _sha(slow), "protocol": LONG, "timeout_s": 100.0}).json()))
    run.start()
    _wait_busy(client)
    time.sleep(0.3)  # inside the runtime's MatMul loop by now
    os.kill(_worker_pid(agent["proc"].pid), signal.SIGSEGV)  # what a crashing kernel does
    run.join(120)
    assert result["status"] == "failed", result
    assert "crashed (exit code -11)" in result["error"]
    again = client.post("/v1/measure", json={"model": _sha(quick), "protocol": FAST}).json()
    assert again["status"] == "ok", again
    assert not agent["log"].exists() or agent["log"].read_text() == ""


# ---------------------------------------------------------------------- the command line
def test_serve_refuses_bad_input_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HWNAS_AGENT_TOKEN", raising=False)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    token = tmp_path / "token"
    token.write_text("t\n")
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    port = str(held.getsockname()[1])
    try:
        for argv, says in ((["--token-file", str(tmp_path / "missing")], "cannot be read"),
                           (["--token-file", str(empty)], "is empty"),
                           ([], "no token"),
                           (["--token-file", str(token), "--port", port], "cannot listen"),
                           (["--token-file", str(token), "--port", "70000"], "70000")):
            assert main(["agent", "serve", *argv]) == 2, argv
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and says in err, (argv, err)
    finally:
        held.close()


def test_token_from_the_environment_and_the_header_check():
    from hwnas.latency.agent.security import TOKEN_ENV, read_token, token_ok

    assert read_token(None, {TOKEN_ENV: "  tok  \n"}) == "tok"
    assert token_ok("Bearer tok", "tok") and token_ok("bearer  tok", "tok")
    for header in (None, "", "tok", "Bearer", "Bearer tok2", "Basic tok", "Bearer to"):
        assert not token_ok(header, "tok"), header


def test_a_token_variable_naming_a_file_is_refused(tmp_path):
    from hwnas.latency.agent.security import TOKEN_ENV, read_token
    from hwnas.latency.agent.wire import AgentError

    path = tmp_path / "token"
    path.write_text("s3cret\n")
    with pytest.raises(AgentError, match=f"{TOKEN_ENV} names the file .*--token-file"):
        read_token(None, {TOKEN_ENV: str(path)})


# ---------------------------------------------------------------------- packaging
_AGENT_FILES = ["latency/agent/__init__.py", "latency/agent/server.py", "latency/agent/worker.py",
                "latency/agent/wire.py", "latency/agent/security.py", "latency/protocol.py",
                "latency/session.py", "latency/environment.py", "search/errors.py",
                "search/lazy.py", "bench/cli/agent.py", "bench/cli/__init__.py",
                "bench/cli/app.py", "bench/cli/boundary.py"]
#: imported inside a try, for a backend that is there only when installed
_OPTIONAL = {"openvino"}


def test_agent_extra_lists_what_the_agent_imports():
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["agent"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip() for req in extra}
    imported: set[str] = set()
    for rel in _AGENT_FILES:
        for node in ast.walk(ast.parse((REPO / rel).read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"hwnas", "__future__"} - _OPTIONAL
    assert third_party == names
    assert not third_party & set(BLOCKED)


def test_the_agent_times_with_the_local_profile_s_code():
    """Reused, not copied: the worker's protocol, session and timer are the local runtime's."""
    from hwnas.latency import protocol, runtime, session
    from hwnas.latency.agent import worker

    assert worker.measure is protocol.measure and worker.measure_pair is protocol.measure_pair
    assert worker.make_session is runtime.make_session is session.make_session
    assert worker.wall_timer is runtime._wall_timer
    assert worker.RuntimeConfig is runtime.RuntimeConfig


@pytest.mark.parametrize("package", ["hwnas.search", "hwnas.latency", "hwnas.bench",
                                     "hwnas.latency.agent"])
def test_lazy_packages_resolve_every_public_name(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018
