"""The job convention: arguments, config errors, ops/job_runs rows, exit codes."""

from __future__ import annotations

from datetime import date

import pytest

from contactlake.lake import Lake
from contactlake.runner import JOB_RUNS, run_job


def _job_runs(spark, root):
    return Lake(root, spark).read(JOB_RUNS).orderBy("started_at").collect()


def test_successful_run_is_recorded(spark, tmp_path, job_argv):
    def body(ctx):
        df = ctx.spark.createDataFrame([(1,), (2,), (3,)], "n long")
        ctx.rows_in = 3
        with ctx.stage("write") as info:
            ctx.lake.write(df, "silver/numbers", app_id=ctx.app_id)
            info["rows"] = 3
        ctx.rows_out = 3
        ctx.lake.read("silver/numbers")

    assert run_job("demo", body, job_argv("2026-03-01"), spark=spark) == 0
    [row] = _job_runs(spark, str(tmp_path / "lake"))
    assert (row.job, row.run_date, row.status, row.env) == (
        "demo",
        date(2026, 3, 1),
        "succeeded",
        "test",
    )
    assert (row.rows_in, row.rows_out, row.rows_rejected) == (3, 3, 0)
    assert row.tables_written == {"silver/numbers": 0}
    assert row.tables_read == {"silver/numbers": 0}
    assert '"stage": "write"' in row.stages and row.error is None
    assert row.duration_s >= 0


def test_stages_name_their_spark_jobs(spark, job_argv):
    seen = {}

    def body(ctx):
        description = ctx.spark.sparkContext.getLocalProperty
        with ctx.stage("read"):
            seen["read"] = description("spark.job.description")
            with ctx.stage("check"):
                seen["check"] = description("spark.job.description")
            seen["back"] = description("spark.job.description")
        seen["after"] = description("spark.job.description")

    assert run_job("demo", body, job_argv("2026-03-01"), spark=spark) == 0
    assert seen == {
        "read": "demo: read",
        "check": "demo: check",
        "back": "demo: read",
        "after": None,
    }


def test_failed_run_is_recorded_with_its_error(spark, tmp_path, job_argv, caplog):
    def body(ctx):
        raise ValueError("landing folder is empty")

    assert run_job("demo", body, job_argv("2026-03-02"), spark=spark) == 1
    [row] = _job_runs(spark, str(tmp_path / "lake"))
    assert row.status == "failed"
    assert row.error == "ValueError: landing folder is empty"
    assert "FAILED demo run_date=2026-03-02: ValueError: landing folder is empty" in caplog.text


def test_bad_config_exits_2_naming_the_key(spark, caplog):
    assert (
        run_job("demo", lambda ctx: None, ["--env", "test", "--set", "lake.bogus=1"], spark=spark)
        == 2
    )
    assert "lake.bogus: Extra inputs are not permitted" in caplog.text


def test_bad_run_date_is_an_argument_error(spark):
    with pytest.raises(SystemExit) as exc:
        run_job("demo", lambda ctx: None, ["--run-date", "2026-13-01"], spark=spark)
    assert exc.value.code == 2


def test_session_has_the_settings_the_lake_relies_on(spark):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert spark.sparkContext.master == "local[2]"
