"""Build the Parquet copy of the public tables that ships in the package.

    python bench/scripts/build_tables.py --source ../shared/data
"""

from __future__ import annotations

import argparse
import sys

from hwnas.search.errors import HwnasError
from hwnas.search.tables.bundle import build_bundle
from hwnas.search.tables.files import bundled_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="folder of the public CSV tables")
    p.add_argument("--dest", default=str(bundled_dir()), help="default: the package's data folder")
    args = p.parse_args(argv)
    try:
        manifest = build_bundle(args.source, args.dest)
    except HwnasError as e:
        print(f"build_tables: error: {e}", file=sys.stderr)
        return 2
    total = sum(f["bytes"] for f in manifest["files"].values())
    for name, f in manifest["files"].items():
        print(f"{name:32s} {f['bytes']:>10,d} bytes  {f['sha256'][:12]}")
    print(f"{'total':32s} {total:>10,d} bytes -> {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
