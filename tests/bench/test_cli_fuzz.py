"""Every command fed generated bad values, names and files (hypothesis).

Each example runs one command in a fresh folder holding the bad input files and an output that
already exists; the property: exit code 2, exactly one line on stderr (``hwnas: error: ...``), no
traceback, nothing written anywhere in the folder (results, cache and ``--out`` included), and the
existing output byte-for-byte unchanged.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwnas.bench.cli import main
from hwnas.search import list_strategies

SENTINEL = b"index,latency_ms\n0,1.5\n"  # an output written before: must survive every failure

# ----------------------------------------------------------------------------- bad values
bad_ints = st.one_of(
    st.integers(max_value=-1).map(str),
    st.floats().map(repr),  # "3.0" as much as "1.5": integers are written as integers
    st.integers(min_value=10**31, max_value=10**40).map(str),
    st.sampled_from(["", "x", "1.5", "1e3", "0x10", "--", "nan", " ", "½", "1_000"]),
)
#: values that are wrong for a seed (a seed must be 0..2**32-1)
bad_seeds = st.one_of(bad_ints, st.integers(min_value=2**32, max_value=2**70).map(str))
#: wrong for a budget (>= 1)
bad_budgets = st.one_of(bad_ints, st.just("0"))
bad_names = st.one_of(
    st.sampled_from(["../../x", "", "/abs", ".", "..", "a/b", "-x", ".hidden", "x" * 65,
                     "a\x00b", "a b", "ü", "..\\x"]),
    st.text(min_size=1, max_size=12).filter(
        lambda t: not (t[:1].isascii() and t[:1].isalnum()) or any(c in t for c in "/ \\:*")),
)
bad_spaces = st.text(max_size=10).filter(lambda t: t not in ("nb201", "fbnet", "ofa"))
bad_meta_steps = st.one_of(bad_ints, st.integers(min_value=100_001, max_value=10**9).map(str))

# file contents that no reader may accept (the names they are written under vary by command)
bad_csv_bytes = st.one_of(
    st.binary(min_size=1, max_size=64).map(lambda b: b"\x00" + b),           # binary
    st.just("index,latency_ms,accuracy\n1,2.0,caf\xe9\n".encode("latin-1")),  # Latin-1
    st.just(b"\xff\xfe\x00i\x00n"),                                          # UTF-16 BOM
    st.just(b""),                                                            # empty
    st.just(b"index,latency_ms,accuracy\n"),                                 # no rows
    st.sampled_from([  # rows that break the one reader's rules
        b"index,latency_ms,accuracy\n99999999,1.0,50\n",
        b"index,latency_ms,accuracy\n1.5,1.0,50\n",
        b"index,latency_ms,accuracy\n-3,1.0,50\n",
        b"arch,latency_ms,accuracy\nnot-an-arch,1.0,50\n",
        b"index,latency_ms,accuracy\n1,-50,-50\n",
        b"index,latency_ms,accuracy\n1,nan,5000\n",
        b"index,latency_ms,accuracy\n1,inf,inf\n",
        b"index,latency_ms,accuracy\n1,1.0,50\n1,1.0,50\n",
        b"\"unterminated\n1,2\n",
    ]),
)
bad_index_files = st.one_of(
    st.binary(min_size=1, max_size=64).map(lambda b: b"\x00" + b),
    st.just("caf\xe9\n1\n".encode("latin-1")),
    st.sampled_from([b"1.5\n2\n", b"3\n-1\n", b"3\n20000\n", b"1e3\n", b"", b"\n\n",
                     b"index\n1.5\n", b"idx\n3\n", b"3\nx\n", b"0x10\n",
                     b"99999999999999999999999999\n"]),
)
bad_toml = st.one_of(
    st.binary(min_size=1, max_size=64).map(lambda b: b"\x00" + b),
    st.just("[compare]\nname = \"caf\xe9\"\n".encode("latin-1")),
    st.sampled_from([b"[compare\n", b"seeds = [1,\n", b"= 3\n", b"[[problems]]\nname = \n",
                     b"a = 1\na = 2\n"]),
)


# ----------------------------------------------------------------------------- the harness
def _snapshot(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = Path(p).read_bytes()
    return out


@contextmanager
def _sandbox():
    """A fresh folder with results/, cache/ and an existing output, set as the environment."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub in ("results", "cache", "out"):
            (root / sub).mkdir()
        (root / "out" / "kept.csv").write_bytes(SENTINEL)
        saved = {k: os.environ.get(k) for k in ("HWNAS_RESULTS", "HWNAS_CACHE")}
        os.environ["HWNAS_RESULTS"] = str(root / "results")
        os.environ["HWNAS_CACHE"] = str(root / "cache")
        try:
            yield root
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _check(capsys, root: Path, argv: list[str]) -> None:
    before = _snapshot(root)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, code, err)
    assert err.count("\n") == 1 and err.startswith("hwnas: error: "), (argv, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert _snapshot(root) == before, argv  # nothing written, the existing output unchanged


def _file(root: Path, name: str, data: bytes) -> str:
    path = root / name
    path.write_bytes(data)
    return str(path)


# ----------------------------------------------------------------------------- one case per kind
def _case(kind: str, draw, root: Path) -> list[str]:  # noqa: C901 - a table of cases
    out_dir, out_file = str(root / "out"), str(root / "out" / "kept.csv")
    if kind == "spaces":
        return ["spaces", draw(st.sampled_from(["--jsn", "--json=1", "extra"]))]
    if kind == "devices":
        return ["devices", "--space", draw(bad_spaces)]
    if kind == "query":
        return draw(st.sampled_from([
            ["query", "--space", "nb201", "--index", draw(bad_ints)],
            ["query", "--space", draw(bad_spaces), "--index", "1"],
            ["query", "--space", "nb201", "--arch", draw(st.text(max_size=20))],
            ["query", "--space", "nb201", "--index", "3", "--device",
             _file(root, "dev.csv", draw(bad_csv_bytes))],
        ]))
    if kind == "profile":
        base = ["profile", "--space", "nb201", "--out", out_dir, "--max-runs", "5"]
        return draw(st.sampled_from([
            ["profile", "--space", "nb201", "--name", draw(bad_names), "--archs", "1"],
            [*base, "--name", "b", "--seed", draw(bad_seeds)],
            [*base, "--name", "b", "--archs", draw(bad_budgets)],
            [*base, "--name", "b", "--indices", _file(root, "idx.txt", draw(bad_index_files))],
            ["profile", "--space", "nb201", "--name", "b", "--out", out_file],
            ["profile", "--space", "nb201", "--name", "b", "--out", out_file + "/sub"],
            ["profile", "--space", "nb201", "--name", "b", "--out", "/proc/hwnas-x"],
        ]))
    if kind == "search":
        base = ["search", "--space", "nb201", "--device", "dev_a", "--strategy", "random"]
        return draw(st.sampled_from([
            [*base, "--budget", draw(bad_budgets), "--out", out_dir],
            [*base, "--budget", "3", "--seed", draw(bad_seeds), "--out", out_dir],
            [*base[:-4], "--device", _file(root, "dev.csv", draw(bad_csv_bytes)),
             "--budget", "3", "--out", out_dir],
            [*base, "--budget", "3", "--out", out_file],
            [*base, "--budget", "3", "--out", "/proc/hwnas-x"],
            [*base[:-2], "--strategy", draw(st.text(max_size=8).filter(
                lambda t: t not in list_strategies())), "--budget", "3"],
        ]))
    if kind == "compare":
        return draw(st.sampled_from([
            ["compare", _file(root, "grid.toml", draw(bad_toml)), "--out", out_dir],
            ["compare", str(root / "missing.toml")],
            ["compare", str(root / "out")],
            ["compare", _file(root, "ok.toml", b"[compare]\n"), "--out", out_file],
            ["compare", _file(root, "ok.toml", b"[compare]\n"), "--workers",
             draw(bad_budgets)],
        ]))
    if kind == "report":
        undecodable = st.one_of(st.binary(min_size=1, max_size=64).map(lambda b: b"\x00" + b),
                                st.just("arch,accuracy\ncaf\xe9,1\n".encode("latin-1")))
        scatter = _file(root, "p.csv", draw(undecodable))
        return draw(st.sampled_from([
            ["report", str(root / "nowhere"), "--out", out_dir],
            ["report", out_file, "--out", out_dir],
            ["report", str(root / "results"), "--out", out_file],
            ["report", str(root / "results"), "--out", out_dir, "--scatter", scatter, scatter],
            ["report", str(root / "results"), "--out", out_dir, "--predictions", scatter],
            ["report", str(root / "results"), "--out", out_dir, "--predictions",
             str(root / "none.json")],
        ]))
    if kind == "latency plan":
        base = ["latency", "plan", "--space", "nb201"]
        return draw(st.sampled_from([
            [*base, "--shots", draw(bad_budgets), "--out", out_file],
            [*base, "--seed", draw(bad_seeds), "--out", out_file],
            [*base, "--out", out_dir],
            [*base, "--out", out_file + "/x.csv"],
            [*base, "--out", "/proc/hwnas-x.csv"],
            ["latency", "plan", "--space", draw(bad_spaces), "--out", out_file],
        ]))
    if kind in ("latency adapt", "accuracy adapt"):
        group = kind.split()[0]
        shots = _file(root, "shots.csv", draw(bad_csv_bytes))
        good = _file(root, "good.csv", b"index,latency_ms,accuracy\n" + b"".join(
            f"{i},{1 + i / 10},{50 + i}\n".encode() for i in range(12)))
        base = [group, "adapt", "--space", "nb201"]
        return draw(st.sampled_from([
            [*base, "--shots", shots, "--out", out_file, "--meta-steps", "1"],
            [*base, "--shots", good, "--out", out_file, "--meta-steps", draw(bad_meta_steps)],
            [*base, "--shots", good, "--out", out_file, "--seed", draw(bad_seeds)],
            [*base, "--shots", good, "--out", good],
            [*base, "--shots", str(root / "none.csv"), "--out", out_file],
        ]))
    if kind == "quickstart":
        return draw(st.sampled_from([
            ["quickstart", "--archs", draw(st.one_of(bad_ints, st.just("100000"),
                                                     st.just("19"))), "--out", out_dir],
            ["quickstart", "--budget", draw(bad_budgets), "--out", out_dir],
            ["quickstart", "--seeds", draw(bad_budgets), "--out", out_dir],
            ["quickstart", "--out", out_file],
        ]))
    raise AssertionError(kind)


KINDS = ["spaces", "devices", "query", "profile", "search", "compare", "report", "latency plan",
         "latency adapt", "accuracy adapt", "quickstart"]


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_every_command_refuses_bad_input_in_one_line(capsys, synthetic_data, kind, data):
    with _sandbox() as root:
        argv = _case(kind, data.draw, root)
        _check(capsys, root, ["--data", str(synthetic_data), *argv])
