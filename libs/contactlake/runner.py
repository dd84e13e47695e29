"""The job convention: ``python -m jobs.<name> --env E --run-date D --set k=v``.

:func:`run_job` parses arguments, loads and validates config, builds (or reuses) the
Spark session and the lake, runs the job body, logs each stage with rows and seconds, and
appends one row to ``ops/job_runs`` whether the job succeeded or failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from contactlake.config import Config, ConfigError, load_config
from contactlake.lake import Lake
from contactlake.spark import build_session

JOB_RUNS = "ops/job_runs"
JOB_RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("job", StringType()),
        StructField("run_date", DateType()),
        StructField("env", StringType()),
        StructField("status", StringType()),
        StructField("started_at", TimestampType()),
        StructField("finished_at", TimestampType()),
        StructField("duration_s", DoubleType()),
        StructField("rows_in", LongType()),
        StructField("rows_out", LongType()),
        StructField("rows_rejected", LongType()),
        StructField("tables_read", MapType(StringType(), LongType())),
        StructField("tables_written", MapType(StringType(), LongType())),
        StructField("stages", StringType()),
        StructField("error", StringType()),
        StructField("host", StringType()),
        StructField("spark_app_id", StringType()),
    ]
)

LOG_FORMAT = "%(asctime)s %(levelname)-5s %(name)s | %(message)s"


def configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    for noisy in ("py4j", "urllib3", "matplotlib", "alembic", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def parse_args(job: str, argv: list[str] | None, extra: Callable | None = None):
    parser = argparse.ArgumentParser(prog=f"jobs.{job}", description=f"contactlake job: {job}")
    parser.add_argument("--env", default="local", help="config overlay conf/<env>.yaml")
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        default=None,
        help="business date to process, YYYY-MM-DD (default: pipeline.default_run_date, else today UTC)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set spark.shuffle_partitions=4 (repeatable)",
    )
    parser.add_argument("--conf-dir", default=None, help="folder with base.yaml (default ./conf)")
    if extra:
        extra(parser)
    return parser.parse_args(argv)


@dataclass
class JobContext:
    """What a job body gets: config, session, lake, run date, and counters to fill."""

    job: str
    cfg: Config
    spark: SparkSession
    lake: Lake
    run_date: date
    run_id: str
    args: argparse.Namespace
    log: logging.Logger
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    stages: list[dict] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        """Idempotency key of this job's commits for this run date."""
        return f"{self.job}/{self.run_date.isoformat()}"

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Time a stage; the body may set ``info["rows"]``. Logged and kept in job_runs."""
        info: dict = {"stage": name, "rows": None}
        started = time.perf_counter()
        self.log.info("stage %s ...", name)
        # names the stage's Spark jobs in the Spark UI and event log ("unify: identity")
        context = self.spark.sparkContext
        outer = context.getLocalProperty("spark.job.description")
        context.setJobDescription(f"{self.job}: {name}")
        try:
            yield info
        finally:
            context.setJobDescription(outer)
            info["seconds"] = round(time.perf_counter() - started, 2)
            self.stages.append(info)
            rows = "" if info["rows"] is None else f" rows={info['rows']:,}"
            self.log.info("stage %s done in %.1f s%s", name, info["seconds"], rows)

    def quality_suite(self, table: str):
        """``table``'s quality suite (``conf/quality/<table>.yaml``), or None."""
        from contactlake import quality  # imports Great Expectations only when used

        return quality.load_suite(self.cfg.conf_dir, table)

    def write_checked(self, df, table: str, check=None, **write_options):
        """``lake.write`` gated by ``table``'s quality suite: the suite runs over the staged
        files (a columnar read of the columns it checks), before the commit. ``check``, when
        given, runs on the staged files after the suite passed (as ``lake.write``'s). A table
        with neither is written as is (its staged files are not read back).

        Raises:
            QualityGateError: a critical expectation failed; nothing was committed.
        """
        suite = self.quality_suite(table)
        if suite is None:
            return self.lake.write(df, table, check=check, **write_options)

        def gate(staged) -> None:
            self.check_quality(staged, table, suite)
            if check is not None:
                check(staged)

        return self.lake.write(df, table, check=gate, **write_options)

    def check_quality(self, df, table: str, suite) -> None:
        """Validate ``df`` (about to be written to ``table``) against ``suite``.

        Results go to ops/quality_results and the Data Docs site, pass or fail.

        Raises:
            QualityGateError: a critical expectation failed (call this before writing).
        """
        from contactlake import quality

        recent: list[int] = []
        if suite.volume and self.lake.exists(quality.QUALITY_RESULTS):
            history = (
                self.lake.read(quality.QUALITY_RESULTS)
                .where(
                    (F.col("table") == table)
                    & (F.col("expectation") == quality.ROW_COUNT)
                    & (F.col("run_date") < self.run_date)
                )
                .orderBy(F.col("run_date").desc(), F.col("checked_at").desc())
                .dropDuplicates(["run_date"])
                .orderBy(F.col("run_date").desc())
                .limit(suite.volume.history)
            )
            recent = [int(r.observed_value) for r in history.collect() if r.observed_value]
        with self.stage(f"quality {table}") as info:
            report = quality.validate(
                df,
                table,
                suite,
                job=self.job,
                run_id=self.run_id,
                run_date=self.run_date,
                docs_dir=self.cfg.quality.docs_dir,
                failure_examples=self.cfg.quality.failure_examples,
                recent_rows=recent,
            )
            self.lake.append_rows(quality.QUALITY_RESULTS, report.rows, quality.QUALITY_SCHEMA)
            info["rows"] = len(report.rows)
        if report.failed_critical:
            raise quality.QualityGateError(
                "; ".join(report.describe(r) for r in report.failed_critical)
            )


def _record_run(ctx: JobContext, status: str, started: datetime, error: str | None) -> None:
    finished = datetime.now(UTC)
    row = {
        "run_id": ctx.run_id,
        "job": ctx.job,
        "run_date": ctx.run_date,
        "env": ctx.cfg.env,
        "status": status,
        "started_at": started,
        "finished_at": finished,
        "duration_s": round((finished - started).total_seconds(), 3),
        "rows_in": ctx.rows_in,
        "rows_out": ctx.rows_out,
        "rows_rejected": ctx.rows_rejected,
        "tables_read": dict(ctx.lake.reads),
        "tables_written": {k: v for k, v in ctx.lake.writes.items() if k != JOB_RUNS},
        "stages": json.dumps(ctx.stages),
        "error": error,
        "host": socket.gethostname(),
        "spark_app_id": ctx.spark.sparkContext.applicationId,
    }
    ctx.lake.append_rows(JOB_RUNS, [row], JOB_RUNS_SCHEMA)


def run_job(
    job: str,
    body: Callable[[JobContext], None],
    argv: list[str] | None = None,
    *,
    spark: SparkSession | None = None,
    extra_args: Callable | None = None,
) -> int:
    """Run one job; returns the process exit code (0 ok, 1 failed, 2 bad arguments/config).

    Pass ``spark`` to reuse a running session (jobs.pipeline does, to start Spark once).
    """
    configure_logging()
    log = logging.getLogger(f"contactlake.{job}")
    args = parse_args(job, argv, extra_args)
    try:
        cfg = load_config(args.env, args.overrides, args.conf_dir)
    except ConfigError as exc:
        log.error("FAILED %s: %s", job, exc)
        return 2
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    run_date = args.run_date or cfg.pipeline.default_run_date or datetime.now(UTC).date()
    session = spark or build_session(cfg.spark)
    ctx = JobContext(
        job=job,
        cfg=cfg,
        spark=session,
        lake=Lake.from_config(cfg.lake, session),
        run_date=run_date,
        run_id=uuid.uuid4().hex,
        args=args,
        log=log,
    )
    started = datetime.now(UTC)
    # where the code came from: an installed wheel, a --py-files zip or a checkout
    log.info(
        "start %s run_date=%s env=%s run_id=%s code=%s",
        job,
        run_date,
        cfg.env,
        ctx.run_id,
        os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        try:
            body(ctx)
        finally:
            # A job's cached data dies with it: every persist() of a later job (jobs.pipeline
            # shares one session) is matched against each cached plan, and that lookup grows
            # with the plans left behind until planning alone takes minutes.
            session.catalog.clearCache()
    except Exception as exc:
        log.debug("traceback:\n%s", traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}"
        try:
            _record_run(ctx, "failed", started, message)
        except Exception as record_exc:  # the job's own error is the one to report
            log.warning("could not record the failed run in %s: %s", JOB_RUNS, record_exc)
        log.error("FAILED %s run_date=%s: %s", job, run_date, message.splitlines()[0])
        return 1
    _record_run(ctx, "succeeded", started, None)
    log.info(
        "done %s run_date=%s in %.1f s: rows in=%s out=%s rejected=%s; wrote %s",
        job,
        run_date,
        (datetime.now(UTC) - started).total_seconds(),
        f"{ctx.rows_in:,}",
        f"{ctx.rows_out:,}",
        f"{ctx.rows_rejected:,}",
        ", ".join(f"{t}@v{v}" for t, v in ctx.lake.writes.items() if t != JOB_RUNS) or "nothing",
    )
    return 0
