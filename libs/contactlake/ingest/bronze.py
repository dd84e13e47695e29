"""Bronze and quarantine rows from parsed lines (pure transforms) and their table schemas."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BinaryType,
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from contactlake.ingest.parse import DETAIL, REASON

META_COLUMNS = ["_file", "_line", "_raw", "_batch_id", "_ingested_at", "_landing_date"]
QUARANTINE_SCHEMA = StructType(
    [
        StructField("_file", StringType()),
        StructField("_line", LongType()),
        StructField("_raw", StringType()),
        StructField("_raw_bytes", BinaryType()),
        StructField("reason_code", StringType()),
        StructField("reason_detail", StringType()),
        StructField("stage", StringType()),
        StructField("_batch_id", StringType()),
        StructField("_ingested_at", TimestampType()),
        StructField("_landing_date", DateType()),
    ]
)
INGESTED_FILES_SCHEMA = StructType(
    [
        StructField("source", StringType()),
        StructField("landing_date", DateType()),
        StructField("path", StringType()),
        StructField("size", LongType()),
        StructField("checksum", StringType()),
        StructField("batch_id", StringType()),
        StructField("rows_landed", LongType()),
        StructField("rows_bronze", LongType()),
        StructField("rows_quarantined", LongType()),
        StructField("ingested_at", TimestampType()),
    ]
)


def _meta(batch_id: str, ingested_at: Column) -> list[Column]:
    # _file is "<source>/<YYYY-MM-DD>/<name>": the landing date is its folder
    return [
        F.lit(batch_id).alias("_batch_id"),
        ingested_at.alias("_ingested_at"),
        F.to_date(F.element_at(F.split("_file", "/"), 2)).alias("_landing_date"),
    ]


def bronze_rows(
    parsed: DataFrame, columns: list[str], batch_id: str, ingested_at: Column
) -> DataFrame:
    """Rows that parsed, as landed (strings) plus ingest metadata.

    Args:
        parsed: needs ``columns``, ``value``, ``_file``, ``_line``, ``_reason``.

    Returns:
        ``columns`` then ``_file, _line, _raw, _batch_id, _ingested_at, _landing_date``.
    """
    return parsed.where(F.col(REASON).isNull()).select(
        *columns,
        "_file",
        "_line",
        F.col("value").alias("_raw"),
        *_meta(batch_id, ingested_at),
    )


def quarantine_rows(parsed: DataFrame, stage: str, batch_id: str, ingested_at: Column) -> DataFrame:
    """Rows that did not parse, with the raw payload (text and original bytes) and reason.

    Args:
        parsed: needs ``value``, ``_file``, ``_line``, ``_reason``, ``_detail``.

    Returns:
        Columns of ``QUARANTINE_SCHEMA``.
    """
    return parsed.where(F.col(REASON).isNotNull()).select(
        "_file",
        "_line",
        F.make_valid_utf8("value").alias("_raw"),
        F.col("value").cast("binary").alias("_raw_bytes"),
        F.col(REASON).alias("reason_code"),
        F.col(DETAIL).alias("reason_detail"),
        F.lit(stage).alias("stage"),
        *_meta(batch_id, ingested_at),
    )


def rows_by_file(rows: DataFrame) -> DataFrame:
    """Rows per landing file.

    Args:
        rows: needs ``_file``.

    Returns:
        ``_file``, ``rows``.
    """
    return rows.groupBy("_file").agg(F.count(F.lit(1)).alias("rows"))
