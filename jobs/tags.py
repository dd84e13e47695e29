"""gold/customer_features -> gold/customer_tags (long), customer_portrait (wide), tag_report.

    python -m jobs.tags --env local --run-date 2026-01-31

The tag catalog (conf/tags/*.yaml, see contactlake.tags) is loaded and every draft and
online expression is analysed against the customer_features schema before any data is
read: a bad tag stops the job with its id and file. Online tags are computed for the
snapshot of the run date; model tags read gold/segments and gold/churn_scores of the same
snapshot and are skipped (null, logged) while those have no rows for it. Each output table
replaces the snapshot's partition on a re-run. Coverage and change against the previous
snapshot go to gold/tag_report and the log.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.runner import JobContext, run_job
from contactlake.tags import (
    MODEL_SOURCES,
    load_catalog,
    online,
    tag_report,
    tag_values,
    tags_long,
    validate_catalog,
)

JOB = "tags"
FEATURES = "gold/customer_features"
TAGS = "gold/customer_tags"
PORTRAIT = "gold/customer_portrait"
REPORT = "gold/tag_report"


class TagsError(RuntimeError):
    pass


def _snapshot(ctx: JobContext, table: str) -> DataFrame:
    return ctx.lake.read(table, partitions=[("snapshot_date", "=", ctx.run_date.isoformat())])


def _model_frames(ctx: JobContext, sources: set[str]) -> dict[str, DataFrame]:
    frames = {}
    for source in sorted(sources):
        if not ctx.lake.exists(source):
            ctx.log.info("model tags from %s skipped: the table does not exist yet", source)
            continue
        rows = ctx.lake.read(source).where(F.col("snapshot_date") == F.lit(ctx.run_date))
        if rows.isEmpty():
            ctx.log.info("model tags from %s skipped: no rows for %s", source, ctx.run_date)
            continue
        frames[source] = rows
    return frames


def _previous_portrait(ctx: JobContext) -> tuple[DataFrame | None, date | None]:
    if not ctx.lake.exists(PORTRAIT):
        return None, None
    dates = (
        ctx.lake.read(PORTRAIT)
        .select("snapshot_date")
        .where(F.col("snapshot_date") < F.lit(ctx.run_date))
    )
    previous = dates.agg(F.max("snapshot_date")).first()[0]
    if previous is None:
        return None, None
    portrait = ctx.lake.read(PORTRAIT, partitions=[("snapshot_date", "=", previous.isoformat())])
    return portrait, previous


def run(ctx: JobContext) -> None:
    folder = Path(ctx.cfg.tags.catalog_dir)
    if not folder.is_absolute():
        folder = Path(ctx.cfg.conf_dir) / folder
    with ctx.stage("validate catalog") as info:
        catalog = load_catalog(folder)
        if not ctx.lake.exists(FEATURES):
            raise TagsError(f"{FEATURES} does not exist: run jobs.features first")
        model_schemas = {s: ctx.lake.schema(s) for s in MODEL_SOURCES if ctx.lake.exists(s)}
        validate_catalog(ctx.spark, catalog, ctx.lake.schema(FEATURES), model_schemas)
        tags = online(catalog)
        info["rows"] = len(tags)
        ctx.log.info(
            "catalog %s: %d tags, %d online: %s",
            folder,
            len(catalog),
            len(tags),
            ", ".join(t.id for t in tags),
        )
    if not tags:
        raise TagsError(f"no online tags in {folder}")

    features = _snapshot(ctx, FEATURES)
    if features.isEmpty():
        raise TagsError(f"{FEATURES} has no rows for {ctx.run_date}: run jobs.features first")
    sources = {t.spec.source for t in tags if t.spec.type == "model"}
    wide = tag_values(features, tags, _model_frames(ctx, sources))
    wide = wide.persist(StorageLevel.MEMORY_AND_DISK)
    replace = {"snapshot_date": [ctx.run_date.isoformat()]}

    with ctx.stage("customer_tags") as info:
        written = ctx.lake.write(
            tags_long(wide, tags),
            TAGS,
            mode="overwrite",
            partition_by=["snapshot_date"],
            replace_where=replace,
            app_id=ctx.app_id,
        )
        info["rows"] = written.rows_added
        ctx.rows_out += written.rows_added

    previous, previous_date = _previous_portrait(ctx)
    with ctx.stage("customer_portrait") as info:
        # columns of tags no longer online stay in the table (null from now on)
        retired = [
            c
            for c in (ctx.lake.schema(PORTRAIT).fieldNames() if ctx.lake.exists(PORTRAIT) else [])
            if c not in wide.columns
        ]
        portrait = wide.select(
            *wide.columns, *[F.lit(None).cast("string").alias(c) for c in retired]
        )
        written = ctx.lake.write(
            portrait,
            PORTRAIT,
            mode="overwrite",
            partition_by=["snapshot_date"],
            replace_where=replace,
            evolve_schema=True,  # a new online tag adds a column
            app_id=ctx.app_id,
        )
        info["rows"] = written.rows_added
        ctx.rows_in += written.rows_added  # one portrait row per customer of the snapshot

    with ctx.stage("tag report") as info:
        report = tag_report(wide, previous, tags, ctx.run_date, previous_date)
        report = report.persist(StorageLevel.MEMORY_AND_DISK)
        ctx.lake.write(
            report,
            REPORT,
            mode="overwrite",
            partition_by=["snapshot_date"],
            replace_where=replace,
            evolve_schema=False,
            app_id=ctx.app_id,
        )
        rows = report.orderBy("tag_id").collect()
        info["rows"] = len(rows)
        report.unpersist()
    for r in rows:
        change = (
            "no previous snapshot"
            if r.previous_snapshot_date is None
            else f"changed {_pct(r.change_rate)} since {r.previous_snapshot_date}"
        )
        ctx.log.info(
            "tag %-20s v%d coverage %s (%d of %d), %s",
            r.tag_id,
            r.tag_version,
            _pct(r.coverage),
            r.covered,
            r.customers,
            change,
        )
    wide.unpersist()
    ctx.log.info("tags for %s: %d customers, %d tags", ctx.run_date, rows[0].customers, len(tags))


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
