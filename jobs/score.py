"""Batch scoring with the champion models: gold/churn_scores, gold/segments and
gold/uplift_scores.

    python -m jobs.score --env local --run-date 2026-03-31

Loads ``models:/<model_name>@champion`` for each model of conf ml.score.models, scores the
feature snapshot of the run date (the latest on or before it, or ml.score.snapshot_date) and
replaces that snapshot's partition, so a re-run never duplicates rows. Every row carries the
model name and version that produced it.

Uplift is scored for every customer of the snapshot once per campaign: the campaigns of
``ml.uplift.score_campaigns``, or (empty) every campaign the champion was trained on, which
are the campaigns with a treatment/control history; an audience of any other campaign has
no uplift to rank by (jobs.publish then orders it at random).
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from contactlake.ml import churn, segments, tracking, uplift
from contactlake.ml.data import MlDataError, as_double, latest_snapshot, model_inputs
from contactlake.runner import JobContext, run_job

JOB = "score"


def run(ctx: JobContext) -> None:
    ml, feats = ctx.cfg.ml, ctx.cfg.ml.features
    tracking.configure(ctx.cfg.mlflow)
    # Models first: a missing champion fails the job before any work.
    champions = {}
    model_names = {
        "churn": ml.churn.model_name,
        "segments": ml.segments.model_name,
        "uplift": ml.uplift.model_name,
    }
    for kind in ml.score.models:
        name = model_names[kind]
        version, run_id, model = tracking.load_champion(name)
        champions[kind] = (name, version, run_id, model)
        ctx.log.info("%s: models:/%s@champion is v%d", kind, name, version)

    table = ctx.lake.read(feats.table)
    snapshot = ml.score.snapshot_date or latest_snapshot(
        [r[0] for r in table.select(feats.snapshot_column).distinct().collect()], ctx.run_date
    )
    rows = table.where(F.col(feats.snapshot_column) == F.lit(snapshot))
    ids = {"key": feats.key, "snapshot_column": feats.snapshot_column}

    outputs = {}
    if "churn" in champions:
        name, version, run_id, model = champions["churn"]
        trained_with = churn.trained_positive_weight(run_id)
        scored = churn.with_probability(model, as_double(rows, model_inputs(model)), trained_with)
        outputs[ml.churn_scores_table] = churn.churn_scores(
            scored, model_name=name, model_version=version, **ids
        )
    if "segments" in champions:
        name, version, run_id, model = champions["segments"]
        # Names as profiled at training (the profile artifact of the model's run).
        profile = tracking.load_json_artifact(run_id, f"{segments.PROFILE_ARTIFACT}.json")
        names = {int(r["segment_id"]): r["segment_name"] for r in profile}
        assigned = model.transform(as_double(rows, model_inputs(model)))
        outputs[ml.segments_table] = segments.assignments(
            assigned, names, model_name=name, model_version=version, **ids
        )

    if "uplift" in champions:
        name, version, _, model = champions["uplift"]
        known = uplift.model_campaigns(model)
        campaigns = ml.uplift.score_campaigns or known
        unknown = sorted(set(campaigns) - set(known))
        if unknown:
            raise MlDataError(
                f"ml.uplift.score_campaigns: {name} v{version} was not trained on {unknown} "
                f"(it knows {known})"
            )
        grid = uplift.campaign_grid(as_double(rows, model_inputs(model)), campaigns)
        outputs[ml.uplift_scores_table] = uplift.uplift_scores(
            uplift.with_uplift(model, grid), model_name=name, model_version=version, **ids
        )
        ctx.log.info("uplift for campaigns %s", ", ".join(campaigns))

    for target, out in outputs.items():
        with ctx.stage(f"write {target}") as info:
            written = ctx.lake.write(
                out,
                target,
                mode="overwrite",
                partition_by=["snapshot_date"],
                replace_where={"snapshot_date": [snapshot.isoformat()]},
                app_id=ctx.app_id,
            )
            info["rows"] = written.rows_added
            ctx.rows_out += written.rows_added
    ctx.log.info("scored snapshot %s with %s", snapshot, ", ".join(champions))


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
