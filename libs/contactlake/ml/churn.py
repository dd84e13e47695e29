"""Churn classifiers: logistic regression baseline and gradient-boosted trees, tuned by a
validation split of the train snapshot; scoring to churn probabilities."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.config import MlChurnConfig
from contactlake.ml import tracking
from contactlake.ml.data import LABEL, WEIGHT, feature_stages, score_rows

PROBABILITY = "churn_probability"
# the run param holding the positive-class weight of training: scoring divides the odds by it
POSITIVE_WEIGHT_PARAM = "positive_weight"
MODEL_KINDS = {"logistic": "logistic_regression", "gbt": "gradient_boosted_trees"}


@dataclass
class Tuned:
    """A fitted pipeline, the grid point chosen and its split metric (areaUnderROC)."""

    kind: str
    model: PipelineModel
    params: dict[str, float | int]
    tuning_roc_auc: float | None  # None when the grid has a single point (nothing to choose)


def _classifier_and_grid(kind: str, cfg: MlChurnConfig, weighted: bool):
    if kind == "logistic":
        clf = LogisticRegression(maxIter=cfg.logistic.max_iter, standardization=False)
        grid = {
            clf.regParam: cfg.logistic.reg_param,
            clf.elasticNetParam: cfg.logistic.elastic_net_param,
        }
    elif kind == "gbt":
        clf = GBTClassifier(seed=cfg.seed)
        grid = {
            clf.maxIter: cfg.gbt.max_iter,
            clf.maxDepth: cfg.gbt.max_depth,
            clf.stepSize: cfg.gbt.step_size,
        }
    else:
        raise ValueError(f"unknown churn model {kind!r}")
    clf = clf.setFeaturesCol("features").setLabelCol(LABEL)
    if weighted:
        clf = clf.setWeightCol(WEIGHT)
    return clf, grid


def build_pipeline(features: list[str], classifier) -> Pipeline:
    """Median imputation -> VectorAssembler -> StandardScaler -> ``classifier``.

    The fitted model adds ``probability`` (vector) and ``prediction`` to rows with the
    ``features`` columns.
    """
    return Pipeline(stages=[*feature_stages(features), classifier])


def tune(
    kind: str, train: DataFrame, features: list[str], cfg: MlChurnConfig, weighted: bool
) -> Tuned:
    """Fit ``kind`` ("logistic" or "gbt") on ``train`` (features, ``label``, ``weight``).

    A grid of more than one point is tuned with a TrainValidationSplit of ``train``
    (areaUnderROC, weighted when ``weighted``); the best point is refitted on all of it.
    """
    clf, grid = _classifier_and_grid(kind, cfg, weighted)
    pipeline = build_pipeline(features, clf)
    names = [p.name for p in grid]
    points = list(itertools.product(*grid.values()))
    if len(points) == 1:
        params = dict(zip(grid, points[0], strict=True))
        model = pipeline.fit(train, params)
        return Tuned(kind, model, dict(zip(names, points[0], strict=True)), None)
    builder = ParamGridBuilder()
    for param, values in grid.items():
        builder = builder.addGrid(param, values)
    maps = builder.build()
    evaluator = BinaryClassificationEvaluator(
        rawPredictionCol="probability", labelCol=LABEL, metricName="areaUnderROC"
    )
    if weighted:
        evaluator = evaluator.setWeightCol(WEIGHT)
    split = TrainValidationSplit(
        estimator=pipeline,
        estimatorParamMaps=maps,
        evaluator=evaluator,
        trainRatio=cfg.tuning_train_ratio,
        seed=cfg.seed,
    ).fit(train)
    best = max(range(len(maps)), key=lambda i: split.validationMetrics[i])
    chosen = {p.name: maps[best][p] for p in grid}
    return Tuned(kind, split.bestModel, chosen, float(split.validationMetrics[best]))


def prior_corrected(probability: F.Column, positive_weight: float) -> F.Column:
    """The probability of a model trained with positives weighted ``positive_weight``, on
    the population's scale: the weights inflate the odds by that factor, so divide them by it
    (prior correction, King and Zeng 2001). Order, hence ROC AUC and lift, is unchanged.
    """
    if positive_weight == 1.0:
        return probability
    w = F.lit(float(positive_weight))
    return probability / (probability + w * (F.lit(1.0) - probability))


def trained_positive_weight(run_id: str) -> float:
    """The positive-class weight the model of MLflow run ``run_id`` was trained with: the
    weight :func:`with_probability` corrects for (1.0, no correction, when not logged)."""
    return tracking.float_param(run_id, POSITIVE_WEIGHT_PARAM, 1.0)


def with_probability(
    model: PipelineModel, rows: DataFrame, positive_weight: float = 1.0
) -> DataFrame:
    """Score rows: adds ``churn_probability`` (double, probability of class 1), corrected
    for the positive-class weight the model was trained with (:func:`prior_corrected`)."""
    scored = model.transform(rows)
    raw = vector_to_array(F.col("probability"))[1]
    return scored.withColumn(PROBABILITY, prior_corrected(raw, positive_weight))


def feature_importance(model: PipelineModel, features: list[str]) -> list[tuple[str, float]]:
    """Importance per feature, largest first: GBT feature importances, or the absolute
    coefficients of the logistic regression (on standardised features, so comparable)."""
    return classifier_importance(model.stages[-1], features)


def classifier_importance(fitted, names: list[str]) -> list[tuple[str, float]]:
    """Importance per input of a fitted MLlib classifier (tree importances or absolute
    coefficients), largest first; ``names`` name the entries of its feature vector."""
    if hasattr(fitted, "featureImportances"):
        values = fitted.featureImportances.toArray()
    else:
        values = [abs(v) for v in fitted.coefficients.toArray()]
    return sorted(zip(names, map(float, values), strict=True), key=lambda fv: -fv[1])


def churn_scores(
    scored: DataFrame,
    *,
    key: str,
    snapshot_column: str,
    model_name: str,
    model_version: int,
) -> DataFrame:
    """The rows of gold/churn_scores from :func:`with_probability` output.

    Returns:
        Columns snapshot_date, customer_key, churn_probability, model_name, model_version.
    """
    return score_rows(
        scored,
        [F.col(PROBABILITY).cast("double").alias(PROBABILITY)],
        key=key,
        snapshot_column=snapshot_column,
        model_name=model_name,
        model_version=model_version,
    )
