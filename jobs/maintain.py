"""Table maintenance: OPTIMIZE (compact small files) and VACUUM every table in the lake.

python -m jobs.maintain --env local [--set lake.vacuum_retention_hours=168]
"""

from __future__ import annotations

import sys

from contactlake.runner import JOB_RUNS, JobContext, run_job

JOB = "maintain"


def run(ctx: JobContext) -> None:
    tables = [t for t in ctx.lake.tables() if t != JOB_RUNS]
    for table in tables:
        with ctx.stage(f"optimize {table}") as info:
            metrics = ctx.lake.optimize(table)
            info["rows"] = metrics.get("numFilesRemoved", 0)
        with ctx.stage(f"vacuum {table}") as info:
            info["rows"] = len(ctx.lake.vacuum(table))
    ctx.log.info("maintained %d tables", len(tables))


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
