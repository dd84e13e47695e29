"""The job convention: arguments, config errors, ops/job_runs rows, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date

import pytest

from contactlake.config import load_config
from contactlake.lake import Lake
from contactlake.runner import JOB_RUNS, run_job
from contactlake.spark import HUGE_METHOD_LIMIT, compiles_huge_methods
from tests.conftest import REPO


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


def test_session_jvms_get_the_configured_options():
    # a fresh JVM from the local config (the test session's own JVM runs without the option,
    # see conf/test.yaml): driver and executors get spark.jvm_options, and with huge methods
    # compiled whole stages keep their code up to the higher limit
    options = load_config("local", conf_dir=REPO / "conf").spark.jvm_options
    assert "-XX:-DontCompileHugeMethods" in options
    out = _session_facts("local")
    assert all(option in out["driver_arguments"] for option in options), out
    assert out["executor_options"] == " ".join(options)
    assert out["compiles_huge_methods"] is True
    assert out["limit"] == str(HUGE_METHOD_LIMIT[True]) != "8000"


def test_a_jvm_that_runs_huge_methods_interpreted_gets_the_8000_byte_limit(spark):
    # the test session's JVM has no spark.jvm_options, as a driver that spark-submit started
    # without --driver-java-options: HotSpot runs methods over 8000 bytecode bytes
    # interpreted, so stages with larger methods must fall back to code per operator
    assert load_config("test", conf_dir=REPO / "conf").spark.jvm_options == []
    assert not compiles_huge_methods(spark)
    assert spark.conf.get("spark.sql.codegen.hugeMethodLimit") == "8000"


def _session_facts(env: str) -> dict:
    script = textwrap.dedent(
        """
        import json, sys
        from contactlake.config import load_config
        from contactlake.spark import build_session, compiles_huge_methods
        spark = build_session(load_config(sys.argv[1]).spark)
        jvm = spark.sparkContext._jvm
        runtime = jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
        print(json.dumps({
            "driver_arguments": list(runtime.getInputArguments()),
            "executor_options": spark.conf.get("spark.executor.extraJavaOptions", None),
            "compiles_huge_methods": compiles_huge_methods(spark),
            "limit": spark.conf.get("spark.sql.codegen.hugeMethodLimit"),
        }))
        """
    )
    env_vars = {**os.environ, "PYTHONPATH": str(REPO / "libs")}
    done = subprocess.run(
        [sys.executable, "-c", script, env],
        cwd=REPO,
        env=env_vars,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
