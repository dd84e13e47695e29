"""Customer segmentation: impute, log-transform heavy tails, assemble, scale, cluster;
profiles and readable names."""

from __future__ import annotations

from pyspark.ml import Pipeline
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.ml.data import score_rows

FEATURES = "features"  # scaled feature vector the clusterer sees
SEGMENT = "segment_id"
PROFILE_ARTIFACT = "segments/profile"  # .csv and .json on the run of every segments model
IMPUTED = "__imputed"  # suffix of the imputed copy of a feature
LOGGED = "__log1p"  # suffix of the log1p of the imputed copy (log columns)
# A feature this many population standard deviations from the mean is "high"/"low".
NOTABLE_Z = 0.25


def imputed(column: str) -> str:
    return f"{column}{IMPUTED}"


def logged(column: str) -> str:
    return f"{column}{LOGGED}"


def log_transformer(columns: list[str]) -> SQLTransformer:
    """Adds ``<c>__log1p`` = ln(1 + max(<c>__imputed, 0)) for each column.

    For heavy-tailed counts and amounts (contacts, fees, tenure): one customer with 200
    calls would otherwise be a cluster of their own, and scaling by the standard deviation
    would squash everyone else. Negative values (not expected in such columns) count as 0.
    """
    terms = ", ".join(
        f"log1p(greatest(CAST(`{imputed(c)}` AS DOUBLE), 0D)) AS `{logged(c)}`" for c in columns
    )
    return SQLTransformer(statement=f"SELECT *, {terms} FROM __THIS__")


def build_pipeline(
    features: list[str],
    *,
    algorithm: str,
    k: int,
    max_iter: int,
    seed: int,
    impute_strategy: str,
    log_columns: list[str] = (),
) -> Pipeline:
    """Imputer -> (log1p of ``log_columns``) -> VectorAssembler -> StandardScaler ->
    KMeans | BisectingKMeans | GaussianMixture.

    The Imputer stays the first stage (:func:`contactlake.ml.data.model_inputs` reads its
    input columns). The fitted model adds ``segment_id`` (int) and ``features`` (scaled
    vector) to rows with the ``features`` columns.

    Raises:
        ValueError: an unknown algorithm, or a log column that is not a feature.
    """
    unknown = [c for c in log_columns if c not in features]
    if unknown:
        raise ValueError(f"log columns {unknown} are not segmentation features")
    clusterers = {
        "kmeans": lambda: KMeans(k=k, maxIter=max_iter, seed=seed),
        "bisecting_kmeans": lambda: BisectingKMeans(k=k, maxIter=max_iter, seed=seed),
        "gaussian_mixture": lambda: GaussianMixture(
            k=k, maxIter=max_iter, seed=seed, probabilityCol="segment_probability"
        ),
    }
    if algorithm not in clusterers:
        raise ValueError(f"unknown segmentation algorithm {algorithm!r}")
    clusterer = clusterers[algorithm]().setFeaturesCol(FEATURES).setPredictionCol(SEGMENT)
    logs = set(log_columns)
    imputer = Imputer(
        inputCols=features, outputCols=[imputed(c) for c in features], strategy=impute_strategy
    )
    inputs = [logged(c) if c in logs else imputed(c) for c in features]
    return Pipeline(
        stages=[
            imputer,
            *([log_transformer([c for c in features if c in logs])] if logs else []),
            VectorAssembler(inputCols=inputs, outputCol="features_raw"),
            # Scale only, no centring: distances are the same either way, and BisectingKMeans
            # splits a cluster by perturbing its centre relative to its norm, so a root
            # centre of exactly 0 (mean-centred data) would never split.
            StandardScaler(
                inputCol="features_raw", outputCol=FEATURES, withMean=False, withStd=True
            ),
            clusterer,
        ]
    )


def silhouette(assigned: DataFrame) -> float:
    """Silhouette (squared Euclidean) of ``segment_id`` over the scaled ``features`` (runs a job)."""
    evaluator = ClusteringEvaluator(featuresCol=FEATURES, predictionCol=SEGMENT)
    return float(evaluator.evaluate(assigned))


def segment_profile(assigned: DataFrame, features: list[str]) -> DataFrame:
    """Per segment and feature: mean against the population, as a z-score.

    Args:
        assigned: rows with ``segment_id`` and the imputed feature columns of the pipeline.

    Returns:
        Columns segment_id, size, share, feature, segment_mean, population_mean,
        population_std, z ((segment_mean - population_mean) / population_std, 0 if std is 0).
    """
    values = F.array(
        *[F.struct(F.lit(c).alias("feature"), F.col(imputed(c)).alias("value")) for c in features]
    )
    long = assigned.select(SEGMENT, F.explode(values).alias("fv")).select(
        SEGMENT, "fv.feature", "fv.value"
    )
    population = long.groupBy("feature").agg(
        F.avg("value").alias("population_mean"),
        F.stddev_pop("value").alias("population_std"),
        F.count("*").alias("population_size"),
    )
    by_segment = long.groupBy(SEGMENT, "feature").agg(
        F.avg("value").alias("segment_mean"), F.count("*").alias("size")
    )
    z = F.when(
        F.col("population_std") > 0,
        (F.col("segment_mean") - F.col("population_mean")) / F.col("population_std"),
    ).otherwise(F.lit(0.0))
    return (
        by_segment.join(population, "feature")
        .select(
            SEGMENT,
            "size",
            (F.col("size") / F.col("population_size")).alias("share"),
            "feature",
            "segment_mean",
            "population_mean",
            "population_std",
            z.alias("z"),
        )
        .orderBy(SEGMENT, "feature")
    )


def name_segments(profile: list[dict], top: int) -> dict[int, str]:
    """A readable name per segment from its ``top`` most distinctive features.

    Args:
        profile: rows of :func:`segment_profile` (segment_id, feature, z).

    Returns:
        segment_id -> e.g. "high voice_contacts_30d, low tenure_days"; "average" when no
        feature is at least 0.25 standard deviations off; names made unique with " #<id>".
    """
    by_segment: dict[int, list[dict]] = {}
    for row in profile:
        by_segment.setdefault(int(row[SEGMENT]), []).append(row)
    names: dict[int, str] = {}
    for segment, rows in sorted(by_segment.items()):
        notable = sorted(
            (r for r in rows if abs(r["z"]) >= NOTABLE_Z),
            key=lambda r: (-abs(r["z"]), r["feature"]),
        )[:top]
        parts = [f"{'high' if r['z'] > 0 else 'low'} {r['feature']}" for r in notable]
        names[segment] = ", ".join(parts) or "average"
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {s: (n if seen[n] == 1 else f"{n} #{s}") for s, n in names.items()}


def assignments(
    assigned: DataFrame,
    names: dict[int, str],
    *,
    key: str,
    snapshot_column: str,
    model_name: str,
    model_version: int,
) -> DataFrame:
    """The rows of gold/segments.

    Returns:
        Columns snapshot_date, customer_key, segment_id, segment_name, model_name,
        model_version (the registry version, a string like the other score tables).
    """
    mapping = F.create_map(*[F.lit(x) for pair in sorted(names.items()) for x in pair])
    return score_rows(
        assigned,
        [
            F.col(SEGMENT).cast("int").alias("segment_id"),
            mapping[F.col(SEGMENT)].alias("segment_name"),
        ],
        key=key,
        snapshot_column=snapshot_column,
        model_name=model_name,
        model_version=model_version,
    )
