"""Loading every public table: the bundled Parquet copy against the CSV form, in one run.

    python bench/scripts/table_load.py --csv ../shared/data --repeats 7 \
        --out results/benchmarks/table_load.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from hwnas.search.tables.timing import time_loading


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--csv", required=True, help="folder of the public tables as CSV")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.repeats < 1:
        print("table_load: error: --repeats must be >= 1", file=sys.stderr)
        return 2
    result = time_loading(args.csv, args.repeats)
    result["machine"] = platform.processor() or platform.machine()
    print(f"csv {result['csv']['median_s']:.3f} s, bundled {result['bundled']['median_s']:.3f} s "
          f"(median of {args.repeats}); csv / bundled = {result['ratio']:.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
