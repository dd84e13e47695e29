"""Binary classification metrics computed in Spark: ROC AUC, PR AUC (average precision),
cumulative lift and capture by fraction targeted, Brier score and calibration bins.

Every function takes a scored DataFrame with a 0/1 label column and a score column (a
probability for Brier and calibration) and returns a small DataFrame; nothing is collected.
Ties are handled exactly: rows with the same score are one step of the curves, and a tied
group straddling the top-decile boundary counts in proportion (what a random order of the
tied rows gives on average).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

METRIC_NAMES = (
    "roc_auc",
    "pr_auc",
    "lift_top_decile",
    "capture_top_decile",
    "brier",
    "calibration_error",
)
# Larger is better for every metric but these.
LOWER_IS_BETTER = frozenset({"brier", "calibration_error"})


def score_counts(scored: DataFrame, label_col: str, score_col: str) -> DataFrame:
    """Positives and negatives per distinct score.

    Returns:
        Columns score (double), pos, neg (double counts), one row per distinct score.
    """
    label = F.col(label_col).cast("double")
    return (
        scored.where(F.col(score_col).isNotNull() & F.col(label_col).isNotNull())
        .groupBy(F.col(score_col).cast("double").alias("score"))
        .agg(F.sum(label).alias("pos"), F.sum(1.0 - label).alias("neg"))
    )


def roc_auc(scored: DataFrame, label_col: str, score_col: str) -> DataFrame:
    """Area under the ROC curve (probability a positive outscores a negative; ties count half).

    Returns:
        One row, column roc_auc (null when only one class is present).
    """
    below = Window.orderBy("score").rowsBetween(Window.unboundedPreceding, -1)
    counts = score_counts(scored, label_col, score_col).withColumn(
        "neg_below", F.coalesce(F.sum("neg").over(below), F.lit(0.0))
    )
    return counts.agg(
        (
            F.sum(F.col("pos") * (F.col("neg_below") + 0.5 * F.col("neg")))
            / (F.sum("pos") * F.sum("neg"))
        ).alias("roc_auc")
    )


def pr_auc(scored: DataFrame, label_col: str, score_col: str) -> DataFrame:
    """Area under the precision-recall curve as average precision (step-wise, no interpolation).

    Returns:
        One row, column pr_auc: sum over thresholds of recall gained times precision.
    """
    upto = Window.orderBy(F.col("score").desc()).rowsBetween(Window.unboundedPreceding, 0)
    counts = score_counts(scored, label_col, score_col)
    curve = counts.withColumn("tp", F.sum("pos").over(upto)).withColumn(
        "fp", F.sum("neg").over(upto)
    )
    precision = F.col("tp") / (F.col("tp") + F.col("fp"))
    return curve.agg((F.sum(F.col("pos") * precision) / F.sum("pos")).alias("pr_auc"))


def lift_table(scored: DataFrame, label_col: str, score_col: str, bins: int = 10) -> DataFrame:
    """Cumulative capture and lift when targeting the top 1/bins, 2/bins, ... of rows by score.

    Returns:
        Columns bin (1..bins), fraction (share of rows targeted), rows_targeted, positives,
        capture (share of all positives among them), lift (capture / fraction).
    """
    before = Window.orderBy(F.col("score").desc()).rowsBetween(Window.unboundedPreceding, -1)
    counts = (
        score_counts(scored, label_col, score_col)
        .withColumn("rows", F.col("pos") + F.col("neg"))
        .withColumn("rows_before", F.coalesce(F.sum("rows").over(before), F.lit(0.0)))
        .withColumn("total_rows", F.sum("rows").over(Window.partitionBy()))
        .withColumn("total_pos", F.sum("pos").over(Window.partitionBy()))
    )
    cuts = scored.sparkSession.range(1, bins + 1).select(
        F.col("id").cast("int").alias("bin"), (F.col("id") / F.lit(bins)).alias("fraction")
    )
    # Rows of this score group inside the targeted top: all, none, or part of a tied group.
    taken = F.least(
        F.greatest(F.col("fraction") * F.col("total_rows") - F.col("rows_before"), F.lit(0.0)),
        F.col("rows"),
    )
    return (
        counts.crossJoin(F.broadcast(cuts))
        .groupBy("bin", "fraction")
        .agg(
            F.sum(taken).alias("rows_targeted"),
            F.sum(F.col("pos") * taken / F.col("rows")).alias("positives"),
            F.first("total_pos").alias("total_pos"),
        )
        .withColumn("capture", F.col("positives") / F.col("total_pos"))
        .withColumn("lift", F.col("capture") / F.col("fraction"))
        .drop("total_pos")
        .orderBy("bin")
    )


def brier(scored: DataFrame, label_col: str, prob_col: str) -> DataFrame:
    """Brier score: mean squared difference between probability and 0/1 outcome.

    Returns:
        One row, column brier.
    """
    err = F.col(prob_col).cast("double") - F.col(label_col).cast("double")
    return scored.agg(F.avg(err * err).alias("brier"))


def calibration_bins(scored: DataFrame, label_col: str, prob_col: str, bins: int) -> DataFrame:
    """Reliability table over equal-width probability bins [0, 1/bins), ..., [1-1/bins, 1].

    Returns:
        Columns bin (0..bins-1, only bins with rows), lower, upper, rows, mean_predicted,
        observed_rate.
    """
    prob = F.col(prob_col).cast("double")
    bin_col = F.least(F.floor(prob * bins), F.lit(bins - 1)).cast("int")
    return (
        scored.where(prob.isNotNull())
        .groupBy(bin_col.alias("bin"))
        .agg(
            F.count("*").alias("rows"),
            F.avg(prob).alias("mean_predicted"),
            F.avg(F.col(label_col).cast("double")).alias("observed_rate"),
        )
        .withColumn("lower", F.col("bin") / F.lit(bins))
        .withColumn("upper", (F.col("bin") + 1) / F.lit(bins))
        .select("bin", "lower", "upper", "rows", "mean_predicted", "observed_rate")
        .orderBy("bin")
    )


def calibration_error(calibration: DataFrame) -> DataFrame:
    """Expected calibration error of a :func:`calibration_bins` table.

    Returns:
        One row, column calibration_error: row-weighted mean |mean_predicted - observed_rate|.
    """
    gap = F.abs(F.col("mean_predicted") - F.col("observed_rate"))
    return calibration.agg((F.sum(gap * F.col("rows")) / F.sum("rows")).alias("calibration_error"))


def binary_metrics(scored: DataFrame, label_col: str, prob_col: str, bins: int) -> DataFrame:
    """All metrics of :data:`METRIC_NAMES` plus rows and positives, in one row.

    Args:
        bins: calibration bins (lift is always by deciles).
    """
    top = lift_table(scored, label_col, prob_col, 10).where(F.col("bin") == 1)
    sizes = scored.agg(
        F.count("*").alias("rows"), F.sum(F.col(label_col).cast("double")).alias("positives")
    )
    return (
        roc_auc(scored, label_col, prob_col)
        .crossJoin(pr_auc(scored, label_col, prob_col))
        .crossJoin(
            top.select(
                F.col("lift").alias("lift_top_decile"),
                F.col("capture").alias("capture_top_decile"),
            )
        )
        .crossJoin(brier(scored, label_col, prob_col))
        .crossJoin(calibration_error(calibration_bins(scored, label_col, prob_col, bins)))
        .crossJoin(sizes)
    )


def roc_points(scored: DataFrame, label_col: str, score_col: str, decimals: int = 3) -> DataFrame:
    """ROC and precision-recall curve points over scores rounded to ``decimals`` (for charts).

    Returns:
        Columns threshold, fpr, tpr (= recall), precision, descending threshold.
    """
    rounded = scored.withColumn(score_col, F.round(F.col(score_col).cast("double"), decimals))
    upto = Window.orderBy(F.col("score").desc()).rowsBetween(Window.unboundedPreceding, 0)
    every = Window.partitionBy()
    return (
        score_counts(rounded, label_col, score_col)
        .withColumn("tp", F.sum("pos").over(upto))
        .withColumn("fp", F.sum("neg").over(upto))
        .select(
            F.col("score").alias("threshold"),
            (F.col("fp") / F.sum("neg").over(every)).alias("fpr"),
            (F.col("tp") / F.sum("pos").over(every)).alias("tpr"),
            (F.col("tp") / (F.col("tp") + F.col("fp"))).alias("precision"),
        )
        .orderBy(F.col("threshold").desc())
    )
