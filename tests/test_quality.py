"""Quality gates with Great Expectations on a real ingest: results, Data Docs, failures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pyspark import StorageLevel

from contactlake.config import ConfigError
from contactlake.lake import Lake
from contactlake.quality import Suite, data_docs_index, load_suite, validate
from tests.ingest_helpers import land, run_ingest

SUITE = """
expectations:
  - expect: expect_column_values_to_not_be_null
    column: call_id
  - expect: expect_column_values_to_be_unique
    column: call_id
  - expect: expect_column_value_lengths_to_equal
    column: ani
    value: 11
    severity: warning
volume:
  min_ratio: 0.5
  max_ratio: 2.0
  severity: critical
"""


def _with_suite(conf_dir: Path) -> Path:
    (conf_dir / "quality" / "bronze").mkdir(parents=True)
    (conf_dir / "quality" / "bronze" / "calls.yaml").write_text(SUITE)
    return conf_dir


def _calls(*rows: str) -> bytes:
    return ("call_id,ani,note,secs\n" + "".join(r + "\n" for r in rows)).encode()


def test_results_are_recorded_and_data_docs_built(spark, tmp_path, job_argv, conf_dir):
    _with_suite(conf_dir)
    land(tmp_path, "calls", "a.csv", _calls("c1,13800000001,x,1", "c2,1380000,y,2"))
    assert run_ingest(spark, job_argv, conf_dir) == 0

    results = Lake(str(tmp_path / "lake"), spark).read("ops/quality_results").collect()
    got = {(r.expectation, r.column): (r.success, r.severity, r.unexpected_count) for r in results}
    assert got == {
        ("expect_column_values_to_not_be_null", "call_id"): (True, "critical", 0),
        ("expect_column_values_to_be_unique", "call_id"): (True, "critical", 0),
        ("expect_column_value_lengths_to_equal", "ani"): (False, "warning", 1),
        ("expect_table_row_count_to_be_between", None): (True, "warning", None),
    }
    assert {r.table for r in results} == {"bronze/calls"}
    assert [r.observed_value for r in results if r.column is None] == ["2"]
    assert "bronze__calls" in data_docs_index(str(tmp_path / "quality")).read_text()


def test_failed_critical_check_stops_before_commit(spark, tmp_path, job_argv, conf_dir, caplog):
    _with_suite(conf_dir)
    land(tmp_path, "calls", "a.csv", _calls("c1,13800000001,x,1", "c1,13800000002,y,2"))
    assert run_ingest(spark, job_argv, conf_dir) == 1
    assert (
        "QualityGateError: bronze/calls: expect_column_values_to_be_unique(call_id) failed: "
        "2 of 2 rows unexpected" in caplog.text
    )
    lake = Lake(str(tmp_path / "lake"), spark)
    assert not lake.exists("bronze/calls")
    assert not lake.exists("ops/ingested_files")
    failed = lake.read("ops/quality_results").where("not success").collect()
    assert [r.expectation for r in failed] == ["expect_column_values_to_be_unique"]


def _latest_docs_page(docs_dir: Path, table: str) -> str:
    pages = (docs_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations").glob(
        f"{table.replace('/', '__')}/*/*/*.html"
    )
    return max(pages, key=lambda page: page.parent.name).read_text()


def test_only_a_failed_suite_scans_again_for_examples_of_unexpected_values(
    spark, tmp_path, job_argv, conf_dir
):
    (conf_dir / "quality" / "bronze").mkdir(parents=True)
    (conf_dir / "quality" / "bronze" / "calls.yaml").write_text(
        "expectations:\n"
        "  - expect: expect_column_value_lengths_to_equal\n"
        "    column: ani\n"
        "    value: 11\n"
        "    mostly: 0.5\n"
        "    severity: warning\n"
    )
    # 1 short number of 2: within mostly, the suite passes and shows no examples
    land(
        tmp_path, "calls", "a.csv", _calls("c1,13800000001,x,1", "c2,5550123,y,2"), day="2026-01-05"
    )
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-05") == 0
    passed = _latest_docs_page(tmp_path / "quality", "bronze/calls")
    assert "5550123" not in passed
    # 2 of 3: the (warning) check fails, and its page lists the short numbers
    land(
        tmp_path,
        "calls",
        "b.csv",
        _calls("c3,13800000003,x,1", "c4,5550124,y,2", "c5,5550125,z,3"),
        day="2026-01-06",
    )
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-06") == 0
    failed = _latest_docs_page(tmp_path / "quality", "bronze/calls")
    assert "5550124" in failed and "5550125" in failed
    results = Lake(str(tmp_path / "lake"), spark).read("ops/quality_results")
    got = sorted(
        (str(r.run_date), r.success, r.unexpected_count)
        for r in results.where("column = 'ani'").collect()
    )
    assert got == [("2026-01-05", True, 1), ("2026-01-06", False, 2)]


def test_volume_is_checked_against_recent_runs(spark, tmp_path, job_argv, conf_dir, caplog):
    _with_suite(conf_dir)
    rows = [f"c{i},138000000{i:02d},x,1" for i in range(10)]
    land(tmp_path, "calls", "a.csv", _calls(*rows), day="2026-01-05")
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-05") == 0
    land(tmp_path, "calls", "a.csv", _calls("d1,13800000001,x,1"), day="2026-01-06")
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-06") == 1
    assert "expect_table_row_count_to_be_between failed: observed 1" in caplog.text


def test_freshness_flags_stale_batches_and_quiet_sources(spark, tmp_path, job_argv, conf_dir):
    (conf_dir / "quality" / "bronze").mkdir(parents=True)
    (conf_dir / "quality" / "bronze" / "calls.yaml").write_text(
        "freshness:\n  column: _landing_date\n  max_lag_days: 2\n"
    )
    land(tmp_path, "calls", "a.csv", _calls("c1,13800000001,x,1"), day="2026-01-05")
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-06") == 0  # 1 day old: fresh
    # a late file, landed in the folder of the 2nd, arrives by the 9th: stale, a warning
    land(tmp_path, "calls", "b.csv", _calls("c2,13800000002,y,2"), day="2026-01-02")
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-09") == 0
    # nothing new on the 10th: checked as an empty batch
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-10") == 0

    results = Lake(str(tmp_path / "lake"), spark).read("ops/quality_results").collect()
    got = sorted(
        (str(r.run_date), r.expectation, r.success, r.severity, r.observed_value) for r in results
    )
    max_between, row_count = (
        "expect_column_max_to_be_between",
        "expect_table_row_count_to_be_between",
    )
    assert got == [
        ("2026-01-06", max_between, True, "warning", "2026-01-05"),
        ("2026-01-06", row_count, True, "warning", "1"),
        ("2026-01-09", max_between, False, "warning", "2026-01-02"),
        ("2026-01-09", row_count, True, "warning", "1"),
        ("2026-01-10", max_between, False, "warning", None),
        ("2026-01-10", row_count, True, "warning", "0"),
    ]
    freshness = [r for r in results if r.expectation == max_between]
    assert {r.arguments for r in freshness if str(r.run_date) == "2026-01-10"} == {
        '{"column": "_landing_date", "min_value": "2026-01-08"}'
    }


def test_validation_leaves_the_rows_uncached(spark, tmp_path):
    """GE would persist every column of the batch, and keep it: the jobs hand it the staged
    Parquet files instead, where each check reads only its columns."""
    df = spark.createDataFrame([("c1",), ("c2",)], "call_id string")
    suite = Suite.model_validate(
        {"expectations": [{"expect": "expect_column_values_to_not_be_null", "column": "call_id"}]}
    )
    report = validate(
        df,
        "bronze/calls",
        suite,
        job="test",
        run_id="r1",
        run_date=date(2026, 1, 5),
        docs_dir=str(tmp_path / "quality"),
        failure_examples=0,
    )
    assert [(r["expectation"], r["success"]) for r in report.rows] == [
        ("expect_column_values_to_not_be_null", True),
        ("expect_table_row_count_to_be_between", True),
    ]
    assert not df.is_cached and df.storageLevel == StorageLevel.NONE


def test_bad_suite_is_a_config_error(tmp_path):
    (tmp_path / "quality" / "silver").mkdir(parents=True)
    (tmp_path / "quality" / "silver" / "x.yaml").write_text(
        "expectations:\n  - expect: expect_moon_to_be_cheese\n"
    )
    with pytest.raises(ConfigError, match="unknown expectation 'expect_moon_to_be_cheese'"):
        load_suite(tmp_path, "silver/x")
    assert load_suite(tmp_path, "silver/none") is None
