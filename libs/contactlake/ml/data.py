"""Model inputs: feature columns of any feature table, snapshot choice, churn labels, weights,
and the preprocessing stages every classifier pipeline starts with."""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType, StructType

LABEL = "label"
WEIGHT = "weight"


class MlDataError(ValueError):
    """The feature table, its snapshots or the configured columns cannot be used."""


def feature_columns(
    schema: StructType,
    configured: list[str],
    *,
    key: str,
    snapshot_column: str,
    label_column: str | None = None,
    exclude: list[str] = (),
    setting: str = "ml.features.feature_columns",
) -> list[str]:
    """The model's feature columns: the configured ones, else every numeric column.

    Key, snapshot, label and excluded columns are never features. ``setting`` names the
    configured list in errors.

    Raises:
        MlDataError: a configured column is missing or not numeric, or nothing is left.
    """
    reserved = {key, snapshot_column, label_column, *exclude} - {None}
    types = {f.name: f.dataType for f in schema.fields}
    if configured:
        missing = [c for c in configured if c not in types]
        not_numeric = [
            c for c in configured if c in types and not isinstance(types[c], NumericType)
        ]
        if missing or not_numeric:
            raise MlDataError(f"{setting}: missing {missing}, not numeric {not_numeric}")
        chosen = [c for c in configured if c not in reserved]
    else:
        chosen = [n for n, t in types.items() if isinstance(t, NumericType) and n not in reserved]
    if not chosen:
        raise MlDataError("no feature columns: the feature table has no usable numeric column")
    return chosen


def latest_snapshot(snapshots: list[date], not_after: date) -> date:
    """The latest snapshot on or before ``not_after``.

    Raises:
        MlDataError: there is none.
    """
    eligible = [s for s in snapshots if s <= not_after]
    if not eligible:
        raise MlDataError(
            f"no feature snapshot on or before {not_after} (snapshots: {sorted(snapshots)[:5]}...)"
        )
    return max(eligible)


def churn_snapshots(
    snapshots: list[date],
    run_date: date,
    horizon_days: int,
    train: date | None = None,
    validation: date | None = None,
) -> tuple[date, date]:
    """Train and validation snapshots with no leakage across time.

    The validation labels must be known by the run date (validation + horizon <= run date)
    and the train labels by the validation snapshot (train + horizon <= validation), so a
    model validated on the later snapshot has seen nothing of its outcome window.

    Raises:
        MlDataError: a configured snapshot does not exist or breaks the rule, or none fits.
    """
    horizon = timedelta(days=horizon_days)
    for name, value in (("validation_snapshot", validation), ("train_snapshot", train)):
        if value is not None and value not in snapshots:
            raise MlDataError(f"ml.churn.{name}: no feature snapshot {value}")
    if validation is None:
        validation = latest_snapshot(snapshots, run_date - horizon)
    elif validation + horizon > run_date:
        raise MlDataError(
            f"ml.churn.validation_snapshot {validation}: its {horizon_days}-day outcome is not "
            f"known by the run date {run_date}"
        )
    if train is None:
        train = latest_snapshot(snapshots, validation - horizon)
    elif train + horizon > validation:
        raise MlDataError(
            f"ml.churn.train_snapshot {train}: its outcome window overlaps the validation "
            f"snapshot {validation} (need train + {horizon_days} days <= validation)"
        )
    return train, validation


def churn_labels(
    population: DataFrame,
    subscriptions: DataFrame,
    *,
    key: str,
    snapshot_column: str,
    horizon_days: int,
    active_only: bool,
) -> DataFrame:
    """Add the churn label: a cancelled period ends in (snapshot, snapshot + horizon].

    Args:
        population: rows with ``key`` and ``snapshot_column`` (date), any other columns.
        subscriptions: silver/subscriptions (customer_key, start_date, end_date, cancelled).
        active_only: keep only customers with a period active at the snapshot (started by it,
            not ended before it): others cannot leave.

    Returns:
        ``population`` plus ``label`` (double 0/1); customers without subscriptions get 0.
    """
    snap = F.col("p._snapshot")
    end = F.col("s.end_date")
    leaves = F.col("s.cancelled") & (end > snap) & (end <= F.date_add(snap, horizon_days))
    active = (F.col("s.start_date") <= snap) & (end.isNull() | (end > snap))
    keys = population.select(
        F.col(key).alias("_key"), F.col(snapshot_column).alias("_snapshot")
    ).distinct()
    outcome = (
        keys.alias("p")
        .join(
            subscriptions.select("customer_key", "start_date", "end_date", "cancelled").alias("s"),
            F.col("p._key") == F.col("s.customer_key"),
            "left",
        )
        .groupBy("p._key", "p._snapshot")
        .agg(
            F.max(F.when(leaves, 1.0).otherwise(0.0)).alias(LABEL),
            F.max(F.coalesce(active, F.lit(False))).alias("_active"),
        )
    )
    labelled = population.join(
        outcome,
        (population[key] == outcome["_key"])
        & (population[snapshot_column] == outcome["_snapshot"]),
    )
    if active_only:
        labelled = labelled.where("_active")
    return labelled.drop("_key", "_snapshot", "_active")


def label_from_column(features: DataFrame, label_column: str) -> DataFrame:
    """Use a 0/1 column of the feature table as ``label`` (rows without it are dropped).

    Returns:
        ``features`` plus ``label`` (double).
    """
    return features.where(F.col(label_column).isNotNull()).withColumn(
        LABEL, F.col(label_column).cast("double")
    )


def as_double(df: DataFrame, columns: list[str]) -> DataFrame:
    """Cast feature columns to double (Imputer keeps an integer column's type, which would
    truncate its mean; the profiles want one type too)."""
    return df.withColumns({c: F.col(c).cast("double") for c in columns})


def feature_stages(features: list[str], categorical: list[str] = ()) -> list:
    """Median imputation -> (one-hot of ``categorical``) -> VectorAssembler -> StandardScaler.

    The first stage is always the Imputer (:func:`model_inputs` reads its input columns).
    A categorical column's nulls and values unseen at fit time share one extra one-hot slot.

    Returns:
        Unfitted stages that add ``features`` (vector) to rows with the given columns.
    """
    filled = [f"{c}__imputed" for c in features]
    indexed = [f"{c}__index" for c in categorical]
    onehot = [f"{c}__onehot" for c in categorical]
    stages = [Imputer(inputCols=features, outputCols=filled, strategy="median")]
    if categorical:
        stages += [
            StringIndexer(
                inputCols=list(categorical),
                outputCols=indexed,
                handleInvalid="keep",
                stringOrderType="alphabetAsc",
            ),
            OneHotEncoder(inputCols=indexed, outputCols=onehot, handleInvalid="keep"),
        ]
    return [
        *stages,
        VectorAssembler(inputCols=filled + onehot, outputCol="features_raw"),
        StandardScaler(inputCol="features_raw", outputCol="features", withMean=True, withStd=True),
    ]


def model_inputs(model) -> list[str]:
    """The feature columns a fitted contactlake pipeline reads (its Imputer's input columns)."""
    return list(model.stages[0].getInputCols())


def with_class_weights(labelled: DataFrame, positive_weight: float) -> DataFrame:
    """Add ``weight``: ``positive_weight`` for label 1, 1.0 for label 0 (class imbalance).

    Returns:
        ``labelled`` plus ``weight`` (double).
    """
    return labelled.withColumn(
        WEIGHT, F.when(F.col(LABEL) == 1.0, F.lit(float(positive_weight))).otherwise(F.lit(1.0))
    )


def balanced_positive_weight(rows: int, positives: int) -> float:
    """Weight of a positive that makes both classes weigh the same (negatives / positives)."""
    if positives <= 0 or positives >= rows:
        raise MlDataError(
            f"churn training needs both classes: {positives} positives among {rows} rows"
        )
    return (rows - positives) / positives


def score_rows(
    scored: DataFrame,
    scores: list[Column],
    *,
    key: str,
    snapshot_column: str,
    model_name: str,
    model_version: int | str,
) -> DataFrame:
    """The rows of a gold score table (churn scores, segments, uplift scores).

    Returns:
        ``snapshot_date`` (date), ``customer_key`` (string), the ``scores`` columns,
        ``model_name`` and ``model_version`` (the registry version as a string, in every
        score table alike).
    """
    return scored.select(
        F.col(snapshot_column).cast("date").alias("snapshot_date"),
        F.col(key).cast("string").alias("customer_key"),
        *scores,
        F.lit(model_name).alias("model_name"),
        F.lit(str(model_version)).alias("model_version"),
    )
