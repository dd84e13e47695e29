"""contactlake.ml units: metrics worked out by hand, labels, snapshots, names, promotion rule."""

from __future__ import annotations

import ctypes.util
import math
from datetime import date

import pytest
from pyspark.ml.classification import LogisticRegression
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from contactlake.ml import churn, data, metrics, segments, tracking
from contactlake.schemas import SUBSCRIPTIONS

SCORED = "label double, score double"


def _one(df, column):
    return df.first()[column]


def test_roc_auc_counts_ordered_pairs(spark):
    # Positives 0.9, 0.7; negatives 0.8, 0.1: 3 of the 4 (positive, negative) pairs ordered.
    df = spark.createDataFrame([(1.0, 0.9), (0.0, 0.8), (1.0, 0.7), (0.0, 0.1)], SCORED)
    assert _one(metrics.roc_auc(df, "label", "score"), "roc_auc") == pytest.approx(0.75)


def test_roc_auc_tie_counts_half(spark):
    # Pairs: (0.8 vs 0.8) tie = 0.5, (0.8 vs 0.2) = 1, (0.3 vs 0.8) = 0, (0.3 vs 0.2) = 1.
    df = spark.createDataFrame([(1.0, 0.8), (0.0, 0.8), (1.0, 0.3), (0.0, 0.2)], SCORED)
    assert _one(metrics.roc_auc(df, "label", "score"), "roc_auc") == pytest.approx(2.5 / 4)


def test_pr_auc_is_average_precision(spark):
    # Descending: 0.9 positive (precision 1/1), 0.8 negative, 0.7 positive (precision 2/3).
    df = spark.createDataFrame([(1.0, 0.9), (0.0, 0.8), (1.0, 0.7), (0.0, 0.1)], SCORED)
    assert _one(metrics.pr_auc(df, "label", "score"), "pr_auc") == pytest.approx((1 + 2 / 3) / 2)


def test_lift_table_of_ten_rows(spark):
    labels = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]  # 2 positives at scores 1.0 and 0.8
    df = spark.createDataFrame([(float(y), (10 - i) / 10) for i, y in enumerate(labels)], SCORED)
    rows = metrics.lift_table(df, "label", "score", 10).collect()
    assert [r.bin for r in rows] == list(range(1, 11))
    # top 10%: 1 row, 1 positive -> capture 1/2, positive rate 1 vs 0.2 overall -> lift 5
    assert (rows[0].rows_targeted, rows[0].positives) == (1.0, 1.0)
    assert (rows[0].capture, rows[0].lift) == pytest.approx((0.5, 5.0))
    assert (rows[1].capture, rows[1].lift) == pytest.approx((0.5, 2.5))
    assert (rows[2].capture, rows[2].lift) == pytest.approx((1.0, 1.0 / 0.3))
    assert (rows[9].capture, rows[9].lift) == pytest.approx((1.0, 1.0))


def test_lift_splits_a_tied_group_at_the_boundary(spark):
    # The two top rows tie (one positive, one negative): the top 10% (1 row) holds half of
    # each on average -> 0.5 positives of 2 -> capture 0.25, lift 2.5.
    scores = [0.9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    labels = [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    df = spark.createDataFrame([(float(y), s) for y, s in zip(labels, scores, strict=True)], SCORED)
    top = metrics.lift_table(df, "label", "score", 10).where("bin = 1").first()
    assert (top.positives, top.capture, top.lift) == pytest.approx((0.5, 0.25, 2.5))


def test_brier_and_calibration(spark):
    df = spark.createDataFrame([(1.0, 0.9), (0.0, 0.2), (0.0, 0.6), (1.0, 0.5)], SCORED)
    # (0.1² + 0.2² + 0.6² + 0.5²) / 4
    assert _one(metrics.brier(df, "label", "score"), "brier") == pytest.approx(0.165)

    df = spark.createDataFrame([(0.0, 0.1), (1.0, 0.3), (1.0, 0.6), (1.0, 0.8)], SCORED)
    bins = metrics.calibration_bins(df, "label", "score", 2)
    got = [(r.bin, r.rows, r.mean_predicted, r.observed_rate) for r in bins.collect()]
    assert [v for r in got for v in r] == pytest.approx([0, 2, 0.2, 0.5, 1, 2, 0.7, 1.0])
    # |0.2 - 0.5| and |0.7 - 1.0|, each half of the rows
    assert _one(metrics.calibration_error(bins), "calibration_error") == pytest.approx(0.3)


def test_binary_metrics_has_every_stable_name(spark):
    df = spark.createDataFrame([(1.0, 0.9), (0.0, 0.8), (1.0, 0.7), (0.0, 0.1)], SCORED)
    row = metrics.binary_metrics(df, "label", "score", 10).first().asDict()
    assert set(metrics.METRIC_NAMES) | {"rows", "positives"} == set(row)
    assert (row["roc_auc"], row["rows"], row["positives"]) == (pytest.approx(0.75), 4, 2.0)


def test_feature_columns_default_to_numeric_columns():
    schema = StructType.fromDDL(
        "customer_key string, snapshot_date date, calls int, fee double, tier string, "
        "churned int, customer_no long"
    )
    got = data.feature_columns(
        schema,
        [],
        key="customer_key",
        snapshot_column="snapshot_date",
        label_column="churned",
        exclude=["customer_no"],
    )
    assert got == ["calls", "fee"]
    with pytest.raises(data.MlDataError, match="not numeric \\['tier'\\]"):
        data.feature_columns(schema, ["tier"], key="customer_key", snapshot_column="snapshot_date")
    with pytest.raises(
        data.MlDataError, match=r"^ml\.segments\.feature_columns: missing \['age'\]"
    ):
        data.feature_columns(
            schema,
            ["age", "calls"],
            key="customer_key",
            snapshot_column="snapshot_date",
            setting="ml.segments.feature_columns",
        )


def test_churn_snapshots_leave_a_horizon_between_train_and_validation():
    snaps = [date(2026, 1, 1), date(2026, 1, 31), date(2026, 3, 2), date(2026, 3, 31)]
    # validation: latest <= 2026-04-10 - 30 days = 03-11 -> 03-02; train: latest <= 01-31
    assert data.churn_snapshots(snaps, date(2026, 4, 10), 30) == (
        date(2026, 1, 31),
        date(2026, 3, 2),
    )
    with pytest.raises(data.MlDataError, match="overlaps the validation"):
        data.churn_snapshots(snaps, date(2026, 4, 10), 30, train=date(2026, 3, 2))
    with pytest.raises(data.MlDataError, match="not known by the run date"):
        data.churn_snapshots(snaps, date(2026, 4, 10), 30, validation=date(2026, 3, 31))
    with pytest.raises(data.MlDataError, match="no feature snapshot on or before"):
        data.churn_snapshots(snaps, date(2026, 1, 20), 30)


def test_churn_labels_from_subscriptions(spark):
    snap = date(2026, 1, 31)  # horizon 30 days: churn if a cancelled period ends in (01-31, 03-02]
    population = spark.createDataFrame(
        [(k, snap) for k in "abcdefg"], "customer_key string, snapshot_date date"
    )
    start = date(2025, 1, 1)

    def sub(key, start_date, end, cancelled):
        return (key, None, None, "p", 10.0, start_date, end, cancelled, key, None)

    subs = spark.createDataFrame(
        [
            sub("a", start, date(2026, 2, 10), True),  # leaves within the horizon
            sub("b", start, date(2026, 3, 15), True),  # leaves after it
            sub("c", start, date(2026, 1, 31), True),  # left on the snapshot day: not active
            sub("d", start, None, None),  # stays
            sub("e", start, date(2026, 2, 5), False),  # plan change, not a cancellation
            sub("e", date(2026, 2, 6), None, False),
            sub("f", start, date(2026, 3, 2), True),  # last day of the horizon
        ],
        SUBSCRIPTIONS,
    )  # g has no subscription

    def labels(active_only):
        out = data.churn_labels(
            population,
            subs,
            key="customer_key",
            snapshot_column="snapshot_date",
            horizon_days=30,
            active_only=active_only,
        )
        assert out.columns == ["customer_key", "snapshot_date", "label"]
        return sorted((r.customer_key, r.label) for r in out.collect())

    assert labels(True) == [("a", 1.0), ("b", 0.0), ("d", 0.0), ("e", 0.0), ("f", 1.0)]
    assert labels(False) == [
        ("a", 1.0),
        ("b", 0.0),
        ("c", 0.0),
        ("d", 0.0),
        ("e", 0.0),
        ("f", 1.0),
        ("g", 0.0),
    ]


def test_class_weights_balance_the_classes(spark):
    assert data.balanced_positive_weight(10, 2) == 4.0
    with pytest.raises(data.MlDataError, match="both classes"):
        data.balanced_positive_weight(10, 0)
    df = spark.createDataFrame([(1.0,), (0.0,)], "label double")
    got = sorted(tuple(r) for r in data.with_class_weights(df, 4.0).collect())
    assert got == [(0.0, 1.0), (1.0, 4.0)]


def test_prior_correction_divides_the_odds_by_the_weight(spark):
    df = spark.createDataFrame([(0.5,), (0.8,), (0.0,), (1.0,)], "p double")
    got = [r.q for r in df.select(churn.prior_corrected(F.col("p"), 4.0).alias("q")).collect()]
    # odds 1 -> 1/4: 0.2; odds 4 -> 1: 0.5; certainties stay certain
    assert got == pytest.approx([0.2, 0.5, 0.0, 1.0])
    same = df.select(churn.prior_corrected(F.col("p"), 1.0).alias("q")).collect()
    assert [r.q for r in same] == [0.5, 0.8, 0.0, 1.0]


def test_weighted_training_scores_on_the_population_scale(spark):
    # 1 churner in 10, more likely at high x: a weighted fit's raw probabilities average
    # near 0.5; corrected, near the 10% base rate (an unweighted logistic fit matches it)
    rows = [(float(x % 20), 1.0 if x % 10 == 0 or (x % 20 == 19 and x % 3 == 0) else 0.0)
            for x in range(400)]  # fmt: skip
    df = spark.createDataFrame(rows, "x double, label double")
    base_rate = sum(r[1] for r in rows) / len(rows)
    weight = data.balanced_positive_weight(len(rows), int(sum(r[1] for r in rows)))
    weighted = data.with_class_weights(df, weight)
    clf = LogisticRegression(featuresCol="features", labelCol=data.LABEL, weightCol=data.WEIGHT)
    model = churn.build_pipeline(["x"], clf).fit(weighted)

    def mean_probability(w):
        scored = churn.with_probability(model, df, w)
        return scored.agg(F.avg(churn.PROBABILITY)).first()[0]

    assert mean_probability(1.0) == pytest.approx(0.5, abs=0.05)
    assert mean_probability(weight) == pytest.approx(base_rate, abs=0.02)


def test_segment_names_from_the_most_distinctive_features():
    def row(segment, feature, z):
        return {"segment_id": segment, "feature": feature, "z": z}

    profile = [
        row(0, "calls", 1.5),
        row(0, "tenure", -0.9),
        row(0, "fee", 0.1),
        row(1, "calls", -0.1),
        row(1, "tenure", 0.2),
        row(1, "fee", 0.05),  # nothing notable
        row(2, "calls", 1.6),
        row(2, "tenure", -1.0),
        row(2, "fee", 0.0),  # same name as segment 0
    ]
    assert segments.name_segments(profile, 2) == {
        0: "high calls, low tenure #0",
        1: "average",
        2: "high calls, low tenure #2",
    }
    assert segments.name_segments(profile[:3], 1) == {0: "high calls"}


def test_segment_profile_z_scores(spark):
    df = spark.createDataFrame(
        [(0, 1.0), (0, 3.0), (1, 5.0), (1, 7.0)], f"segment_id int, {segments.imputed('x')} double"
    )
    got = [
        v
        for r in segments.segment_profile(df, ["x"]).collect()
        for v in (r.segment_id, r.size, r.share, r.segment_mean, r.z)
    ]
    # population mean 4, population std sqrt(5)
    assert got == pytest.approx([0, 2, 0.5, 2.0, -2 / 5**0.5, 1, 2, 0.5, 6.0, 2 / 5**0.5])


def test_promotion_rule():
    assert tracking.beats(0.8, None, lower_is_better=False)
    assert tracking.beats(0.8, 0.7, lower_is_better=False)
    assert not tracking.beats(0.7, 0.7, lower_is_better=False)  # a tie keeps the champion
    assert tracking.beats(0.1, 0.2, lower_is_better=True)
    assert not tracking.beats(0.3, 0.2, lower_is_better=True)


@pytest.mark.skipif(
    ctypes.util.find_library("lapack") is None,
    reason="no system LAPACK (make setup installs it as root)",
)
def test_mllib_runs_on_the_system_lapack(spark):
    # breeze's eigen-decompositions (GaussianMixture) go to Debian's LAPACK, not the Java one
    lapack = spark._jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance()
    assert lapack.getClass().getSimpleName() == "JNILAPACK"


@pytest.mark.parametrize("algorithm", ["bisecting_kmeans", "gaussian_mixture"])
def test_other_clusterers_separate_two_groups(spark, algorithm):
    # 20 customers spread over [1, 4) x [100, 104), 16 over [10, 13) x [900, 904); the missing
    # value gets the median, which lies in the larger group. No two points share a coordinate
    # (golden-ratio steps, not a grid), so no Gaussian component can settle on a line of
    # equal values with a singular covariance.
    def spread(n, calls, tenure):
        return [(calls + 3 * (i * 0.618034 % 1), tenure + 4 * (i * 0.414214 % 1)) for i in range(n)]

    rows = spread(20, 1.0, 100.0) + spread(16, 10.0, 900.0)
    rows[0] = (None, 100.0)
    df = spark.createDataFrame(rows, "calls double, tenure double")
    pipeline = segments.build_pipeline(
        ["calls", "tenure"], algorithm=algorithm, k=2, max_iter=10, seed=1, impute_strategy="median"
    )
    got = [r.segment_id for r in pipeline.fit(df).transform(df).collect()]
    assert len(set(got[:20])) == 1 and len(set(got[20:])) == 1
    assert got[0] != got[20]


def test_log_columns_are_clustered_as_log1p_of_the_imputed_value(spark):
    # calls: median of the known values (-5, 0, 1, 3, 7) is 1; a negative count counts as 0
    calls = [0.0, 3.0, None, 1.0, -5.0, 7.0]
    df = spark.createDataFrame(
        [(c, float(10 * i)) for i, c in enumerate(calls)], "calls double, tenure double"
    )
    model = segments.build_pipeline(
        ["calls", "tenure"],
        algorithm="kmeans",
        k=2,
        max_iter=5,
        seed=1,
        impute_strategy="median",
        log_columns=["calls"],
    ).fit(df)
    rows = model.transform(df).collect()

    want = [0.0, math.log(4.0), math.log(2.0), math.log(2.0), 0.0, math.log(8.0)]
    assert [r[segments.logged("calls")] for r in rows] == pytest.approx(want)
    # the clusterer sees ln(1 + calls) and tenure as it is (scaled)
    assert [v for r in rows for v in r.features_raw] == pytest.approx(
        [v for i, w in enumerate(want) for v in (w, 10.0 * i)]
    )
    # profiles keep the imputed values in their own units
    assert [r[segments.imputed("calls")] for r in rows] == [0.0, 3.0, 1.0, 1.0, -5.0, 7.0]
    assert data.model_inputs(model) == ["calls", "tenure"]  # the Imputer is still first


def test_log_columns_must_be_features():
    with pytest.raises(ValueError, match=r"log columns \['fee'\] are not segmentation features"):
        segments.build_pipeline(
            ["calls"],
            algorithm="kmeans",
            k=2,
            max_iter=5,
            seed=1,
            impute_strategy="median",
            log_columns=["fee"],
        )
