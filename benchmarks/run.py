"""`make bench`: run the benchmarks at a scale and write benchmarks/results/.

    .venv/bin/python -m benchmarks.run --scale large [--only lake,generate,pipeline,duckdb]
        [--workdir DIR] [--lake-from DIR] [--keep] [--set spark.driver_memory=14g ...]

In order, in one process and one Spark session:

* ``lake``: the lake layer against plain Spark Parquet (lake-<rows>.{json,md});
* ``generate``: jobs.generate at the scale's preset (generate-<scale>.json);
* ``pipeline``: every job of conf ``pipeline.jobs`` on that data (pipeline-<scale>.{json,md});
  it reuses the landing the generate benchmark just wrote, or generates itself when
  ``generate`` is not selected (or takes ``--lake-from DIR``'s landing);
* ``duckdb``: the KPI and feature computations in Spark and in DuckDB over the same Parquet
  files of the lake the pipeline built (duckdb-<scale>.{json,md}); without ``pipeline``,
  over the lake of ``--env`` (``./lake`` for local) at its default run date.

Data goes to ``--workdir`` (default: a temp dir, removed at the end unless ``--keep`` or a
benchmark failed).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from benchmarks import bench_duckdb, bench_generate, bench_lake, bench_pipeline
from contactlake.config import default_conf_dir, load_config
from contactlake.runner import configure_logging
from contactlake.spark import build_session

# rows for the lake layer benchmark at each scale
LAKE_ROWS = {"tiny": 200_000, "demo": 1_000_000, "large": 10_000_000}
BENCHMARKS = ("lake", "generate", "pipeline", "duckdb")


def _clear_cache() -> None:
    """Drop what an earlier benchmark cached, so it does not weigh on the next one."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        spark.catalog.clearCache()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run")
    parser.add_argument("--scale", choices=sorted(LAKE_ROWS), default="large")
    parser.add_argument(
        "--only", default=None, help=f"comma-separated: {','.join(BENCHMARKS)} (default: all)"
    )
    parser.add_argument("--env", default="local")
    parser.add_argument("--workdir", default=None, help="data of the run (default: a temp dir)")
    parser.add_argument(
        "--lake-from", default=None, help="pipeline: reuse DIR/landing instead of generating"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir")
    parser.add_argument(
        "--keep-going", action="store_true", help="pipeline: run the jobs after a failed one"
    )
    parser.add_argument("--repeats", type=int, default=3, help="duckdb: timed runs per engine")
    parser.add_argument("--kpi-days", type=int, default=90, help="duckdb: KPI dates compared")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="config key=value for every benchmark, e.g. spark.driver_memory=14g",
    )
    args = parser.parse_args(argv)
    wanted = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        parser.error(f"--only: unknown {unknown}; known: {','.join(BENCHMARKS)}")
    configure_logging()
    log = logging.getLogger("contactlake.bench")
    root = Path(args.workdir or tempfile.mkdtemp(prefix=f"bench-{args.scale}-")).resolve()
    # every benchmark reads this copy of the config: edits to ./conf during a run that
    # takes hours must not reach code imported before them
    conf = bench_pipeline.freeze_conf(default_conf_dir(), root / "conf")
    failed: list[str] = []
    # One session for every benchmark, started here with the --set values: settings such as
    # the driver's heap only apply when the JVM starts.
    build_session(load_config(args.env, args.overrides, conf).spark)
    sets = [a for o in args.overrides for a in ("--set", o)]

    if "lake" in wanted:
        bench_lake.main(["--rows", str(LAKE_ROWS[args.scale]), "--workdir", str(root / "lake")])
        _clear_cache()
    lake_from = args.lake_from
    if "generate" in wanted:
        generated = root / "generated"
        code = bench_generate.main(
            ["--preset", args.scale, "--env", args.env, "--conf-dir", str(conf)]
            + ["--workdir", str(generated), *sets]
        )
        if code != 0:
            failed.append("generate")
        elif not lake_from:
            lake_from = str(generated)  # the pipeline runs on this landing: generated once
        _clear_cache()
    duckdb_args = [
        "--env",
        args.env,
        "--conf-dir",
        str(conf),
        "--name",
        args.scale,
        "--repeats",
        str(args.repeats),
        "--kpi-days",
        str(args.kpi_days),
        *sets,
    ]
    # duckdb compares on the lake of --env, or on the one the pipeline builds here
    duckdb_lake_ready = True
    if "pipeline" in wanted and "generate" in failed:
        duckdb_lake_ready = False
    elif "pipeline" in wanted:
        pipeline_args = ["--scale", args.scale, "--env", args.env, "--conf-dir", str(conf)]
        pipeline_args += ["--workdir", str(root / "pipeline"), *sets]
        if lake_from:
            pipeline_args += ["--lake-from", lake_from]
        if args.keep_going:
            pipeline_args.append("--keep-going")
        result = bench_pipeline.main(pipeline_args)
        _clear_cache()
        if result["status"] != "succeeded":
            failed.append("pipeline")
        # it needs only the silver tables: a later job's failure does not stop it
        duckdb_lake_ready = {"silver/contacts", "silver/customers"} <= set(result["table_rows"])
        duckdb_args += ["--run-date", result["run_date"]]
        duckdb_args += ["--set", f"lake.root={result['workdir']}/lake"]
    if "duckdb" in wanted and not duckdb_lake_ready:
        log.error("duckdb skipped: the pipeline built no silver tables")
        failed.append("duckdb")
    elif "duckdb" in wanted:
        result = bench_duckdb.main(duckdb_args)
        if not result["totals"]["agree"]:
            log.warning(
                "Spark and DuckDB disagree: see benchmarks/results/duckdb-%s.md", args.scale
            )
    if failed or args.keep or args.workdir:
        log.info("benchmark data kept in %s", root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        log.error("FAILED benchmarks: %s", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
