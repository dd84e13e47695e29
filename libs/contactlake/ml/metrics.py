"""Model metrics computed in Spark.

Binary classification: ROC AUC, PR AUC (average precision), cumulative lift and capture by
fraction targeted, Brier score and calibration bins; each function takes a scored DataFrame
with a 0/1 label column and a score column (a probability for Brier and calibration).

Uplift (treatment effect ranking): Qini and uplift curves, Qini coefficient, AUUC and uplift
among the top k%; each function also takes a 0/1 treatment column, and optional ``by``
columns compute everything per group (e.g. per campaign).

Every function returns a small DataFrame; nothing is collected. Ties are handled exactly:
rows with the same score are one step of the curves, and a tied group straddling a
top-k boundary counts in proportion (what a random order of the tied rows gives on average).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
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


def _taken() -> Column:
    """Rows of a score group inside the targeted top ``fraction`` of ``total_rows``: all,
    none, or part of a tied group straddling the boundary (columns rows, rows_before)."""
    return F.least(
        F.greatest(F.col("fraction") * F.col("total_rows") - F.col("rows_before"), F.lit(0.0)),
        F.col("rows"),
    )


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
    taken = _taken()
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


# ------------------------------------------------------------------ uplift
UPLIFT_METRIC_NAMES = ("qini_coefficient", "auuc", "uplift_at_10", "uplift_at_20", "uplift_at_30")
_UPLIFT_AT_DECILE = {"uplift_at_10": 1, "uplift_at_20": 2, "uplift_at_30": 3}


def _ratio(numerator, denominator) -> Column:
    """numerator / denominator, 0 when the denominator is 0 (an empty group has no rate)."""
    return F.when(denominator > 0, numerator / denominator).otherwise(F.lit(0.0))


def uplift_counts(
    scored: DataFrame, treatment_col: str, label_col: str, score_col: str, by: list[str] = ()
) -> DataFrame:
    """Treated and control rows and responders per distinct score (and ``by`` group).

    Returns:
        Columns ``by``..., score (double), n_t, n_c (rows), r_t, r_c (responders), doubles.
    """
    t = F.col(treatment_col).cast("double")
    y = F.col(label_col).cast("double")
    return (
        scored.where(F.col(score_col).isNotNull() & t.isNotNull() & y.isNotNull())
        .groupBy(*by, F.col(score_col).cast("double").alias("score"))
        .agg(
            F.sum(t).alias("n_t"),
            F.sum(1.0 - t).alias("n_c"),
            F.sum(t * y).alias("r_t"),
            F.sum((1.0 - t) * y).alias("r_c"),
        )
    )


def uplift_curve(
    scored: DataFrame, treatment_col: str, label_col: str, score_col: str, by: list[str] = ()
) -> DataFrame:
    """Exact Qini and uplift curves: one point per distinct score, best score first.

    Targeting every row scoring at least ``score`` reaches ``fraction`` of the rows: n_t
    treated and n_c control rows with r_t and r_c responders (cumulative). With N rows and
    N_t treated rows in all:

    - qini = (r_t - r_c * n_t / n_c) / N_t: incremental responders among the targeted treated
      rows, per treated row (the control term is 0 while n_c is 0);
    - gain = (r_t / n_t - r_c / n_c) * (n_t + n_c) / N: incremental responders had every
      targeted row been treated, per row (a group's rate is 0 while the group is empty).

    Both end at fraction 1 at the overall uplift R_t / N_t - R_c / N_c.

    Returns:
        Columns ``by``..., score, fraction, n_t, n_c, r_t, r_c (cumulative), qini, gain.
    """
    upto = (
        Window.partitionBy(*by)
        .orderBy(F.col("score").desc())
        .rowsBetween(Window.unboundedPreceding, 0)
    )
    every = Window.partitionBy(*by)
    cumulative = uplift_counts(scored, treatment_col, label_col, score_col, by).select(
        *by,
        "score",
        *[F.sum(c).over(upto).alias(c) for c in ("n_t", "n_c", "r_t", "r_c")],
        F.sum(F.col("n_t") + F.col("n_c")).over(every).alias("_rows"),
        F.sum("n_t").over(every).alias("_treated"),
    )
    n_t, n_c, r_t, r_c = (F.col(c) for c in ("n_t", "n_c", "r_t", "r_c"))
    control_term = F.when(n_c > 0, r_c * n_t / n_c).otherwise(F.lit(0.0))
    return cumulative.select(
        *by,
        "score",
        ((n_t + n_c) / F.col("_rows")).alias("fraction"),
        "n_t",
        "n_c",
        "r_t",
        "r_c",
        _ratio(r_t - control_term, F.col("_treated")).alias("qini"),
        ((_ratio(r_t, n_t) - _ratio(r_c, n_c)) * (n_t + n_c) / F.col("_rows")).alias("gain"),
    )


def uplift_areas(
    scored: DataFrame, treatment_col: str, label_col: str, score_col: str, by: list[str] = ()
) -> DataFrame:
    """Qini coefficient and AUUC from :func:`uplift_curve`, trapezoids from (0, 0).

    - qini_coefficient: area under the Qini curve minus the area under the random-targeting
      line from (0, 0) to its end (area between the two, in responders per treated row);
    - auuc: area under the uplift (gain) curve; random targeting scores ate / 2.

    Returns:
        One row per ``by`` group: ``by``..., qini_coefficient, auuc, ate (overall uplift
        R_t / N_t - R_c / N_c), rows, treated, control (doubles).
    """
    order = Window.partitionBy(*by).orderBy(F.col("score").desc())
    curve = uplift_curve(scored, treatment_col, label_col, score_col, by)
    width = F.col("fraction") - F.coalesce(F.lag("fraction").over(order), F.lit(0.0))
    mean_qini = (F.col("qini") + F.coalesce(F.lag("qini").over(order), F.lit(0.0))) / 2
    mean_gain = (F.col("gain") + F.coalesce(F.lag("gain").over(order), F.lit(0.0))) / 2
    areas = curve.select(
        *by,
        "fraction",
        "qini",
        "n_t",
        "n_c",
        "r_t",
        "r_c",
        (width * mean_qini).alias("_qini_area"),
        (width * mean_gain).alias("_gain_area"),
    )
    last = F.struct("fraction", "qini", "n_t", "n_c", "r_t", "r_c")
    return (
        areas.groupBy(*by)
        .agg(
            F.sum("_qini_area").alias("_qini_area"),
            F.sum("_gain_area").alias("auuc"),
            F.max(last).alias("_end"),  # fraction 1: the totals
        )
        .select(
            *by,
            (F.col("_qini_area") - F.col("_end.qini") / 2).alias("qini_coefficient"),
            "auuc",
            (
                _ratio(F.col("_end.r_t"), F.col("_end.n_t"))
                - _ratio(F.col("_end.r_c"), F.col("_end.n_c"))
            ).alias("ate"),
            (F.col("_end.n_t") + F.col("_end.n_c")).alias("rows"),
            F.col("_end.n_t").alias("treated"),
            F.col("_end.n_c").alias("control"),
        )
    )


def uplift_at(
    scored: DataFrame,
    treatment_col: str,
    label_col: str,
    score_col: str,
    bins: int = 10,
    by: list[str] = (),
) -> DataFrame:
    """Uplift when targeting the top 1/bins, 2/bins, ... of rows by score (cumulative).

    A tied group straddling a boundary counts in proportion.

    Returns:
        Columns ``by``..., bin (1..bins), fraction, rows_targeted, treated, control,
        treated_responders, control_responders, uplift (treated minus control response
        rate among the targeted; null while either group is empty), qini (as in
        :func:`uplift_curve`, per treated row of the whole group); ordered by ``by``, bin.
    """
    before = (
        Window.partitionBy(*by)
        .orderBy(F.col("score").desc())
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    every = Window.partitionBy(*by)
    counts = (
        uplift_counts(scored, treatment_col, label_col, score_col, by)
        .withColumn("rows", F.col("n_t") + F.col("n_c"))
        .withColumn("rows_before", F.coalesce(F.sum("rows").over(before), F.lit(0.0)))
        .withColumn("total_rows", F.sum("rows").over(every))
        .withColumn("total_treated", F.sum("n_t").over(every))
    )
    cuts = scored.sparkSession.range(1, bins + 1).select(
        F.col("id").cast("int").alias("bin"), (F.col("id") / F.lit(bins)).alias("fraction")
    )
    share = _taken() / F.col("rows")
    top = (
        counts.crossJoin(F.broadcast(cuts))
        .groupBy(*by, "bin", "fraction")
        .agg(
            F.sum(_taken()).alias("rows_targeted"),
            F.sum(F.col("n_t") * share).alias("treated"),
            F.sum(F.col("n_c") * share).alias("control"),
            F.sum(F.col("r_t") * share).alias("treated_responders"),
            F.sum(F.col("r_c") * share).alias("control_responders"),
            F.first("total_treated").alias("_total_treated"),
        )
    )
    treated, control = F.col("treated"), F.col("control")
    t_resp, c_resp = F.col("treated_responders"), F.col("control_responders")
    control_term = F.when(control > 0, c_resp * treated / control).otherwise(F.lit(0.0))
    return top.select(
        *by,
        "bin",
        "fraction",
        "rows_targeted",
        "treated",
        "control",
        "treated_responders",
        "control_responders",
        F.when((treated > 0) & (control > 0), t_resp / treated - c_resp / control).alias("uplift"),
        _ratio(t_resp - control_term, F.col("_total_treated")).alias("qini"),
    ).orderBy(*by, "bin")


def uplift_metrics(
    scored: DataFrame, treatment_col: str, label_col: str, score_col: str, by: list[str] = ()
) -> DataFrame:
    """Every metric of :data:`UPLIFT_METRIC_NAMES` plus ate, rows, treated and control.

    uplift_at_10/20/30 are :func:`uplift_at` by deciles (null when the top lacks treated
    or control rows); qini_coefficient and auuc are from :func:`uplift_areas`.

    Returns:
        One row per ``by`` group.
    """
    top = (
        uplift_at(scored, treatment_col, label_col, score_col, 10, by)
        .where(F.col("bin") <= max(_UPLIFT_AT_DECILE.values()))
        .groupBy(*by)
        .agg(
            *[
                F.max(F.when(F.col("bin") == b, F.col("uplift"))).alias(name)
                for name, b in _UPLIFT_AT_DECILE.items()
            ]
        )
    )
    areas = uplift_areas(scored, treatment_col, label_col, score_col, by)
    joined = areas.join(top, list(by), "left") if by else areas.crossJoin(top)
    return joined.select(*by, *UPLIFT_METRIC_NAMES, "ate", "rows", "treated", "control")
