"""Silver -> gold/customer_features: one row per customer for the run date (the snapshot).

    python -m jobs.features --env local --run-date 2026-01-31

Point in time: only data up to the end of the run date is used (see contactlake.features),
so a snapshot recomputed later, after more data arrived, has the same rows. The snapshot's
partition (snapshot_date = run date) is replaced on a re-run. `features.extra_snapshots` lists
earlier snapshots (for model training) computed too when the table does not have them. Silver business tables that
do not exist yet (subscriptions, bills, complaints, surveys, campaign_contacts) count as
empty, with a warning: their features are then zero or null.
"""

from __future__ import annotations

import sys
from datetime import date, timedelta

from pyspark.sql import DataFrame

from contactlake.features import customer_features
from contactlake.runner import JobContext, run_job
from contactlake.schemas import SILVER_BUSINESS

JOB = "features"
TABLE = "gold/customer_features"


class FeaturesError(RuntimeError):
    pass


def _business_table(ctx: JobContext, table: str) -> DataFrame:
    if ctx.lake.exists(table):
        return ctx.lake.read(table)
    ctx.log.warning("%s does not exist: its features are empty (zero or null)", table)
    return ctx.spark.createDataFrame([], SILVER_BUSINESS[table])


def _snapshots(ctx: JobContext) -> list[date]:
    """The run date, then the configured extra snapshots the table does not have yet."""
    have: set[date] = set()
    if ctx.lake.exists(TABLE):
        have = {
            r.snapshot_date
            for r in ctx.lake.read(TABLE).select("snapshot_date").distinct().collect()
        }
    extra = sorted(d for d in ctx.cfg.features.extra_snapshots if d not in have)
    return [ctx.run_date, *(d for d in extra if d != ctx.run_date)]


def _snapshot(ctx: JobContext, snapshot: date) -> int:
    cfg = ctx.cfg.features
    # contact_date is the local business date: a day of slack each side of the UTC window
    first_day = snapshot - timedelta(days=cfg.lookback_days + 1)
    contacts = ctx.lake.read(
        "silver/contacts",
        partitions=[
            ("contact_date", ">=", first_day.isoformat()),
            ("contact_date", "<=", (snapshot + timedelta(days=1)).isoformat()),
        ],
    )
    features = customer_features(
        ctx.lake.read("silver/customers"),
        contacts,
        *(
            _business_table(ctx, t)
            for t in (
                "silver/subscriptions",
                "silver/bills",
                "silver/complaints",
                "silver/surveys",
                "silver/campaign_contacts",
            )
        ),
        snapshot,
        windows_days=cfg.windows_days,
        channels=cfg.channels,
        digital_channels=cfg.digital_channels,
        repeat_window_days=cfg.repeat_window_days,
        experience_days=cfg.experience_days,
        revenue_months=cfg.revenue_months,
        rfm_days=cfg.rfm_days,
        abc_shares=cfg.abc_shares,
        lookback_days=cfg.lookback_days,
        long_wait_s=cfg.long_wait_s,
    )
    written = ctx.write_checked(
        features,
        TABLE,
        mode="overwrite",
        partition_by=["snapshot_date"],
        replace_where={"snapshot_date": [snapshot.isoformat()]},
        evolve_schema=True,  # a new window or channel in config adds columns
        app_id=ctx.app_id if snapshot == ctx.run_date else f"{ctx.app_id}/{snapshot}",
    )
    return written.rows_added


def run(ctx: JobContext) -> None:
    missing = [t for t in ("silver/customers", "silver/contacts") if not ctx.lake.exists(t)]
    if missing:
        raise FeaturesError(f"{missing} missing: run jobs.unify first")
    for snapshot in _snapshots(ctx):
        with ctx.stage(f"features {snapshot}") as info:
            info["rows"] = rows = _snapshot(ctx, snapshot)
            ctx.rows_out += rows
        ctx.log.info("%s snapshot %s: %d customers", TABLE, snapshot, rows)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
