"""Uplift models of campaign response (MLlib) tracked in MLflow: two-model and class
transformation, trained on past campaigns' treatment and control groups.

    python -m jobs.train_uplift --env local --run-date 2026-01-03

Training rows (contactlake.ml.uplift): one per customer and campaign of
``ml.uplift.campaigns_table`` whose outcome is known by the run date, with the customer's
features at the latest snapshot *before* the campaign's first attempt (no data from the
campaign or after it), and whether the customer responded. Inputs: the numeric feature
columns (ml.features), and one-hot the campaign id and ``ml.uplift.categorical_columns``.

Validation: a random split by customer (``ml.uplift.validation_share``, a hash of the
customer key, so the same customers every run; all of a customer's campaigns go to the
same side). Not a later campaign: campaigns differ in offer and channel, the model scores
campaigns it has history for, and the question asked of it is which customers of such a
campaign to contact; a later campaign would measure transfer to an offer it never saw.
Metrics are computed inside each campaign (rankings are used per campaign) and averaged
over campaigns weighted by validation rows: qini_coefficient, auuc, uplift_at_10/20/30,
plus each campaign's own as ``<metric>.<campaign_id>``.

Each method is a nested run with the same metric names; the better one on the validation
customers is registered (challenger) and promoted to champion if it beats the champion
re-scored on the same rows. Scoring is jobs.score (``ml.score.models`` lists ``uplift``),
which writes ``ml.uplift_scores_table`` for the audiences ranked by uplift.
"""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.ml import charts, data, metrics, tracking, uplift
from contactlake.runner import JobContext, run_job

JOB = "train_uplift"
BY = [uplift.CAMPAIGN]


def _weighted(per_campaign: list[dict], name: str) -> float | None:
    """Mean of a per-campaign metric weighted by the campaign's validation rows."""
    pairs = [(r[name], r["rows"]) for r in per_campaign if r[name] is not None]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _evaluate(model, validation: DataFrame, cfg) -> dict:
    """Per-campaign metrics (a few collected rows), their weighted means, and the tables
    behind the charts."""
    scored = uplift.with_uplift(model, validation).select(
        uplift.CAMPAIGN, uplift.TREATED, data.LABEL, uplift.UPLIFT
    )
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    args = (scored, uplift.TREATED, data.LABEL, uplift.UPLIFT)
    per_campaign = [r.asDict() for r in metrics.uplift_metrics(*args, by=BY).collect()]
    summary = {m: _weighted(per_campaign, m) for m in (*metrics.UPLIFT_METRIC_NAMES, "ate")}
    by_campaign = {
        f"{m}.{r[uplift.CAMPAIGN]}": float(r[m])
        for r in per_campaign
        for m in (*metrics.UPLIFT_METRIC_NAMES, "ate")
        if r[m] is not None
    }
    result = {
        "metrics": {m: float(v) for m, v in summary.items() if v is not None},
        "by_campaign_metrics": by_campaign,
        "by_campaign": pd.DataFrame(per_campaign).sort_values(uplift.CAMPAIGN),
        "qini": metrics.uplift_at(*args, bins=cfg.curve_points, by=BY).toPandas(),
        "deciles": metrics.uplift_at(*args, bins=10, by=BY).toPandas(),
    }
    scored.unpersist()
    return result


def _log_evaluation(title: str, evaluation: dict, importances: dict) -> None:
    """Same metric and artifact names on every run of a method, so runs compare."""
    mlflow.log_metrics({**evaluation["metrics"], **evaluation["by_campaign_metrics"]})
    tracking.log_table(evaluation["by_campaign"], "evaluation/metrics_by_campaign")
    tracking.log_table(evaluation["qini"], "evaluation/qini")
    tracking.log_table(evaluation["deciles"], "evaluation/uplift_deciles")
    tracking.log_figure(charts.qini_chart(evaluation["qini"], title), "charts/qini.png")
    tracking.log_figure(
        charts.uplift_deciles_chart(evaluation["deciles"], title), "charts/uplift_deciles.png"
    )
    for role, values in importances.items():
        tracking.log_figure(
            charts.importance_chart(values, f"{title}: {role} classifier"),
            f"charts/feature_importance_{role}.png",
        )
        tracking.log_table(
            pd.DataFrame(values, columns=["feature", "importance"]),
            f"evaluation/feature_importance_{role}",
        )


def _sizes(rows: DataFrame) -> dict[tuple[str, bool, float], tuple[int, int]]:
    """(campaign, validation side, treated) -> (rows, responders): one small collect."""
    return {
        (r[0], bool(r[1]), float(r[2])): (int(r[3]), int(r[4] or 0))
        for r in rows.groupBy(uplift.CAMPAIGN, uplift.VALIDATION, uplift.TREATED)
        .agg(F.count("*"), F.sum(data.LABEL))
        .collect()
    }


def run(ctx: JobContext) -> None:
    cfg, feats = ctx.cfg.ml.uplift, ctx.cfg.ml.features
    tracking.configure(ctx.cfg.mlflow)
    contacts = ctx.lake.read(cfg.campaigns_table)
    campaigns = {
        r[uplift.CAMPAIGN]: r.asDict() for r in uplift.campaign_summary(contacts).collect()
    }
    table = ctx.lake.read(feats.table)
    snapshots = [r[0] for r in table.select(feats.snapshot_column).distinct().collect()]
    chosen, skipped = uplift.training_snapshots(
        {c: (r["first_attempt_date"], r["last_attempt_date"]) for c, r in campaigns.items()},
        snapshots,
        ctx.run_date,
        response_days=cfg.response_days,
        max_age_days=cfg.max_snapshot_age_days,
        wanted=cfg.campaigns,
    )
    for campaign, reason in skipped.items():
        ctx.log.warning("campaign %s not used: %s", campaign, reason)
    if not chosen:
        raise data.MlDataError(
            f"no campaign to train on ({len(campaigns)} in {cfg.campaigns_table}: "
            f"{skipped or 'none'}); a campaign needs a feature snapshot before its first "
            "attempt (features.extra_snapshots computes missing ones)"
        )
    columns = data.feature_columns(
        table.schema,
        feats.feature_columns,
        key=feats.key,
        snapshot_column=feats.snapshot_column,
        exclude=feats.exclude_columns,
    )
    types = dict(table.dtypes)
    bad = [c for c in cfg.categorical_columns if types.get(c) != "string"]
    if bad:
        raise data.MlDataError(
            f"ml.uplift.categorical_columns: {bad} are not string columns of {feats.table}"
        )
    ctx.log.info(
        "campaigns %s, %d features",
        ", ".join(f"{c} (snapshot {s})" for c, s in chosen.items()),
        len(columns),
    )

    with ctx.stage("training rows") as info:
        features = data.as_double(
            table.where(F.col(feats.snapshot_column).isin(sorted(set(chosen.values())))),
            columns,
        )
        rows = uplift.training_rows(
            uplift.campaign_outcomes(contacts),
            features,
            chosen,
            key=feats.key,
            snapshot_column=feats.snapshot_column,
        )
        rows = uplift.split_by_customer(
            rows, key=feats.key, share=cfg.validation_share, seed=cfg.seed
        ).persist(StorageLevel.MEMORY_AND_DISK)
        sizes = _sizes(rows)
        thin = sorted(
            f"{c} {'validation' if side else 'train'} {'treated' if t else 'control'}: {n}"
            for c in chosen
            for side in (False, True)
            for t in (1.0, 0.0)
            if (n := sizes.get((c, side, t), (0, 0))[0]) < cfg.min_group_rows
        )
        if thin:
            raise data.MlDataError(
                f"fewer than ml.uplift.min_group_rows={cfg.min_group_rows} rows: {thin}"
            )
        train = rows.where(~F.col(uplift.VALIDATION))
        validation = rows.where(F.col(uplift.VALIDATION))

        def total(side: bool, treated: float | None = None, index: int = 0) -> int:
            return sum(
                v[index]
                for (_, s, t), v in sizes.items()
                if s == side and (treated is None or t == treated)
            )

        sizes_metrics = {
            "rows_train": total(False),
            "treated_train": total(False, 1.0),
            "control_train": total(False, 0.0),
            "responders_train": total(False, index=1),
            "rows_validation": total(True),
            "treated_validation": total(True, 1.0),
            "control_validation": total(True, 0.0),
            "responders_validation": total(True, index=1),
            "campaigns": len(chosen),
        }
        info["rows"] = sizes_metrics["rows_train"] + sizes_metrics["rows_validation"]
        ctx.rows_in += info["rows"]

    experiment = tracking.experiment_id(cfg.experiment, ctx.cfg.mlflow.artifact_location)
    classifier_params = (cfg.gbt if cfg.classifier == "gbt" else cfg.logistic).model_dump()
    with mlflow.start_run(experiment_id=experiment, run_name=f"uplift {ctx.run_date}"):
        tracking.log_run_context(ctx.lake, ctx.lake.reads, JOB, ctx.run_date)
        common_params = {
            "feature_table": feats.table,
            "campaigns_table": cfg.campaigns_table,
            "campaigns": ",".join(chosen),
            **{f"snapshot.{c}": str(s) for c, s in chosen.items()},
            "skipped_campaigns": ",".join(skipped) or "none",
            "response_days": cfg.response_days,
            "classifier": cfg.classifier,
            **{f"{cfg.classifier}.{k}": v for k, v in classifier_params.items()},
            "validation": "random split by customer",
            "validation_share": cfg.validation_share,
            "seed": cfg.seed,
            "features": ",".join(columns),
            "n_features": len(columns),
            "categorical_columns": ",".join(cfg.categorical_columns) or "none",
        }
        mlflow.log_params(common_params)
        mlflow.log_metrics(sizes_metrics)

        results = {}
        for method in cfg.methods:
            with (
                ctx.stage(f"train {method}") as info,
                mlflow.start_run(experiment_id=experiment, run_name=method, nested=True),
            ):
                model = uplift.fit(method, train, columns, cfg)
                evaluation = _evaluate(model, validation, cfg)
                importances = uplift.importances(model, columns)
                mlflow.log_params({**common_params, "method": method})
                mlflow.log_metrics(sizes_metrics)
                _log_evaluation(method, evaluation, importances)
                results[method] = (model, evaluation, importances)
                info["rows"] = sizes_metrics["rows_train"]
                ctx.log.info("%s: %s", method, evaluation["metrics"])

        metric = cfg.promote_metric

        def value(method: str) -> float:
            return results[method][1]["metrics"].get(metric, float("-inf"))

        best = max(results, key=value)
        model, evaluation, importances = results[best]
        if metric not in evaluation["metrics"]:
            raise data.MlDataError(f"{metric} could not be computed on the validation rows")
        mlflow.log_param("method", best)
        _log_evaluation(f"{best} (best)", evaluation, importances)

        with ctx.stage("register"):
            version = tracking.register(model, cfg.model_name)

            def score_champion(champion) -> float:
                return _evaluate(champion, validation, cfg)["metrics"][metric]

            tracking.promote_if_better(
                cfg.model_name,
                version,
                metric,
                evaluation["metrics"][metric],
                score_champion,
                lower_is_better=False,
            )
    rows.unpersist()


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
