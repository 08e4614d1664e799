"""The public tables bundled in the package: intact, within budget, and rebuilt byte for byte by
the committed build from the public CSV/JSON-lines form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.search.tables import bundled_dir, load_tables, read_frame, reference_indices
from hwnas.search.tables.bundle import MANIFEST, SOURCES, build_bundle, verify_bundle

BUDGET_BYTES = 6_000_000


def test_bundle_is_intact_and_within_budget():
    folder = bundled_dir()
    assert verify_bundle(folder) == []
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["files"]) == set(SOURCES)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total <= BUDGET_BYTES, f"{total:,} bytes of package data"
    readme = (folder / "README.md").read_text()
    for name, info in manifest["files"].items():  # every file named with its licence and checksum
        assert name in readme and info["sha256"] in readme and "MIT" in info["licence"]


def test_verify_bundle_finds_a_changed_file(tmp_path):
    copy = tmp_path / "data"
    build_bundle(_public_form(tmp_path / "csv"), copy)
    assert verify_bundle(copy) == []
    with (copy / "nb201" / "latency_ms.parquet").open("r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    (problem,) = verify_bundle(copy)
    assert "latency_ms.parquet: checksum differs" in problem


def _public_form(root: Path) -> Path:
    """Write the bundled tables back out in the public form (CSV, JSON lines)."""
    src = bundled_dir()
    for space in ("nb201", "fbnet", "ofa"):
        (root / space).mkdir(parents=True)
        arch, _ = read_frame(src / space, "architectures")
        arch = arch[[c for c in arch.columns if not c.startswith("gene_")]]
        if space == "ofa":
            with (root / space / "architectures.jsonl").open("w") as f:
                for row in arch.itertuples(index=False):
                    f.write(json.dumps({"index": int(row.index), "ks": [int(v) for v in row.ks],
                                        "e": [int(v) for v in row.e],
                                        "d": [int(v) for v in row.d], "r": int(row.r)}) + "\n")
        else:
            arch.to_csv(root / space / "architectures.csv", index=False)
        lat, _ = read_frame(src / space, "latency_ms")
        lat.to_csv(root / space / "latency_ms.csv", index=False)
    (root / "help_reference_architectures.json").write_text(
        (src / "help_reference_architectures.json").read_text())
    return root


def test_build_is_deterministic_and_reproduces_the_shipped_files(tmp_path):
    # the shipped bundle, written back out as CSV and rebuilt, gives the same bytes (checksums)
    built = build_bundle(_public_form(tmp_path / "csv"), tmp_path / "data")
    shipped = json.loads((bundled_dir() / MANIFEST).read_text())
    assert {k: v["sha256"] for k, v in built["files"].items()} == {
        k: v["sha256"] for k, v in shipped["files"].items()}


def test_csv_and_bundled_copies_load_the_same_values(tmp_path):
    csv_root = _public_form(tmp_path / "csv")
    for space in ("nb201", "fbnet", "ofa"):
        a, b = load_tables(space), load_tables(space, csv_root)
        assert a.origin == "bundled" and b.origin == f"--data {csv_root}"
        assert a.archs == b.archs
        pd.testing.assert_frame_equal(a.latency, b.latency)
        pd.testing.assert_frame_equal(a.accuracy, b.accuracy)
    nb = load_tables("nb201")
    assert nb.get_latency("raspi4", [0])[0] == pytest.approx(10.48, abs=0.01)
    assert len(nb.devices) == 24 and len(nb.tasks) == 8
    assert np.isfinite(nb.get_accuracy("cifar10_test_200ep", np.arange(len(nb)))).all()


def test_reference_sets_and_a_malformed_one(tmp_path):
    assert reference_indices("nb201")[:3] == [11982, 431, 55]
    assert len(reference_indices("fbnet")) == len(reference_indices("ofa")) == 10
    root = _public_form(tmp_path / "csv")
    (root / "help_reference_architectures.json").write_text('{"nb201": [1, "x"]}')
    from hwnas.search import TableError

    with pytest.raises(TableError, match="non-negative integer indices"):
        reference_indices("nb201", root)
    (root / "help_reference_architectures.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(TableError, match="cannot read"):
        reference_indices("nb201", root)


def test_time_loading_measures_both_copies(tmp_path):
    from hwnas.search.tables.timing import time_loading

    result = time_loading(_public_form(tmp_path / "csv"), repeats=1)
    assert result["csv"]["median_s"] > 0 and result["bundled"]["median_s"] > 0
    assert result["ratio"] == result["csv"]["median_s"] / result["bundled"]["median_s"]
    with pytest.raises(ValueError, match="repeats"):
        time_loading(tmp_path, repeats=0)
