"""Gold portrait -> published marketing tags, audiences per touchpoint, and their exports.

    CONTACTLAKE_PSEUDONYM_KEY=... python -m jobs.publish --env local --run-date 2026-01-31

Writes, for the run date D (partition ``snapshot_date = D``, replaced on a re-run):

- ``gold/marketing_tags``: the portrait of D keyed by ``pseudo_id`` (HMAC-SHA256 of
  customer_key, key from the environment variable ``publish.pseudonym_key_env``), the
  published tags, churn probability and uplift per campaign; customers without profiling
  consent are left out; no customer_key and no PII.
- ``gold/audiences``: the customers selected per audience (``conf/audiences/*.yaml``) after
  the contact policy (:mod:`contactlake.publish`), ranked, with why they were selected and
  the tag and model versions used.
- ``gold/audience_exclusions``: every excluded candidate counted by audience and reason.
- ``<publish.export_dir>/<D>/<channel>/<audience id>.csv``: one file per audience (header
  only when nobody is selected); only a channel with ``export_phone`` (the outbound_call
  dialer) carries the phone number. Every other export is a subset of gold/audiences'
  columns without customer_key.

Do-not-contact list: the table ``publish.do_not_contact_table`` (``silver/do_not_contact``:
customer_id, phone E.164, reason, added_date), kept by the compliance feed; a Delta table
rather than a loose file so it is versioned and read as of the publication like every
other input. Entries apply from their added_date.

Reproducible: inputs are read as of D (events up to the end of D local time, the
customer version valid then, the portrait and scores of D). The Delta versions read are
recorded in ``ops/publish_inputs`` on the first successful publication of D; a re-run of D
reads exactly those versions (a table absent then stays absent), so republishing a date
gives the same audiences even after later data arrived. With ``publish.pii_guard`` every
gold output is scanned for phone numbers, id-card numbers and names before it is written.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from contactlake import publish as pub
from contactlake import schemas
from contactlake.runner import JobContext, run_job

JOB = "publish"
PORTRAIT = "gold/customer_portrait"
CUSTOMER_TAGS = "gold/customer_tags"
CUSTOMERS = "silver/customers"
CONTACTS = "silver/contacts"
COMPLAINTS = "silver/complaints"
CAMPAIGN_CONTACTS = "silver/campaign_contacts"
MARKETING_TAGS = "gold/marketing_tags"
AUDIENCES = "gold/audiences"
EXCLUSIONS = "gold/audience_exclusions"
PUBLISH_INPUTS = "ops/publish_inputs"
PUBLISH_INPUTS_SCHEMA = StructType(
    [
        StructField("run_date", DateType()),
        StructField("table", StringType()),
        StructField("version", LongType()),  # null: the table did not exist
        StructField("run_id", StringType()),
        StructField("recorded_at", TimestampType()),
    ]
)
KEYS = ["snapshot_date", "customer_key"]


class PublishError(RuntimeError):
    pass


class PinnedInputs:
    """Reads each input at the version recorded for the run date, or records the current one."""

    def __init__(self, ctx: JobContext, tables: list[str]) -> None:
        self.ctx = ctx
        recorded: dict[str, int | None] = {}
        if ctx.lake.exists(PUBLISH_INPUTS):
            rows = ctx.lake.read(PUBLISH_INPUTS).where(F.col("run_date") == F.lit(ctx.run_date))
            recorded = {r.table: r.version for r in rows.collect()}
        self.pinned = bool(recorded)
        self.versions = recorded or {t: ctx.lake.version(t) for t in tables}
        missing = sorted(set(tables) - set(self.versions))
        if missing:  # an input added to the job after D was first published
            raise PublishError(f"{missing} were not recorded for {ctx.run_date}")

    def exists(self, table: str) -> bool:
        return self.versions.get(table) is not None

    def read(self, table: str, date_column: str | None = None, first=None, last=None):
        """The table at its pinned version (None if absent), rows of ``[first, last]`` only."""
        version = self.versions.get(table)
        if version is None:
            return None
        partitions = None
        if date_column and date_column in self.ctx.lake.partition_columns(table):
            days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
            partitions = [(date_column, "in", days)]
        df = self.ctx.lake.read(table, version=version, partitions=partitions)
        if date_column:
            df = df.where(F.col(date_column).between(F.lit(first), F.lit(last)))
        return df

    def record(self) -> None:
        if self.pinned:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "run_date": self.ctx.run_date,
                "table": table,
                "version": version,
                "run_id": self.ctx.run_id,
                "recorded_at": now,
            }
            for table, version in sorted(self.versions.items())
        ]
        self.ctx.lake.append_rows(
            PUBLISH_INPUTS, rows, PUBLISH_INPUTS_SCHEMA, app_id=self.ctx.app_id
        )


def _guard(ctx: JobContext, outputs: dict[str, DataFrame], names: DataFrame) -> None:
    """Stop before writing when an output holds raw PII (columns and kinds named, no values)."""
    if not ctx.cfg.publish.pii_guard:
        return
    with ctx.stage("pii guard") as info:
        names = names.where(F.col("name").isNotNull()).distinct().persist()
        scans = [
            pub.pii_scan(df, names).withColumn("column", F.concat(F.lit(f"{table}."), "column"))
            for table, df in outputs.items()
        ]
        for more in scans[1:]:
            scans[0] = scans[0].unionByName(more)
        found = [f"{r.column}: {r.kind} x{r.rows}" for r in scans[0].collect()]  # one Spark job
        names.unpersist()
        info["rows"] = len(found)
    if found:
        raise PublishError("raw personal data in the outputs, nothing written: " + "; ".join(found))


def _write_exports(ctx: JobContext, audiences: list[pub.Audience], rows: DataFrame, customers):
    """One CSV per audience under <export_dir>/<date>/<channel>/, replacing the date's folder."""
    cfg = ctx.cfg.publish
    folder = Path(cfg.export_dir) / ctx.run_date.isoformat()
    phones = customers.select("customer_key", F.col("primary_phone").alias("phone"))
    table = (
        rows.join(phones, "customer_key", "left")
        .select(*pub.export_columns(with_phone=True))
        .orderBy("audience_id", "rank")
        .toPandas()
    )
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for audience in audiences:
        channel = audience.spec.channel
        columns = pub.export_columns(with_phone=cfg.channels[channel].export_phone)
        target = staging / channel / f"{audience.id}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        table.loc[table["audience_id"] == audience.id, columns].to_csv(target, index=False)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def run(ctx: JobContext) -> None:
    cfg = ctx.cfg.publish
    day = ctx.run_date
    key = pub.pseudonym_key(cfg.pseudonym_key_env, cfg.pseudonym_key_min_bytes)
    audiences_dir = Path(ctx.cfg.conf_dir) / cfg.audiences_dir
    audiences = pub.load_audiences(audiences_dir, list(cfg.channels))
    if not audiences:
        raise PublishError(f"no active audience in {audiences_dir}")
    inputs = PinnedInputs(
        ctx,
        [
            PORTRAIT,
            CUSTOMER_TAGS,
            CUSTOMERS,
            CONTACTS,
            COMPLAINTS,
            CAMPAIGN_CONTACTS,
            cfg.do_not_contact_table,
            AUDIENCES,
            *[table for table, _ in pub.SCORE_SOURCES.values()],
        ],
    )
    missing = [t for t in (PORTRAIT, CUSTOMERS) if not inputs.exists(t)]
    if cfg.do_not_contact_required and not inputs.exists(cfg.do_not_contact_table):
        missing.append(cfg.do_not_contact_table)
    if missing:
        raise PublishError(f"{missing} missing: run jobs.unify and jobs.tags first")
    ctx.log.info(
        "inputs %s at %s",
        "pinned" if inputs.pinned else "recorded",
        ", ".join(f"{t}@v{v}" for t, v in sorted(inputs.versions.items()) if v is not None),
    )
    cutoff = pub.cutoff_utc(day, cfg.timezone)
    contact_date = day + timedelta(days=cfg.contact_lag_days)

    with ctx.stage("read") as info:
        portrait = inputs.read(PORTRAIT, "snapshot_date", day, day)
        pub.validate_audiences(ctx.spark, audiences, portrait.schema)
        tag_columns = [c for c in portrait.columns if c not in KEYS]
        unknown = sorted(set(cfg.published_tags) - set(tag_columns))
        if unknown:
            raise PublishError(f"publish.published_tags: {unknown} are not portrait tags")
        portrait = portrait.persist(StorageLevel.MEMORY_AND_DISK)
        info["rows"] = ctx.rows_in = portrait.count()
        if ctx.rows_in == 0:
            raise PublishError(f"{PORTRAIT} has no snapshot {day}: run jobs.tags for it first")
        tag_versions = {}
        if inputs.exists(CUSTOMER_TAGS):
            tag_versions = {
                r.tag_id: r.tag_version
                for r in inputs.read(CUSTOMER_TAGS, "snapshot_date", day, day)
                .select("tag_id", "tag_version")
                .distinct()
                .collect()
            }
        else:
            ctx.log.warning("%s missing: tag versions are not recorded", CUSTOMER_TAGS)
        customers = pub.customers_as_of(inputs.read(CUSTOMERS), cutoff).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        scores = {}
        for rank_by, (table, _) in pub.SCORE_SOURCES.items():
            keys = ["customer_key", "campaign_id"] if rank_by == "uplift" else ["customer_key"]
            scores[rank_by] = (
                pub.latest_scores(inputs.read(table), day, keys) if inputs.exists(table) else None
            )
            wanted = [a.id for a in audiences if a.spec.rank_by == rank_by]
            if wanted and scores[rank_by] is None:
                ctx.log.warning("%s missing: %s are ranked at random", table, wanted)

    with ctx.stage("select audiences") as info:
        capped = {name: c.frequency_capped for name, c in cfg.channels.items()}
        candidates = pub.audience_candidates(portrait, audiences, tag_versions, capped)
        candidates = candidates.withColumn("pseudo_id", pub.pseudonym("customer_key", key))
        candidates = pub.attach_scores(
            candidates, audiences, scores["churn_probability"], scores["uplift"]
        )
        if inputs.exists(cfg.do_not_contact_table):
            candidates = pub.do_not_contact_rule(
                candidates, inputs.read(cfg.do_not_contact_table), customers, day
            )
        else:
            ctx.log.warning(
                "%s missing: nobody is on the do-not-contact list", cfg.do_not_contact_table
            )
        candidates = pub.consent_rule(
            candidates,
            customers,
            {name: c.consent_column for name, c in cfg.channels.items()},
            cfg.profiling_consent_column,
        )
        if inputs.exists(COMPLAINTS):
            candidates = pub.open_complaint_rule(candidates, inputs.read(COMPLAINTS), cutoff)
        else:
            ctx.log.warning("%s missing: the open-complaint rule excludes nobody", COMPLAINTS)
        if inputs.exists(CONTACTS):
            # contact_date is the local date; one extra day covers the time-zone offset
            first = day - timedelta(days=cfg.unresolved_repeat_days + 1)
            contacts = inputs.read(CONTACTS, "contact_date", first, day + timedelta(days=1))
            candidates = pub.unresolved_repeat_rule(
                candidates, contacts, cutoff, cfg.unresolved_repeat_days
            )
        else:
            ctx.log.warning("%s missing: the repeat-contact rule excludes nobody", CONTACTS)
        # rows that can fall in the longest cap window: attempts in it, audiences published
        # up to contact_lag_days before it, and the attempts that contacted those audiences
        longest = max([c.days for c in cfg.frequency_caps], default=1)
        read_from = contact_date - timedelta(days=longest - 1 + cfg.contact_lag_days)
        attempts = (
            inputs.read(CAMPAIGN_CONTACTS, "attempt_date", read_from, day)
            if inputs.exists(CAMPAIGN_CONTACTS)
            else ctx.spark.createDataFrame([], schemas.CAMPAIGN_CONTACTS)
        )
        published = (
            inputs.read(AUDIENCES, "snapshot_date", read_from, day)
            if inputs.exists(AUDIENCES)
            else None
        )
        history = pub.marketing_contact_history(attempts, published, day)
        candidates = pub.frequency_cap_rule(
            candidates,
            history,
            contact_date,
            [(c.days, c.max_contacts) for c in cfg.frequency_caps],
        )
        windows, details = {}, {}
        for audience in audiences:
            channel = cfg.channels[audience.spec.channel]
            window = pub.send_window(
                channel.send_window, channel.quiet_hours, audience.spec.send_time
            )
            windows[audience.id] = window
            if window is None:
                planned = audience.spec.send_time or "-".join(channel.send_window)
                details[audience.id] = (
                    f"{audience.spec.channel} send time {planned} ({cfg.timezone}) lies inside "
                    f"its quiet hours {'-'.join(channel.quiet_hours or [])}"
                )
                ctx.log.warning(
                    "audience %s publishes nobody: %s", audience.id, details[audience.id]
                )
        candidates = pub.quiet_hours_rule(candidates, sorted(details))
        # materialised once: the pseudonym UDF and the rule joins are not re-run per output
        assigned = pub.assign_audiences(candidates, audiences).localCheckpoint()
        rows = pub.audience_rows(assigned, contact_date, windows).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        exclusions = pub.exclusion_counts(assigned, details).persist(StorageLevel.MEMORY_AND_DISK)
        info["rows"] = rows.count()

    with ctx.stage("marketing tags"):
        consented = (
            customers.where(F.col(cfg.profiling_consent_column))
            if cfg.profiling_consent_column
            else portrait
        ).select("customer_key")
        tags = pub.marketing_tags(
            portrait.withColumn("pseudo_id", pub.pseudonym("customer_key", key)),
            cfg.published_tags or tag_columns,
            consented,
            scores["churn_probability"],
            scores["uplift"],
        ).persist(StorageLevel.MEMORY_AND_DISK)

    names = inputs.read(CUSTOMERS).select("name")
    _guard(ctx, {MARKETING_TAGS: tags, AUDIENCES: rows, EXCLUSIONS: exclusions}, names)

    replace = {"snapshot_date": [day.isoformat()]}
    for table, df in ((MARKETING_TAGS, tags), (AUDIENCES, rows), (EXCLUSIONS, exclusions)):
        with ctx.stage(f"write {table}") as info:
            written = ctx.lake.write(
                df,
                table,
                mode="overwrite",
                partition_by=["snapshot_date"],
                replace_where=replace,
                evolve_schema=table == MARKETING_TAGS,  # new online tags become new columns
                app_id=ctx.app_id,
            )
            info["rows"] = written.rows_added
            ctx.rows_out += written.rows_added

    with ctx.stage("exports") as info:
        folder = _write_exports(ctx, audiences, rows, customers)
        info["rows"] = len(audiences)
    inputs.record()

    counts = {(r.audience_id, r.reason): r.customers for r in exclusions.collect()}
    ctx.rows_rejected = sum(counts.values())
    selected = {
        r.audience_id: r.n
        for r in rows.groupBy("audience_id").agg(F.count(F.lit(1)).alias("n")).collect()
    }
    for audience in audiences:
        reasons = {r: n for (a, r), n in sorted(counts.items()) if a == audience.id}
        ctx.log.info(
            "audience %s (%s, priority %d): %d selected; excluded %s",
            audience.id,
            audience.spec.channel,
            audience.spec.priority,
            selected.get(audience.id, 0),
            reasons or "none",
        )
    ctx.log.info("exports in %s", folder)
    for df in (rows, exclusions, tags, customers, portrait):
        df.unpersist()


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
