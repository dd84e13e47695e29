"""`make bench`: run the benchmarks at a scale and write benchmarks/results/.

.venv/bin/python -m benchmarks.run --scale large [--only lake,generate]
"""

from __future__ import annotations

import argparse
import importlib
import logging

# rows for the lake layer benchmark at each scale
LAKE_ROWS = {"tiny": 200_000, "demo": 1_000_000, "large": 10_000_000}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=sorted(LAKE_ROWS), default="large")
    parser.add_argument("--only", default=None, help="comma-separated: lake,generate")
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else ["lake", "generate"]
    log = logging.getLogger("contactlake.bench")
    logging.basicConfig(level=logging.INFO)
    if "lake" in wanted:
        importlib.import_module("benchmarks.bench_lake").main(
            ["--rows", str(LAKE_ROWS[args.scale])]
        )
    if "generate" in wanted:
        try:
            bench = importlib.import_module("benchmarks.bench_generate")
        except ModuleNotFoundError:
            log.warning("benchmarks.bench_generate not present; skipped")
        else:
            bench.main(["--preset", args.scale])


if __name__ == "__main__":
    main()
