"""Customer segmentation (MLlib) tracked in MLflow: one nested run per candidate k.

    python -m jobs.train_segments --env local --run-date 2026-01-31

Trains on the latest feature snapshot on or before the run date (conf ml.features) over
the columns of ml.segments.feature_columns (else ml.features.feature_columns, else every
numeric column), ln(1 + x) of ml.segments.log_columns, picks k by silhouette (the best of
ml.segments.restarts starts per k), profiles and names the segments (artifacts
segments/profile.csv|json and a chart), registers the model (conf ml.segments.model_name)
as challenger and promotes it to champion when its silhouette beats the champion's on the
same snapshot. When it becomes champion its assignments replace that snapshot in
gold/segments.
"""

from __future__ import annotations

import sys

import mlflow
from pyspark import StorageLevel
from pyspark.sql import functions as F

from contactlake.ml import charts, segments, tracking
from contactlake.ml.data import MlDataError, as_double, feature_columns, latest_snapshot
from contactlake.runner import JobContext, run_job

JOB = "train_segments"


def run(ctx: JobContext) -> None:
    ml, feats = ctx.cfg.ml, ctx.cfg.ml.features
    cfg = ml.segments
    tracking.configure(ctx.cfg.mlflow)
    table = ctx.lake.read(feats.table)
    snapshots = [r[0] for r in table.select(feats.snapshot_column).distinct().collect()]
    snapshot = latest_snapshot(snapshots, ctx.run_date)
    columns = feature_columns(
        table.schema,
        cfg.feature_columns or feats.feature_columns,
        key=feats.key,
        snapshot_column=feats.snapshot_column,
        label_column=ml.churn.label_column,
        exclude=feats.exclude_columns,
        setting="ml.segments.feature_columns"
        if cfg.feature_columns
        else "ml.features.feature_columns",
    )
    not_features = [c for c in cfg.log_columns if c not in columns]
    if not_features:
        raise MlDataError(f"ml.segments.log_columns {not_features} are not segmentation features")
    rows = as_double(table.where(F.col(feats.snapshot_column) == F.lit(snapshot)), columns).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    size = rows.count()
    ctx.rows_in += size
    ctx.log.info("snapshot %s: %d customers, %d features", snapshot, size, len(columns))

    experiment = tracking.experiment_id(cfg.experiment, ctx.cfg.mlflow.artifact_location)
    with mlflow.start_run(experiment_id=experiment, run_name=f"segments {snapshot}"):
        tracking.log_run_context(ctx.lake, ctx.lake.reads, JOB, ctx.run_date)
        mlflow.log_params(
            {
                "algorithm": cfg.algorithm,
                "k_values": ",".join(map(str, cfg.k_values)),
                "max_iter": cfg.max_iter,
                "seed": cfg.seed,
                "restarts": cfg.restarts,
                "impute_strategy": cfg.impute_strategy,
                "log_columns": ",".join(cfg.log_columns),
                "snapshot_date": str(snapshot),
                "feature_table": feats.table,
                "features": ",".join(columns),
                "n_features": len(columns),
            }
        )
        mlflow.log_metric("rows", size)

        scores: dict[int, float] = {}
        models = {}
        for k in cfg.k_values:
            with (
                ctx.stage(f"fit k={k}") as info,
                mlflow.start_run(experiment_id=experiment, run_name=f"k={k}", nested=True),
            ):
                by_seed = {}
                for seed in range(cfg.seed, cfg.seed + cfg.restarts):
                    fitted = segments.build_pipeline(
                        columns,
                        algorithm=cfg.algorithm,
                        k=k,
                        max_iter=cfg.max_iter,
                        seed=seed,
                        impute_strategy=cfg.impute_strategy,
                        log_columns=cfg.log_columns,
                    ).fit(rows)
                    by_seed[seed] = (segments.silhouette(fitted.transform(rows)), fitted)
                    mlflow.log_metric("silhouette_by_seed", by_seed[seed][0], step=seed)
                best_seed = max(by_seed, key=lambda s: (by_seed[s][0], -s))
                scores[k], models[k] = by_seed[best_seed]
                mlflow.log_params({"algorithm": cfg.algorithm, "k": k, "seed": best_seed})
                mlflow.log_metric("silhouette", scores[k])
                info["rows"] = size
            mlflow.log_metric("silhouette_by_k", scores[k], step=k)
        best_k = max(scores, key=lambda k: (scores[k], -k))  # a tie goes to the smaller k
        model = models[best_k]
        mlflow.log_params({"k": best_k})
        mlflow.log_metric("silhouette", scores[best_k])
        tracking.log_figure(
            charts.silhouette_chart(scores, best_k, f"{cfg.algorithm}: silhouette by k"),
            "charts/silhouette.png",
        )

        with ctx.stage("profile") as info:
            assigned = model.transform(rows).persist(StorageLevel.MEMORY_AND_DISK)
            profile = segments.segment_profile(assigned, columns).toPandas()
            names = segments.name_segments(profile.to_dict("records"), cfg.name_features)
            profile.insert(1, "segment_name", profile["segment_id"].map(names))
            tracking.log_table(profile, segments.PROFILE_ARTIFACT)
            tracking.log_figure(
                charts.profile_chart(profile, names, f"segments of {snapshot} (k={best_k})"),
                "charts/segment_profile.png",
            )
            mlflow.log_metrics(
                {"smallest_segment_share": float(profile["share"].min()), "segments": best_k}
            )
            info["rows"] = len(names)
        for segment, name in sorted(names.items()):
            ctx.log.info("segment %d: %s", segment, name)

        with ctx.stage("register"):
            version = tracking.register(model, cfg.model_name)
            promotion = tracking.promote_if_better(
                cfg.model_name,
                version,
                cfg.promote_metric,
                scores[best_k],
                lambda champion: segments.silhouette(champion.transform(rows)),
                lower_is_better=False,
            )

        if promotion.promoted:
            with ctx.stage(f"write {ml.segments_table}") as info:
                out = segments.assignments(
                    assigned,
                    names,
                    key=feats.key,
                    snapshot_column=feats.snapshot_column,
                    model_name=cfg.model_name,
                    model_version=version,
                )
                written = ctx.lake.write(
                    out,
                    ml.segments_table,
                    mode="overwrite",
                    partition_by=["snapshot_date"],
                    replace_where={"snapshot_date": [snapshot.isoformat()]},
                    app_id=ctx.app_id,
                )
                info["rows"] = written.rows_added
                ctx.rows_out += written.rows_added
        else:
            ctx.log.info("v%d stays challenger: %s unchanged", version, ml.segments_table)
        assigned.unpersist()
    rows.unpersist()


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
