"""Silver -> gold: daily contact-center KPIs (``gold/kpi_daily``) and their alerts
(``gold/kpi_alerts``).

    python -m jobs.kpis --env local --run-date 2026-01-31

KPI definitions and targets are the catalog ``conf/kpis/*.yaml``, validated before any
data is read (a bad file stops the job naming the KPI id and the key); parameters are the
``kpis`` config section.

Dates restated: the run date and the N days before it, N = the longest look-ahead window
(``kpis.repeat_window_days``, ``kpis.shift_window_days``). A contact's repeat or channel
shift is only known N days later, and late contacts (ingest scans the same kind of
lookback) land in their own date, so each run recomputes those N + 1 dates and replaces
their partitions. Only data dated up to the run date is read, so re-running a date gives
the same rows. Rows whose look-ahead has not passed are written with ``complete=false``
and raise no alerts; the run N days later writes their final value.

Alerts (target breaches and anomalies against the trailing ``kpis.alert_history_days`` of
``kpi_daily``) are recomputed for the same dates from the table just written.
``silver/contacts`` and ``silver/customers`` are required; a missing ``silver/surveys``,
``silver/complaints`` or ``silver/campaign_contacts`` skips its KPIs with a log line.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import functions as F

from contactlake import kpis
from contactlake.runner import JobContext, run_job

JOB = "kpis"
KPI_DAILY = "gold/kpi_daily"
KPI_ALERTS = "gold/kpi_alerts"


class KpisError(RuntimeError):
    pass


def _date_filter(column: str, first, last):
    return F.col(column).between(F.lit(first), F.lit(last))


def _replace_dates(ctx: JobContext, df, table: str, dates: list):
    """Replace the ``kpi_date`` partitions of ``dates`` in ``table`` with ``df``."""
    return ctx.write_checked(
        df,
        table,
        mode="overwrite",
        partition_by=["kpi_date"],
        replace_where={"kpi_date": [d.isoformat() for d in dates]},
        app_id=ctx.app_id,
    )


def run(ctx: JobContext) -> None:
    cfg = ctx.cfg.kpis
    catalog = kpis.load_catalog(Path(ctx.cfg.conf_dir) / "kpis")
    missing = [t for t in ("silver/contacts", "silver/customers") if not ctx.lake.exists(t)]
    if missing:
        raise KpisError(f"{missing} missing: run jobs.unify first")
    active = dict(catalog)
    for table in ("silver/surveys", "silver/complaints", "silver/campaign_contacts"):
        if not ctx.lake.exists(table):
            skipped = sorted(k for k in active if kpis.IMPLEMENTED[k].source == table)
            ctx.log.warning("%s missing: skipping KPIs %s", table, skipped)
            active = {k: v for k, v in active.items() if k not in skipped}

    windows = {"repeat": cfg.repeat_window_days, "shift": cfg.shift_window_days}
    lookahead = kpis.lookahead_days(active, windows)
    dates = kpis.report_dates(ctx.run_date, max(windows.values()))
    first, last = dates[0], dates[-1]
    # concentration looks back over its window, channel retention over the shift window
    back = max(cfg.concentration_window_days - 1, cfg.shift_window_days)
    read_from = first - timedelta(days=back)
    ctx.log.info("KPIs %s for %s .. %s", sorted(active), first, last)

    with ctx.stage("read") as info:
        days = [
            (read_from + timedelta(days=i)).isoformat() for i in range((last - read_from).days + 1)
        ]
        contacts = (
            kpis.inbound(
                ctx.lake.read("silver/contacts", partitions=[("contact_date", "in", days)])
            )
            .where(_date_filter("contact_date", read_from, last))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        customers = ctx.lake.read("silver/customers")
        if cfg.region_attribute not in customers.columns:
            raise KpisError(
                f"kpis.region_attribute: silver/customers has no column {cfg.region_attribute!r}"
            )
        info["rows"] = ctx.rows_in = contacts.count()

    with ctx.stage("compute kpi_daily") as info:
        in_range = contacts.where(_date_filter("contact_date", first, last))
        followed = kpis.followed_contacts(contacts, customers, cfg.customer_base)
        facts = [
            kpis.repeat_facts(
                followed.where(_date_filter("contact_date", first, last)),
                cfg.repeat_window_days,
                cfg.fcr_unknown_resolved,
            ),
            kpis.handling_facts(in_range, cfg.short_abandon_s, cfg.service_level_s),
            kpis.shift_facts(
                followed.where(
                    F.col("contact_date") >= first - timedelta(days=cfg.shift_window_days)
                ),
                cfg.hotline_channels,
                cfg.digital_channels,
                cfg.shift_window_days,
            ),
        ]
        optional = {
            "silver/surveys": ("answered_date", kpis.survey_facts),
            "silver/complaints": ("open_date", kpis.complaint_facts),
            "silver/campaign_contacts": ("attempt_date", kpis.campaign_facts),
        }
        for table, (date_column, build) in optional.items():
            if any(kpis.IMPLEMENTED[k].source == table for k in active):
                rows = ctx.lake.read(table).where(_date_filter(date_column, first, last))
                facts.append(build(rows))
        all_facts = facts[0]
        for more in facts[1:]:
            all_facts = all_facts.unionByName(more)
        all_facts = all_facts.where(_date_filter("kpi_date", first, last))
        all_facts = all_facts.persist(StorageLevel.MEMORY_AND_DISK)
        attributes = kpis.customer_attributes(
            customers, all_facts.select("customer_key", "kpi_date"), cfg.region_attribute
        )
        aggregated = kpis.aggregate_facts(all_facts, attributes, active)
        if "contact_concentration" in active:
            aggregated = aggregated.unionByName(
                kpis.concentration(
                    followed.where(F.col("channel").isin(cfg.concentration_channels)),
                    first,
                    last,
                    cfg.concentration_window_days,
                    cfg.concentration_top_shares,
                    cfg.lorenz_points,
                )
            )
        daily = kpis.finalize(aggregated, active, ctx.run_date, lookahead)
        written = _replace_dates(ctx, daily.repartition("kpi_date"), KPI_DAILY, dates)
        info["rows"] = written.rows_added
        ctx.rows_out += written.rows_added
        for df in (all_facts, contacts):
            df.unpersist()

    with ctx.stage("compute kpi_alerts") as info:
        history_from = first - timedelta(days=cfg.alert_history_days)
        history = ctx.lake.read(KPI_DAILY).where(_date_filter("kpi_date", history_from, last))
        found = kpis.alerts(
            history,
            first,
            last,
            cfg.alert_history_days,
            cfg.alert_min_history,
            cfg.alert_z,
            cfg.alert_min_denominator,
        ).repartition("kpi_date")
        written = _replace_dates(ctx, found, KPI_ALERTS, dates)
        info["rows"] = written.rows_added
        ctx.rows_out += written.rows_added
        ctx.log.info("%d alerts for %s .. %s", written.rows_added, first, last)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
