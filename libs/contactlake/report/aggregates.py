"""Spark side of the run report: gold and ops tables in, small aggregates out.

Each function takes DataFrames and explicit parameters and returns a DataFrame small
enough to collect (a few thousand rows at most); jobs.report collects them and hands them
to :mod:`contactlake.report.charts`.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# KPIs drawn in their own sections rather than as a trend of their "all" value.
CHANNEL_MIX = "channel_mix"
CONCENTRATION = "contact_concentration"
CHANNEL_SHIFT = ("channel_diversion_rate", "channel_return_rate", "channel_retention_rate")


def kpi_rows(kpi_daily: DataFrame, start: date, end: date) -> DataFrame:
    """The ``gold/kpi_daily`` rows the report draws, ``start`` .. ``end``: every KPI's
    ``all`` row, channel mix by channel, and the concentration's top shares and Lorenz points.

    Returns:
        ``kpi_date, kpi_id, dimension, dimension_value, value, target, breach, complete``.
    """
    wanted = (
        (F.col("dimension") == "all")
        | ((F.col("kpi_id") == CHANNEL_MIX) & (F.col("dimension") == "channel"))
        | ((F.col("kpi_id") == CONCENTRATION) & F.col("dimension").isin("top_share", "lorenz"))
    )
    return kpi_daily.where(F.col("kpi_date").between(F.lit(start), F.lit(end)) & wanted).select(
        "kpi_date",
        "kpi_id",
        "dimension",
        "dimension_value",
        "value",
        "target",
        "breach",
        "complete",
    )


def alert_rows(kpi_alerts: DataFrame, start: date, end: date) -> DataFrame:
    """``gold/kpi_alerts`` rows ``start`` .. ``end`` (every dimension)."""
    return kpi_alerts.where(F.col("kpi_date").between(F.lit(start), F.lit(end))).select(
        "kpi_date", "kpi_id", "dimension", "dimension_value", "value", "target", "kind", "detail"
    )


def score_histogram(scores: DataFrame, column: str, bins: int) -> DataFrame:
    """Rows per equal-width bin of a probability ``column`` over [0, 1] (1.0 falls in the
    last bin); every bin is returned, empty ones with 0.

    Returns:
        ``bin (0 .. bins-1), lower, upper, customers`` ordered by bin.
    """
    value = F.col(column).cast("double")
    index = F.least(F.greatest(F.floor(value * bins), F.lit(0)), F.lit(bins - 1)).cast("int")
    counts = scores.where(value.isNotNull()).groupBy(index.alias("bin")).count()
    every = scores.sparkSession.range(bins).select(F.col("id").cast("int").alias("bin"))
    return (
        every.join(counts, "bin", "left")
        .select(
            "bin",
            (F.col("bin") / F.lit(bins)).alias("lower"),
            ((F.col("bin") + 1) / F.lit(bins)).alias("upper"),
            F.coalesce(F.col("count"), F.lit(0)).cast("long").alias("customers"),
        )
        .orderBy("bin")
    )


def segment_sizes(segments: DataFrame, churn_scores: DataFrame | None = None) -> DataFrame:
    """Customers per segment of one snapshot, with the segment's mean churn probability
    when ``churn_scores`` (same snapshot) is given.

    Returns:
        ``segment_id, segment_name, customers`` (+ ``mean_churn``), by segment_id.
    """
    rows = segments.select("customer_key", "segment_id", "segment_name")
    aggs = [F.count(F.lit(1)).alias("customers")]
    if churn_scores is not None:
        rows = rows.join(
            churn_scores.select("customer_key", "churn_probability"), "customer_key", "left"
        )
        aggs.append(F.avg("churn_probability").alias("mean_churn"))
    return (
        rows.groupBy("segment_id")
        .agg(F.first("segment_name", ignorenulls=True).alias("segment_name"), *aggs)
        .orderBy("segment_id")
    )


def segment_feature_sums(assigned: DataFrame, features: list[str]) -> DataFrame:
    """Per segment, in one pass: customers, and for each feature the count of non-null
    values, their sum and their sum of squares (means and standard deviations of the
    segments and of the whole population follow, :func:`contactlake.report.charts.profile_table`).

    Args:
        assigned: one row per customer: ``segment_id`` and the (numeric) feature columns.

    Returns:
        ``segment_id, customers`` and ``n__<f>, s__<f>, q__<f>`` per feature, one row per
        segment.
    """
    aggs = [F.count(F.lit(1)).alias("customers")]
    for c in features:
        value = F.col(c).cast("double")
        aggs += [
            F.count(value).alias(f"n__{c}"),
            F.sum(value).alias(f"s__{c}"),
            F.sum(value * value).alias(f"q__{c}"),
        ]
    return assigned.groupBy("segment_id").agg(*aggs).orderBy("segment_id")


def audience_sizes(audiences: DataFrame) -> DataFrame:
    """Customers selected per audience and channel of one publication.

    Returns:
        ``campaign_id, audience_id, channel, customers``.
    """
    return (
        audiences.groupBy("campaign_id", "audience_id", "channel")
        .agg(F.countDistinct("customer_key").alias("customers"))
        .orderBy(F.col("customers").desc(), "audience_id")
    )


def job_runs_between(job_runs: DataFrame, start: date, end: date) -> DataFrame:
    """``ops/job_runs`` of the run dates ``start`` .. ``end`` with the tables written as text.

    Returns:
        ``job, run_date, status, started_at, duration_s, rows_in, rows_out, rows_rejected,
        stages, error, tables_written`` (JSON text).
    """
    return job_runs.where(F.col("run_date").between(F.lit(start), F.lit(end))).select(
        "job",
        "run_date",
        "status",
        "started_at",
        "duration_s",
        "rows_in",
        "rows_out",
        "rows_rejected",
        "stages",
        "error",
        F.to_json("tables_written").alias("tables_written"),
    )
