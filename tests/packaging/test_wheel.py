"""The wheel installs anywhere: built from the source tree, installed into a fresh virtual
environment in a temporary folder, with no HWNAS_DATA and nothing of the repository beside it,
it answers `hwnas query` and runs a short `hwnas search` from the bundled tables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # build from a copy of the files git would ship (tracked or new, not ignored), so the build
    # leaves nothing in the working tree and sees exactly what a clone has
    src = tmp_path_factory.mktemp("src")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(out), str(src)], cwd=out, env=dict(os.environ))
    (whl,) = out.glob("hwnas-*.whl")
    return whl


def test_wheel_holds_every_subpackage_and_the_tables(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("search", "latency", "meta", "bench"):
        for init in (REPO / top).rglob("__init__.py"):
            rel = init.relative_to(REPO).parent
            if "micro" in rel.parts or "scripts" in rel.parts:
                continue
            assert f"hwnas/{rel.as_posix()}/__init__.py" in names, f"{rel} is not in the wheel"
    for table in ("nb201/architectures.parquet", "nb201/latency_ms.parquet",
                  "fbnet/latency_ms.parquet", "ofa/architectures.parquet", "MANIFEST.json",
                  "README.md", "help_reference_architectures.json"):
        assert f"hwnas/search/tables/data/{table}" in names


def test_installed_wheel_runs_query_and_search_with_nothing_beside_it(wheel: Path, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=dict(os.environ))
    py = venv / "bin" / "python"
    # hwnas itself comes only from the wheel; its dependencies (torch, onnxruntime...) are seen
    # from this interpreter's site-packages through a .pth line, so the test needs no download.
    # A .pth line adds a folder but does not run the .pth files in it, so the source tree's
    # editable install stays invisible.
    _run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path,
         env=dict(os.environ))
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path, env=dict(os.environ)).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("HWNAS_DATA", "PYTHONPATH")}
    env["HWNAS_CACHE"] = str(tmp_path / "cache")
    env["HWNAS_RESULTS"] = str(work / "results")
    where = _run([str(py), "-c", "import hwnas.search.tables as t; print(t.__file__)"], work, env)
    assert where.startswith(str(venv)), where
    hwnas = str(venv / "bin" / "hwnas")
    row = json.loads(_run([hwnas, "query", "--space", "nb201", "--index", "1", "--json"], work,
                          env))
    assert row["accuracy"]["cifar10_test_200ep"] == 93.66 and row["latency_ms"]["pixel2"] > 0
    _run([hwnas, "search", "--space", "nb201", "--task", "cifar10_test_200ep", "--device", "pixel2",
          "--objectives", "accuracy,latency", "--strategy", "random", "--budget", "20",
          "--seed", "0", "--out", str(work / "run")], work, env)
    record = json.loads((work / "run" / "run.json").read_text())
    assert record["evaluations"] == 20 and (work / "run" / "front.csv").is_file()
    devices = json.loads(_run([hwnas, "devices", "--space", "fbnet", "--json"], work, env))
    assert devices and all(d["copy"] == "bundled" for d in devices)
