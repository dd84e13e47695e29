"""Uplift models of campaign response: who responds *because* they are contacted.

Training rows come from past campaigns with a randomised control group (holdouts) in
``silver/campaign_contacts``: one row per customer and campaign with its group and whether
the customer responded, joined point in time to the customer's feature snapshot taken
before the campaign's first attempt. Two methods, both on MLlib classifiers:

- ``two_model``: one classifier of response on the treated rows, one on the control rows
  (same preprocessing); uplift = P(respond | treated, x) - P(respond | control, x).
- ``class_transformation`` (Jaskowski & Jaroszewicz 2012): one classifier of
  z = treated responder or control non-responder; with treated and control weighted to
  the same total inside each campaign, uplift = 2 P(z = 1 | x) - 1.

The campaign id is an input (one-hot, like ``ml.uplift.categorical_columns``), so one model
ranks customers for every campaign it was trained on; a campaign it never saw falls in the
extra slot of the campaign block, which no training row used. A fitted model
is one Spark ``PipelineModel`` (registered in MLflow like the other models); which method
it is follows from its output columns, so scoring needs nothing else.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import StringIndexerModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from contactlake.config import MlUpliftConfig
from contactlake.ml.churn import classifier_importance
from contactlake.ml.data import LABEL, WEIGHT, MlDataError, feature_stages, score_rows

CAMPAIGN = "campaign_id"
TREATED = "treated"
VALIDATION = "is_validation"
UPLIFT = "uplift"
P_TREATED = "p_treated"
P_CONTROL = "p_control"
P_RESPONSE = "p_response"
TRANSFORMED_LABEL = "z"
METHODS = ("two_model", "class_transformation")
# classifier role -> probability vector column of its fitted stage
ROLES = {
    "treated": "probability_treated",
    "control": "probability_control",
    "transformed": "probability_transformed",
    "response": "probability_response",
}
METHOD_ROLES = {"two_model": ("treated", "control"), "class_transformation": ("transformed",)}


# ------------------------------------------------------------------ training data
def campaign_summary(contacts: DataFrame) -> DataFrame:
    """One row per campaign of ``silver/campaign_contacts``.

    Args:
        contacts: columns campaign_id, offer, channel, customer_key, group, attempt_date,
            responded.

    Returns:
        Columns campaign_id, offer, channel, first_attempt_date, last_attempt_date
        (holdout rows carry the launch date), treated, control (customers), responders.
    """
    is_treated = F.col("group") == "treatment"
    return contacts.groupBy(CAMPAIGN).agg(
        F.first("offer", ignorenulls=True).alias("offer"),
        F.first("channel", ignorenulls=True).alias("channel"),
        F.min("attempt_date").alias("first_attempt_date"),
        F.max("attempt_date").alias("last_attempt_date"),
        F.countDistinct(F.when(is_treated, F.col("customer_key"))).alias("treated"),
        F.countDistinct(F.when(F.col("group") == "control", F.col("customer_key"))).alias(
            "control"
        ),
        F.countDistinct(F.when(F.col("responded"), F.col("customer_key"))).alias("responders"),
    )


def training_snapshots(
    campaigns: dict[str, tuple[date, date]],
    snapshots: list[date],
    run_date: date,
    *,
    response_days: int,
    max_age_days: int,
    wanted: list[str] = (),
) -> tuple[dict[str, date], dict[str, str]]:
    """The feature snapshot of each campaign usable for training, and why others are not.

    A campaign is usable once its outcome is known (last attempt + ``response_days`` <=
    ``run_date``) and a snapshot exists strictly before its first attempt date, at most
    ``max_age_days`` before it: a snapshot holds data up to the end of its day, so one
    dated on the first attempt day would already see that day's attempts and responses.

    Args:
        campaigns: campaign id -> (first attempt date, last attempt date).
        wanted: only these campaigns (all when empty).

    Returns:
        (campaign -> snapshot, campaign -> reason it is skipped).

    Raises:
        MlDataError: a wanted campaign has no attempts at all.
    """
    unknown = sorted(set(wanted) - set(campaigns))
    if unknown:
        raise MlDataError(f"ml.uplift.campaigns: no attempts of {unknown} in the campaign table")
    chosen: dict[str, date] = {}
    skipped: dict[str, str] = {}
    for campaign in sorted(wanted or campaigns):
        first, last = campaigns[campaign]
        if first is None or last is None:
            skipped[campaign] = "no attempt dates"
            continue
        if last + timedelta(days=response_days) > run_date:
            skipped[campaign] = (
                f"outcome not known by {run_date} (last attempt {last} + {response_days} days)"
            )
            continue
        before = [s for s in snapshots if s < first]
        if not before:
            skipped[campaign] = f"no feature snapshot before its first attempt {first}"
            continue
        snapshot = max(before)
        if (first - snapshot).days > max_age_days:
            skipped[campaign] = (
                f"the latest feature snapshot before its first attempt {first} is {snapshot}, "
                f"more than {max_age_days} days earlier"
            )
            continue
        chosen[campaign] = snapshot
    return chosen, skipped


def campaign_outcomes(contacts: DataFrame) -> DataFrame:
    """One row per customer and campaign: the group and whether the customer responded.

    Args:
        contacts: ``silver/campaign_contacts`` (campaign_id, customer_key, group,
            responded); a treated customer has a row per attempt, a control one a holdout.

    Returns:
        Columns campaign_id, customer_key, treated (1.0 treatment, 0.0 control), label (1.0
        when any row says responded). Rows without a customer key, and customers found in
        both groups of a campaign (not a clean randomisation), are left out.
    """
    is_treated = (F.col("group") == "treatment").cast("int")
    return (
        contacts.where(
            F.col("customer_key").isNotNull() & F.col("group").isin("treatment", "control")
        )
        .groupBy(CAMPAIGN, "customer_key")
        .agg(
            F.max(is_treated).alias("_any"),
            F.min(is_treated).alias("_all"),
            F.max(F.coalesce(F.col("responded"), F.lit(False)).cast("double")).alias(LABEL),
        )
        .where(F.col("_any") == F.col("_all"))
        .select(CAMPAIGN, "customer_key", F.col("_any").cast("double").alias(TREATED), LABEL)
    )


def training_rows(
    outcomes: DataFrame,
    features: DataFrame,
    snapshots: dict[str, date],
    *,
    key: str,
    snapshot_column: str,
) -> DataFrame:
    """Join each outcome to the customer's features at its campaign's snapshot.

    Args:
        outcomes: :func:`campaign_outcomes` rows (campaign_id, customer_key, treated, label).
        features: feature rows (``key``, ``snapshot_column``, feature columns).
        snapshots: campaign -> snapshot (:func:`training_snapshots`); other campaigns are
            dropped.

    Returns:
        One row per customer and campaign: campaign_id, treated, label and every column of
        ``features`` (``key`` holds the customer key). Customers without a row in the
        campaign's snapshot (not yet customers then) are dropped.
    """
    spark = outcomes.sparkSession
    mapping = spark.createDataFrame(
        sorted(snapshots.items()), f"{CAMPAIGN} string, `{snapshot_column}` date"
    )
    keyed = outcomes.withColumnRenamed("customer_key", key).join(F.broadcast(mapping), CAMPAIGN)
    return keyed.join(features, [key, snapshot_column])


def split_by_customer(rows: DataFrame, *, key: str, share: float, seed: int) -> DataFrame:
    """Mark about ``share`` of the customers as validation, all their campaigns with them.

    The split is a hash of the customer key and ``seed``: the same customers every run.

    Returns:
        ``rows`` plus ``is_validation`` (boolean).
    """
    bucket = F.pmod(F.xxhash64(F.col(key).cast("string"), F.lit(seed)), F.lit(10_000))
    return rows.withColumn(VALIDATION, bucket < F.lit(int(round(share * 10_000))))


def with_transformed_target(rows: DataFrame) -> DataFrame:
    """The class-transformation target and weights.

    Args:
        rows: campaign_id, treated, label.

    Returns:
        ``rows`` plus ``z`` (1.0 for a treated responder or a control non-responder) and
        ``weight`` (0.5 / the row's group share of its campaign, so treated and control
        rows weigh the same in every campaign).
    """
    per_campaign = Window.partitionBy(CAMPAIGN)
    treated = F.col(TREATED)
    share_treated = F.avg(treated).over(per_campaign)
    share = F.when(treated == 1.0, share_treated).otherwise(1.0 - share_treated)
    z = treated * F.col(LABEL) + (1.0 - treated) * (1.0 - F.col(LABEL))
    return rows.withColumns({TRANSFORMED_LABEL: z, WEIGHT: F.lit(0.5) / share})


# ------------------------------------------------------------------ models
def classifier(cfg: MlUpliftConfig, role: str):
    """An unfitted MLlib classifier (``cfg.classifier``) whose outputs are named by ``role``
    (one of :data:`ROLES`), so several can sit in one pipeline."""
    if cfg.classifier == "gbt":
        g = cfg.gbt
        clf = GBTClassifier(
            maxIter=g.max_iter,
            maxDepth=g.max_depth,
            stepSize=g.step_size,
            minInstancesPerNode=g.min_instances_per_node,
            subsamplingRate=g.subsampling_rate,
            seed=cfg.seed,
        )
    elif cfg.classifier == "logistic":
        lr = cfg.logistic
        clf = LogisticRegression(
            maxIter=lr.max_iter,
            regParam=lr.reg_param,
            elasticNetParam=lr.elastic_net_param,
            standardization=False,  # the pipeline standardises
        )
    else:
        raise ValueError(f"unknown classifier {cfg.classifier!r}")
    return (
        clf.setFeaturesCol("features")
        .setProbabilityCol(ROLES[role])
        .setRawPredictionCol(f"raw_{role}")
        .setPredictionCol(f"prediction_{role}")
    )


def categorical(cfg: MlUpliftConfig) -> list[str]:
    """The one-hot encoded inputs: the campaign id, then ``cfg.categorical_columns``."""
    return [CAMPAIGN, *(c for c in cfg.categorical_columns if c != CAMPAIGN)]


def fit(method: str, train: DataFrame, features: list[str], cfg: MlUpliftConfig) -> PipelineModel:
    """Fit an uplift model by ``method`` (one of :data:`METHODS`).

    Args:
        train: rows with the ``features`` columns (doubles), campaign_id, the
            ``cfg.categorical_columns`` (strings), treated, label.

    Returns:
        One PipelineModel: shared preprocessing (imputation, one-hot of the campaign and
        the categorical columns, scaling) fitted on all of ``train``, then the method's
        classifier(s).
    """
    if method not in METHODS:
        raise ValueError(f"unknown uplift method {method!r} (one of {METHODS})")
    prep = Pipeline(stages=feature_stages(features, categorical(cfg))).fit(train)
    prepared = prep.transform(train)
    if method == "two_model":
        fitted = [
            classifier(cfg, role).setLabelCol(LABEL).fit(prepared.where(F.col(TREATED) == flag))
            for role, flag in (("treated", 1.0), ("control", 0.0))
        ]
    else:
        fitted = [
            classifier(cfg, "transformed")
            .setLabelCol(TRANSFORMED_LABEL)
            .setWeightCol(WEIGHT)
            .fit(with_transformed_target(prepared))
        ]
    return PipelineModel(stages=[*prep.stages, *fitted])


def fit_response(train: DataFrame, features: list[str], cfg: MlUpliftConfig) -> PipelineModel:
    """A plain response-propensity model: P(respond | x) fitted on the rows given (e.g. the
    treated ones), same inputs and learner as the uplift models. :func:`with_response`
    scores it. A baseline to compare uplift ranking with, not an uplift model."""
    prep = Pipeline(stages=feature_stages(features, categorical(cfg))).fit(train)
    fitted = classifier(cfg, "response").setLabelCol(LABEL).fit(prep.transform(train))
    return PipelineModel(stages=[*prep.stages, fitted])


def _class1(column: str):
    return vector_to_array(F.col(column))[1]


def method_of(model: PipelineModel) -> str:
    """``two_model`` or ``class_transformation``, from the fitted classifiers' outputs."""
    outputs = {s.getProbabilityCol() for s in model.stages if hasattr(s, "getProbabilityCol")}
    for method, roles in METHOD_ROLES.items():
        if {ROLES[r] for r in roles} <= outputs:
            return method
    raise ValueError(f"not an uplift model: classifier outputs {sorted(outputs)}")


def with_uplift(model: PipelineModel, rows: DataFrame) -> DataFrame:
    """Score rows (feature columns and campaign_id).

    Returns:
        ``rows`` plus the model's columns and ``uplift`` (double); a two-model model also
        adds ``p_treated`` and ``p_control``.
    """
    method = method_of(model)
    scored = model.transform(rows)
    if method == "two_model":
        p_t, p_c = _class1(ROLES["treated"]), _class1(ROLES["control"])
        return scored.withColumns({P_TREATED: p_t, P_CONTROL: p_c, UPLIFT: p_t - p_c})
    return scored.withColumn(UPLIFT, 2.0 * _class1(ROLES["transformed"]) - 1.0)


def with_response(model: PipelineModel, rows: DataFrame) -> DataFrame:
    """Score rows with a :func:`fit_response` model: adds ``p_response`` (double)."""
    return model.transform(rows).withColumn(P_RESPONSE, _class1(ROLES["response"]))


def _categories(model: PipelineModel) -> dict[str, list[str]]:
    """Categorical input -> its values seen at fit time (the indexer's labels), in order."""
    for stage in model.stages:
        if isinstance(stage, StringIndexerModel):
            return {
                c: list(v) for c, v in zip(stage.getInputCols(), stage.labelsArray, strict=True)
            }
    return {}


def model_campaigns(model: PipelineModel) -> list[str]:
    """The campaign ids a fitted model was trained on (its campaign indexer's labels)."""
    campaigns = _categories(model).get(CAMPAIGN)
    if campaigns is None:
        raise ValueError("the model has no campaign_id indexer")
    return campaigns


def feature_names(model: PipelineModel, features: list[str], size: int) -> list[str]:
    """Names of the ``size`` entries of the model's feature vector: the numeric features,
    then per categorical input one entry per value and one for unseen values."""
    names = list(features)
    for column, values in _categories(model).items():
        names += [f"{column}={v}" for v in values] + [f"{column}=(unseen)"]
    if len(names) != size:  # not laid out as expected: name the entries by position
        names = [f"input_{i}" for i in range(size)]
    return names


def importances(model: PipelineModel, features: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Feature importance of each classifier of the model, by role (treated, control or
    transformed), largest first."""
    by_output = {column: role for role, column in ROLES.items()}
    return {
        by_output[s.getProbabilityCol()]: classifier_importance(
            s, feature_names(model, features, s.numFeatures)
        )
        for s in model.stages
        if hasattr(s, "getProbabilityCol") and s.getProbabilityCol() in by_output
    }


# ------------------------------------------------------------------ scoring
def campaign_grid(rows: DataFrame, campaigns: list[str]) -> DataFrame:
    """Every row once per campaign: ``rows`` plus campaign_id (string)."""
    ids = rows.sparkSession.createDataFrame([(c,) for c in campaigns], f"{CAMPAIGN} string")
    return rows.drop(CAMPAIGN).crossJoin(F.broadcast(ids))


def uplift_scores(
    scored: DataFrame,
    *,
    key: str,
    snapshot_column: str,
    model_name: str,
    model_version: int,
) -> DataFrame:
    """The rows of gold/uplift_scores from :func:`with_uplift` output.

    Returns:
        Columns snapshot_date, customer_key, campaign_id, uplift, model_name, model_version
        (string), the contract of ``contactlake.publish.SCORE_SOURCES["uplift"]``.
    """
    return score_rows(
        scored,
        [
            F.col(CAMPAIGN).cast("string").alias(CAMPAIGN),
            F.col(UPLIFT).cast("double").alias(UPLIFT),
        ],
        key=key,
        snapshot_column=snapshot_column,
        model_name=model_name,
        model_version=model_version,
    )
