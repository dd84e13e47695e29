"""Benchmark jobs.generate: rows/second, seconds and peak memory (PSS of driver Python + JVM).

    .venv/bin/python -m benchmarks.bench_generate --preset large

Writes benchmarks/results/generate-<preset>.json and prints one markdown table row.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, PeakMemory


class StageTimes(logging.Handler):
    """Collects the job's ``stage <name> done in <s> s rows=<n>`` log lines."""

    PATTERN = re.compile(r"stage (.+?) done in ([0-9.]+) s(?: rows=([0-9,]+))?")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stages: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        m = self.PATTERN.search(record.getMessage())
        if m:
            rows = int(m.group(3).replace(",", "")) if m.group(3) else None
            self.stages.append({"stage": m.group(1), "seconds": float(m.group(2)), "rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.bench_generate")
    parser.add_argument("--preset", default="large", choices=["tiny", "demo", "large"])
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf-dir", default=None, help="config folder (default ./conf)")
    parser.add_argument(
        "--workdir", default=None, help="where landing/ and truth/ go (default: a temp dir)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix=f"bench-generate-{args.preset}-"))

    from contactlake.config import load_config
    from contactlake.spark import build_session
    from jobs import generate

    overrides = [
        f"generate.preset={args.preset}",
        f"lake.root={work / 'lake'}",
        f"landing.root={work / 'landing'}",
        f"truth.root={work / 'truth'}",
        *args.overrides,
    ]
    cfg = load_config(args.env, overrides, args.conf_dir)
    stages = StageTimes()
    logging.getLogger("contactlake").addHandler(stages)
    with PeakMemory() as memory:
        spark = build_session(cfg.spark)
        argv_job = ["--env", args.env]
        if args.conf_dir:
            argv_job += ["--conf-dir", args.conf_dir]
        for o in overrides:
            argv_job += ["--set", o]
        started = time.perf_counter()
        code = generate.main(argv_job, spark=spark)
        seconds = time.perf_counter() - started
    if code != 0:
        return code
    counts = {}
    for source in sorted(p.name for p in (work / "landing").iterdir() if p.is_dir()):
        n = 0
        for f in (work / "landing" / source).glob("*/*"):
            with f.open("rb") as fh:
                n += sum(1 for _ in fh)
        counts[source] = n
    rows = sum(counts.values())
    contacts = counts.get("voice", 0) + counts.get("ivr", 0) + counts.get("digital", 0)
    result = {
        "preset": args.preset,
        "seconds": round(seconds, 1),
        "rows": rows,
        "contact_rows": contacts,
        "rows_per_second": round(rows / seconds),
        "peak_memory_mb": memory.peak_mib,
        "rows_by_source": counts,
        "customers": cfg.generate.resolved_scale().customers,
        "days": cfg.generate.resolved_scale().days,
        "workdir": str(work),
        "stages": stages.stages,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"generate-{args.preset}.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| preset | rows | contact rows | seconds | rows/s | peak memory MB |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.preset} | {rows:,} | {contacts:,} | {result['seconds']} | {result['rows_per_second']:,} | {result['peak_memory_mb']:,} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
