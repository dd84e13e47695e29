"""Churn models (MLlib) tracked in MLflow: logistic regression baseline and gradient-boosted
trees, trained on an earlier snapshot and validated on a later one.

    python -m jobs.train_churn --env local --run-date 2026-03-31

Features: ml.churn.feature_columns, else ml.features.feature_columns, else every numeric
column. Label (conf ml.churn): a customer churns when a cancelled subscription period ends
within horizon_days after the snapshot (silver/subscriptions), or a 0/1 label column of the
feature table. The validation snapshot is the latest whose outcome is known by the run date; the
train snapshot's outcome is known by the validation snapshot, so nothing leaks. Each model is
a nested run with the same metric names; the better one on the validation snapshot is
registered (challenger) and promoted to champion if it beats the champion re-scored there.
"""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.ml import charts, churn, data, metrics, tracking
from contactlake.runner import JobContext, run_job

JOB = "train_churn"


def _labelled(ctx: JobContext, features: DataFrame) -> DataFrame:
    cfg, feats = ctx.cfg.ml.churn, ctx.cfg.ml.features
    if cfg.label_column:
        return data.label_from_column(features, cfg.label_column)
    return data.churn_labels(
        features,
        ctx.lake.read(cfg.label_table),
        key=feats.key,
        snapshot_column=feats.snapshot_column,
        horizon_days=cfg.horizon_days,
        active_only=cfg.active_only,
    )


def _evaluate(model, validation: DataFrame, bins: int, positive_weight: float) -> dict:
    """Validation metrics (one small collected row) and the tables behind the charts."""
    scored = churn.with_probability(model, validation, positive_weight).select(
        data.LABEL, churn.PROBABILITY
    )
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    label, prob = data.LABEL, churn.PROBABILITY
    # collect, not first(): take() would rerun the cross-joined plan partition by partition
    values = metrics.binary_metrics(scored, label, prob, bins).collect()[0].asDict()
    result = {
        "metrics": {m: float(values[m]) for m in metrics.METRIC_NAMES if values[m] is not None},
        "roc": metrics.roc_points(scored, label, prob).toPandas(),
        "lift": metrics.lift_table(scored, label, prob, 10).toPandas(),
        "calibration": metrics.calibration_bins(scored, label, prob, bins).toPandas(),
        "base_rate": float(values["positives"]) / max(int(values["rows"]), 1),
    }
    scored.unpersist()
    return result


def _log_evaluation(title: str, evaluation: dict, importances: list[tuple[str, float]]) -> None:
    """Same metric and artifact names on every run, so runs compare side by side."""
    m = evaluation["metrics"]
    mlflow.log_metrics(m)
    tracking.log_table(evaluation["calibration"], "evaluation/calibration")
    tracking.log_table(evaluation["lift"], "evaluation/lift")
    figures = {
        "charts/roc.png": charts.roc_chart(evaluation["roc"], m.get("roc_auc", 0.0), title),
        "charts/pr.png": charts.pr_chart(
            evaluation["roc"], m.get("pr_auc", 0.0), evaluation["base_rate"], title
        ),
        "charts/lift.png": charts.lift_chart(evaluation["lift"], title),
        "charts/calibration.png": charts.calibration_chart(evaluation["calibration"], title),
        "charts/feature_importance.png": charts.importance_chart(importances, title),
    }
    for path, figure in figures.items():
        tracking.log_figure(figure, path)
    tracking.log_table(
        pd.DataFrame(importances, columns=["feature", "importance"]),
        "evaluation/feature_importance",
    )


def run(ctx: JobContext) -> None:
    cfg, feats = ctx.cfg.ml.churn, ctx.cfg.ml.features
    tracking.configure(ctx.cfg.mlflow)
    table = ctx.lake.read(feats.table)
    snapshots = [r[0] for r in table.select(feats.snapshot_column).distinct().collect()]
    train_snapshot, validation_snapshot = data.churn_snapshots(
        snapshots,
        ctx.run_date,
        cfg.horizon_days,
        train=cfg.train_snapshot,
        validation=cfg.validation_snapshot,
    )
    columns = data.feature_columns(
        table.schema,
        cfg.feature_columns or feats.feature_columns,
        key=feats.key,
        snapshot_column=feats.snapshot_column,
        label_column=cfg.label_column,
        exclude=feats.exclude_columns,
        setting="ml.churn.feature_columns"
        if cfg.feature_columns
        else "ml.features.feature_columns",
    )
    ctx.log.info(
        "train snapshot %s, validation snapshot %s, %d features",
        train_snapshot,
        validation_snapshot,
        len(columns),
    )
    with ctx.stage("labels") as info:
        both = table.where(F.col(feats.snapshot_column).isin(train_snapshot, validation_snapshot))
        both = data.as_double(both, columns)
        labelled = _labelled(ctx, both)
        sizes = {
            r[0]: (int(r[1]), int(r[2] or 0))
            for r in labelled.groupBy(feats.snapshot_column)
            .agg(F.count("*"), F.sum(data.LABEL))
            .collect()
        }
        (train_rows, train_pos) = sizes.get(train_snapshot, (0, 0))
        (valid_rows, valid_pos) = sizes.get(validation_snapshot, (0, 0))
        weight = (
            data.balanced_positive_weight(train_rows, train_pos)
            if cfg.class_weight == "balanced"
            else 1.0
        )
        if valid_pos <= 0 or valid_pos >= valid_rows:
            raise data.MlDataError(
                f"validation snapshot {validation_snapshot} needs both classes: "
                f"{valid_pos} churners among {valid_rows}"
            )
        labelled = data.with_class_weights(labelled, weight)
        train = labelled.where(F.col(feats.snapshot_column) == F.lit(train_snapshot)).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        validation = labelled.where(
            F.col(feats.snapshot_column) == F.lit(validation_snapshot)
        ).persist(StorageLevel.MEMORY_AND_DISK)
        info["rows"] = train_rows + valid_rows
        ctx.rows_in += train_rows + valid_rows

    experiment = tracking.experiment_id(cfg.experiment, ctx.cfg.mlflow.artifact_location)
    weighted = cfg.class_weight == "balanced"
    with mlflow.start_run(experiment_id=experiment, run_name=f"churn {validation_snapshot}"):
        tracking.log_run_context(ctx.lake, ctx.lake.reads, JOB, ctx.run_date)
        common_params = {
            "feature_table": feats.table,
            "label": cfg.label_column or f"{cfg.label_table} cancelled within horizon",
            "horizon_days": cfg.horizon_days,
            "active_only": cfg.active_only,
            "train_snapshot": str(train_snapshot),
            "validation_snapshot": str(validation_snapshot),
            "class_weight": cfg.class_weight,
            churn.POSITIVE_WEIGHT_PARAM: weight,
            "features": ",".join(columns),
            "n_features": len(columns),
        }
        sizes_metrics = {
            "rows_train": train_rows,
            "positives_train": train_pos,
            "rows_validation": valid_rows,
            "positives_validation": valid_pos,
        }
        mlflow.log_params(common_params)
        mlflow.log_metrics(sizes_metrics)

        results = {}
        for kind in cfg.models:
            with (
                ctx.stage(f"train {kind}") as info,
                mlflow.start_run(
                    experiment_id=experiment, run_name=churn.MODEL_KINDS[kind], nested=True
                ),
            ):
                tuned = churn.tune(kind, train, columns, cfg, weighted)
                evaluation = _evaluate(tuned.model, validation, cfg.calibration_bins, weight)
                importances = churn.feature_importance(tuned.model, columns)
                mlflow.log_params({**common_params, "model": kind, **tuned.params})
                mlflow.log_metrics(sizes_metrics)
                if tuned.tuning_roc_auc is not None:
                    mlflow.log_metric("tuning_roc_auc", tuned.tuning_roc_auc)
                _log_evaluation(churn.MODEL_KINDS[kind], evaluation, importances)
                results[kind] = (tuned, evaluation, importances)
                info["rows"] = train_rows
                ctx.log.info("%s: %s", kind, evaluation["metrics"])

        lower = cfg.promote_metric in metrics.LOWER_IS_BETTER
        pick = min if lower else max
        best = pick(results, key=lambda k: results[k][1]["metrics"][cfg.promote_metric])
        tuned, evaluation, importances = results[best]
        mlflow.log_params({"model": best, **{f"{best}.{k}": v for k, v in tuned.params.items()}})
        _log_evaluation(f"{churn.MODEL_KINDS[best]} (best)", evaluation, importances)

        with ctx.stage("register"):
            version = tracking.register(tuned.model, cfg.model_name)

            def score_champion(model) -> float:
                # the champion's probabilities corrected for the weight it was trained with
                trained_with = churn.trained_positive_weight(
                    tracking.champion(cfg.model_name).run_id
                )
                scored = churn.with_probability(model, validation, trained_with)
                return metrics.binary_metrics(
                    scored, data.LABEL, churn.PROBABILITY, cfg.calibration_bins
                ).collect()[0][cfg.promote_metric]

            tracking.promote_if_better(
                cfg.model_name,
                version,
                cfg.promote_metric,
                evaluation["metrics"][cfg.promote_metric],
                score_champion,
                lower_is_better=lower,
            )
    train.unpersist()
    validation.unpersist()


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
