"""Quality gates: Great Expectations suites per table, results in ops/quality_results and
Data Docs HTML. A failed critical expectation stops the job before its output is committed.

Suites are YAML, ``conf/quality/<layer>/<name>.yaml``::

    expectations:
      - expect: expect_column_values_to_not_be_null
        column: contact_id
        severity: critical          # critical fails the job; warning is recorded only
      - expect: expect_column_values_to_be_between
        column: wait_s
        min_value: 0
        mostly: 0.999
    volume:                         # rows vs the median of recent runs (from ops/quality_results)
      min_ratio: 0.3
      max_ratio: 3.0
    freshness:                      # the newest value must be within max_lag_days of the run date
      column: start_ts
      max_lag_days: 3

Any Great Expectations expectation type works; its other keys are its arguments.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyspark.sql import DataFrame
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from contactlake.config import ConfigError, format_validation_error

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
log = logging.getLogger("contactlake.quality")

QUALITY_RESULTS = "ops/quality_results"
ROW_COUNT = "expect_table_row_count_to_be_between"
QUALITY_SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("job", StringType()),
        StructField("run_date", DateType()),
        StructField("table", StringType()),
        StructField("expectation", StringType()),
        StructField("column", StringType()),
        StructField("severity", StringType()),
        StructField("success", BooleanType()),
        StructField("element_count", LongType()),
        StructField("unexpected_count", LongType()),
        StructField("unexpected_percent", DoubleType()),
        StructField("observed_value", StringType()),
        StructField("arguments", StringType()),
        StructField("checked_at", TimestampType()),
    ]
)


class QualityGateError(RuntimeError):
    """A critical expectation failed; the output was not committed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Volume(_Strict):
    min_ratio: float = Field(ge=0)
    max_ratio: float = Field(gt=0)
    history: int = Field(default=7, gt=0)  # how many earlier runs the median is taken over
    severity: Literal["critical", "warning"] = "warning"


class Freshness(_Strict):
    column: str
    max_lag_days: int = Field(ge=0)
    severity: Literal["critical", "warning"] = "warning"


class Expectation(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    expect: str = Field(pattern=r"^expect_[a-z_]+$")
    severity: Literal["critical", "warning"] = "critical"

    @property
    def arguments(self) -> dict:
        return dict(self.model_extra or {})


class Suite(_Strict):
    expectations: list[Expectation] = Field(default_factory=list)
    volume: Volume | None = None
    freshness: Freshness | None = None


def load_suite(conf_dir: str | Path, table: str) -> Suite | None:
    """The suite of ``table`` (``layer/name``), or None when it has none."""
    path = Path(conf_dir) / "quality" / f"{table}.yaml"
    if not path.is_file():
        return None
    try:
        suite = Suite.model_validate(yaml.safe_load(path.read_text()) or {})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from None
    from great_expectations.expectations.registry import get_expectation_impl

    for exp in suite.expectations:
        try:
            get_expectation_impl(exp.expect)
        except Exception:
            raise ConfigError(f"{path}: unknown expectation {exp.expect!r}") from None
    return suite


@dataclass
class QualityReport:
    table: str
    rows: list[dict] = field(default_factory=list)

    @property
    def failed_critical(self) -> list[dict]:
        return [r for r in self.rows if not r["success"] and r["severity"] == "critical"]

    def describe(self, row: dict) -> str:
        where = f"({row['column']})" if row["column"] else ""
        seen = (
            f"{row['unexpected_count']} of {row['element_count']} rows unexpected"
            if row["unexpected_count"] is not None
            else f"observed {row['observed_value']}"
        )
        return f"{self.table}: {row['expectation']}{where} failed: {seen}"


def _expectations(
    suite: Suite, run_date: date, recent_rows: list[int]
) -> list[tuple[str, dict, str]]:
    """(type, arguments, severity) for every check, the dynamic ones resolved for this run."""
    checks = [(e.expect, e.arguments, e.severity) for e in suite.expectations]
    # The row count is always observed (it is the history the volume check compares with).
    bounds, severity = {"min_value": 0}, "warning"
    if suite.volume and recent_rows:
        median = sorted(recent_rows)[len(recent_rows) // 2]
        bounds = {
            "min_value": int(median * suite.volume.min_ratio),
            "max_value": int(median * suite.volume.max_ratio) + 1,
        }
        severity = suite.volume.severity
    checks.append((ROW_COUNT, bounds, severity))
    if suite.freshness:
        oldest = run_date - timedelta(days=suite.freshness.max_lag_days)
        checks.append(
            (
                "expect_column_max_to_be_between",
                {"column": suite.freshness.column, "min_value": oldest.isoformat()},
                suite.freshness.severity,
            )
        )
    return checks


def validate(
    df: DataFrame,
    table: str,
    suite: Suite,
    *,
    job: str,
    run_id: str,
    run_date: date,
    docs_dir: str,
    failure_examples: int,
    recent_rows: list[int] = (),
) -> QualityReport:
    """Run ``suite`` over ``df`` with Great Expectations and build the Data Docs page.

    ``failure_examples``: when a check fails, the suite runs again so that Data Docs show
    up to this many unexpected values per check (0: never).

    Returns a report whose ``rows`` fit ``QUALITY_SCHEMA``; the caller records them and
    stops on ``failed_critical`` before committing.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.registry import get_expectation_impl

    context = gx.get_context(mode="file", project_root_dir=docs_dir)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    name = table.replace("/", "__")
    # GE persists a batch by default (every column, and never unpersisted). The jobs hand it
    # the staged Parquet files (Lake.write check=...), where each pass reads only its columns.
    source = context.data_sources.add_or_update_spark(name="contactlake", persist=False)
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name=name)
    try:
        batch = asset.get_batch_definition("all")
    except (KeyError, LookupError):
        batch = asset.add_batch_definition_whole_dataframe("all")
    gx_suite = gx.ExpectationSuite(name=name)
    checks = _expectations(suite, run_date, list(recent_rows))
    for kind, args, severity in checks:
        gx_suite.add_expectation(get_expectation_impl(kind)(**args, meta={"severity": severity}))
    gx_suite = context.suites.add_or_update(gx_suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=gx_suite)
    )

    def run_checkpoint(examples: int):
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": examples},
            )
        )
        return checkpoint.run(batch_parameters={"dataframe": df})

    # Each column check would scan the table a second time for examples of unexpected
    # values (a filter + limit that reads everything when nothing is wrong); with 0
    # examples Spark drops that scan. Only a failed run pays for the examples, so that its
    # Data Docs page shows them.
    result = run_checkpoint(0)
    if not result.success and failure_examples > 0:
        log.info("quality %s: failed, checking again for examples of unexpected values", table)
        result = run_checkpoint(failure_examples)
    now = datetime.now(UTC)
    report = QualityReport(table)
    for validation in result.run_results.values():
        for item in validation.results:
            config = item.expectation_config
            args = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
            observed = item.result.get("observed_value")
            report.rows.append(
                {
                    "run_id": run_id,
                    "job": job,
                    "run_date": run_date,
                    "table": table,
                    "expectation": config.type,
                    "column": args.get("column"),
                    "severity": (config.meta or {}).get("severity", "critical"),
                    "success": bool(item.success),
                    "element_count": item.result.get("element_count"),
                    "unexpected_count": item.result.get("unexpected_count"),
                    "unexpected_percent": item.result.get("unexpected_percent"),
                    "observed_value": None if observed is None else str(observed),
                    "arguments": json.dumps(args, default=str, sort_keys=True),
                    "checked_at": now,
                }
            )
    failed = [r for r in report.rows if not r["success"]]
    log.info("quality %s: %d checks, %d failed", table, len(report.rows), len(failed))
    return report


def data_docs_index(docs_dir: str) -> Path:
    return Path(docs_dir) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
