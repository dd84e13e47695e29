"""Bronze -> silver: contacts of every channel, identity, customers (SCD2), quarantine.

    python -m jobs.unify --env local --run-date 2026-01-31

Processes the bronze batches not unified yet (ops/unified_batches). Identity is resolved
over every identifier in bronze, keeping customer keys from the previous identity_map;
contacts are rebuilt for the contact dates the new batches touch (late records land in
their own date) and replace those partitions; customers keep their history (SCD2).
Every bronze row of a new batch is accounted for: silver, quarantine, a merged duplicate,
or an IVR session merged into its call; a mismatch fails the job before anything is written.

Business sources (billing, complaints, surveys, campaign) are unified when their bronze
table exists: subscriptions and bills are rebuilt from all billing rows (overwrite);
complaints, surveys and campaign_contacts replace the partitions that the keys of the new
batches are in, or were in (rows may move, e.g. a holdout row once its campaign's launch
date is known). Their rows are accounted for the same way (a payment merged into its bill,
a cancellation into its subscription period, a repeated key into the latest record).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from contactlake import business as biz
from contactlake.cleaning import normalise_phones, phone_lookup
from contactlake.identity import assign_keys, connected_components, find_hubs, node
from contactlake.ingest.bronze import QUARANTINE_SCHEMA
from contactlake.ingest.sources import load_sources
from contactlake.runner import JobContext, run_job
from contactlake.unify import (
    CONTACT_COLUMNS,
    all_nodes,
    attach_ivr,
    collapse_duplicates,
    contact_identifiers,
    contact_keys,
    crm_records,
    digital_contacts,
    identity_edges,
    ivr_only_contacts,
    ivr_sessions,
    normalise_contact_phones,
    scd2_customers,
    voice_contacts,
)

JOB = "unify"
# Intermediate results are materialised with localCheckpoint(), not persist(): it also cuts
# their lineage. With persist() every later plan kept the whole bronze->silver tree, and
# Spark's planning (cache lookups, AQE plan strings) grew until it took minutes per step.
SOURCES = ("crm", "voice", "ivr", "digital")
BUSINESS_SOURCES = ("billing", "complaints", "surveys", "campaign")
# table -> (key, partition column) of the business tables merged by key
KEYED_TABLES = {
    "silver/complaints": ("ticket_id", "open_date"),
    "silver/surveys": ("survey_id", "answered_date"),
    "silver/campaign_contacts": ("attempt_id", "attempt_date"),
}
REGISTRY = "ops/unified_batches"
REGISTRY_SCHEMA = StructType(
    [
        StructField("source", StringType()),
        StructField("batch_id", StringType()),
        StructField("rows_bronze", LongType()),
        StructField("rows_silver", LongType()),
        StructField("rows_quarantined", LongType()),
        StructField("rows_merged", LongType()),
        StructField("run_date", DateType()),
        StructField("unified_at", TimestampType()),
    ]
)
EVENTS_SCHEMA = "event string, customer_key string, previous_key string, nodes long, run_date date"


class UnifyError(RuntimeError):
    pass


def _new_batches(ctx: JobContext, bronze: dict[str, DataFrame]) -> dict[str, list[str]]:
    done: set[tuple[str, str]] = set()
    if ctx.lake.exists(REGISTRY):
        done = {
            (r.source, r.batch_id)
            for r in ctx.lake.read(REGISTRY).select("source", "batch_id").collect()
        }
    return {
        source: sorted(
            r._batch_id
            for r in df.select("_batch_id").distinct().collect()
            if (source, r._batch_id) not in done
        )
        for source, df in bronze.items()
    }


def _rejected_in(batches: list[str]) -> Column:
    """A cleaned row with a ``_reason`` from one of ``batches``: quarantined by this run."""
    return F.col("_reason").isNotNull() & F.col("_batch_id").isin(batches)


def _quarantine(rows: DataFrame, batches: list[str]) -> DataFrame:
    """The rejected rows of ``batches``, as ``QUARANTINE_SCHEMA`` rows."""
    now = F.lit(datetime.now(UTC)).cast("timestamp")
    return rows.where(_rejected_in(batches)).select(
        "_file",
        "_line",
        "_raw",
        F.col("_raw").cast("binary").alias("_raw_bytes"),
        F.col("_reason").alias("reason_code"),
        F.lit(None).cast("string").alias("reason_detail"),
        F.lit("unify").alias("stage"),
        "_batch_id",
        now.alias("_ingested_at"),
        F.to_date(F.element_at(F.split("_file", "/"), 2)).alias("_landing_date"),
    )


def _raw_if_quarantined(rows: DataFrame, batches: list[str]) -> DataFrame:
    """``rows`` with ``_raw`` kept only on the rejected rows of ``batches`` (null elsewhere).

    The raw line is only written for rows quarantined now; carried whole through the
    joins, sorts and checkpoints it was a large share of their bytes.
    """
    return rows.withColumn("_raw", F.when(_rejected_in(batches), F.col("_raw")))


def _check_counts(parts: list[DataFrame]) -> dict[str, dict[str, dict[str, int]]]:
    """Per source and batch: bronze rows = silver + quarantined + merged, else UnifyError.

    ``parts``: ``source, _batch_id, label, n`` with label bronze, silver, quarantined or
    merged; collected as one Spark job.

    Returns:
        source -> batch -> label -> rows.
    """
    counts: dict[str, dict[str, dict[str, int]]] = {}
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    for r in union.collect():
        batch = counts.setdefault(r.source, {}).setdefault(r._batch_id, {})
        batch[r.label] = batch.get(r.label, 0) + r.n
    for source, batches in counts.items():
        for batch, c in batches.items():
            total = c.get("silver", 0) + c.get("quarantined", 0) + c.get("merged", 0)
            if total != c.get("bronze", 0):
                raise UnifyError(
                    f"{source} batch {batch}: {c.get('bronze', 0)} bronze rows but {total} accounted for {c}"
                )
    return counts


def _bronze_counts(source: str, bronze: DataFrame, batches: list[str]) -> DataFrame:
    return (
        bronze.where(F.col("_batch_id").isin(batches))
        .groupBy("_batch_id")
        .agg(F.count(F.lit(1)).alias("n"))
        .select(F.lit(source).alias("source"), "_batch_id", F.lit("bronze").alias("label"), "n")
    )


def _contact_outcome_counts(
    cleaned: dict[str, DataFrame], contacts: DataFrame, merged_ivr: DataFrame, new: dict
) -> DataFrame:
    """Rows per contact source, new batch and outcome, in one Spark job.

    Each input is scanned once (a filter and a count per outcome would scan the 15M
    contacts six times at the large preset).

    Args:
        cleaned: source -> its cleaned rows (``_batch_id, _reason``), for ``SOURCES``.
        contacts: the collapsed contacts (``source, _batch_id, _duplicate``).
        merged_ivr: the IVR sessions merged into their calls (``_batch_id``).
        new: source -> the batch ids to count.

    Returns:
        ``source, _batch_id, label`` (silver, quarantined or merged), ``n``.
    """
    ok = F.col("_reason").isNull()
    labelled = [
        cleaned["crm"].select(
            F.lit("crm").alias("source"),
            "_batch_id",
            F.when(ok, F.lit("silver")).otherwise(F.lit("quarantined")).alias("label"),
        ),
        *(
            cleaned[source]
            .where(~ok)
            .select(F.lit(source).alias("source"), "_batch_id", F.lit("quarantined").alias("label"))
            for source in ("voice", "ivr", "digital")
        ),
        merged_ivr.select(
            F.lit("ivr").alias("source"), "_batch_id", F.lit("merged").alias("label")
        ),
        contacts.select(
            "source",
            "_batch_id",
            F.when(F.col("_duplicate"), F.lit("merged")).otherwise(F.lit("silver")).alias("label"),
        ),
    ]
    union = labelled[0]
    for part in labelled[1:]:
        union = union.unionByName(part)
    is_new = F.lit(False)
    for source in SOURCES:
        is_new = is_new | ((F.col("source") == source) & F.col("_batch_id").isin(new[source]))
    return (
        union.where(is_new)
        .groupBy("source", "_batch_id", "label")
        .agg(F.count(F.lit(1)).alias("n"))
    )


def _partition_filter(column: str, values: list) -> Column:
    known = [v for v in values if v is not None]
    cond = F.col(column).isin(known) if known else F.lit(False)
    return cond | F.col(column).isNull() if None in values else cond


def _write_whole(ctx: JobContext, rows: DataFrame, table: str) -> int:
    return ctx.write_checked(rows, table, mode="overwrite", app_id=ctx.app_id).rows_added


def _write_touched(ctx: JobContext, rows: DataFrame, table: str, touched: DataFrame) -> int:
    """Replace the partitions of ``table`` that hold, or held, the keys in ``touched``.

    ``rows``: every current row of the table (one per key, from all of bronze); written
    whole when the table does not exist yet.
    """
    key, part = KEYED_TABLES[table]
    touched = touched.select(key).distinct()
    where = None
    if ctx.lake.exists(table):
        wanted = rows.join(touched, key, "left_semi").select(part)
        held = ctx.lake.read(table).select(key, part).join(touched, key, "left_semi").select(part)
        values = sorted({r[0] for r in wanted.unionByName(held).distinct().collect()}, key=str)
        if not values:
            return 0
        rows = rows.where(_partition_filter(part, values))
        where = {part: [None if v is None else v.isoformat() for v in values]}
    # one task per date writes its file: else every shuffle partition writes a file into
    # every date (at large, 2,920 files of 30 kB for surveys' 88 MB)
    return ctx.write_checked(
        rows.repartition(part),
        table,
        mode="overwrite",
        partition_by=[part],
        replace_where=where,
        app_id=ctx.app_id,
    ).rows_added


class CleanedBusiness(NamedTuple):
    """A business source after cleaning."""

    cleaned: DataFrame  # every row, with ``_reason``
    outcomes: DataFrame  # ``_batch_id, _merged`` of the valid rows
    marked: tuple[DataFrame, ...] = ()  # billing: mark_periods and mark_bills, checkpointed


def _clean_business(
    ctx: JobContext,
    bronze: dict[str, DataFrame],
    new: dict[str, list[str]],
    tz: dict[str, str],
    contacts_changed: bool,
) -> dict[str, CleanedBusiness]:
    """The business sources with new batches (surveys also when new contacts may key
    them), cleaned."""
    cleaners = {
        "billing": biz.billing_records,
        "complaints": biz.complaint_records,
        "surveys": biz.survey_records,
        "campaign": biz.campaign_records,
    }
    out = {}
    for source, clean in cleaners.items():
        wanted = new.get(source) or (source == "surveys" and contacts_changed)
        if source not in bronze or not wanted:
            continue
        cleaned = _raw_if_quarantined(clean(bronze[source], tz[source]), new.get(source, []))
        cleaned = cleaned.localCheckpoint()
        valid = cleaned.where(F.col("_reason").isNull())
        no_keys = ctx.spark.createDataFrame([], "customer_id string, customer_key string")
        marked: tuple[DataFrame, ...] = ()
        if source == "billing":
            # the windows marking billing rows run once: the outcomes are counted, and the
            # tables built, from the checkpointed marks
            marked = (
                biz.mark_periods(valid).localCheckpoint(),
                biz.mark_bills(valid).localCheckpoint(),
            )
            outcomes = biz.subscriptions(marked[0], no_keys)[1].unionByName(
                biz.bills(marked[1], no_keys)[1]
            )
        elif source == "complaints":
            outcomes = biz.complaints(valid, no_keys)[1]
        elif source == "surveys":
            outcomes = biz.surveys(valid, no_keys.withColumnRenamed("customer_id", "contact_id"))[1]
        else:
            outcomes = biz.campaign_contacts(valid, no_keys)[1]
        out[source] = CleanedBusiness(cleaned, outcomes, marked)
    return out


def _write_business(
    ctx: JobContext,
    business: dict[str, CleanedBusiness],
    crm_keys: DataFrame,
    new: dict[str, list[str]],
    valid_contacts: DataFrame,
    new_contact_batches: list[str],
) -> int:
    """Write the silver business tables of the cleaned sources; returns rows written."""
    written = 0

    def batch_rows(source: str) -> DataFrame:
        cleaned = business[source].cleaned
        return cleaned.where(F.col("_reason").isNull() & F.col("_batch_id").isin(new[source]))

    def current(table: DataFrame) -> DataFrame:
        return table.where(~F.col("_merged")).drop("_merged")

    if "billing" in business and new["billing"]:
        periods, bills = business["billing"].marked
        written += _write_whole(
            ctx, biz.subscriptions(periods, crm_keys)[0], "silver/subscriptions"
        )
        written += _write_whole(ctx, biz.bills(bills, crm_keys)[0], "silver/bills")
    if "complaints" in business and new["complaints"]:
        valid = business["complaints"].cleaned.where(F.col("_reason").isNull())
        table = current(biz.complaints(valid, crm_keys)[0])
        written += _write_touched(ctx, table, "silver/complaints", batch_rows("complaints"))
    if "surveys" in business:
        valid = business["surveys"].cleaned.where(F.col("_reason").isNull())
        contact_keys = ctx.lake.read("silver/contacts").select("contact_id", "customer_key")
        table = current(biz.surveys(valid, contact_keys)[0])
        # a survey can land before its contact: surveys of newly unified contacts are
        # rewritten too, so they get their customer_key
        new_contacts = valid_contacts.where(F.col("_batch_id").isin(new_contact_batches))
        touched = (
            batch_rows("surveys")
            .select("survey_id")
            .unionByName(
                valid.join(new_contacts.select("contact_id"), "contact_id", "left_semi").select(
                    "survey_id"
                )
            )
        )
        written += _write_touched(ctx, table, "silver/surveys", touched)
    if "campaign" in business and new["campaign"]:
        valid = business["campaign"].cleaned.where(F.col("_reason").isNull())
        table = current(biz.campaign_contacts(valid, crm_keys)[0])
        # a holdout row is dated by its campaign's first attempt: new attempts may move it
        campaigns = batch_rows("campaign").select("campaign_id").distinct()
        holdouts = valid.where(F.col("attempt_no") == 0).join(campaigns, "campaign_id", "left_semi")
        touched = (
            batch_rows("campaign").select("attempt_id").unionByName(holdouts.select("attempt_id"))
        )
        written += _write_touched(ctx, table, "silver/campaign_contacts", touched)
    return written


def run(ctx: JobContext) -> None:
    cfg = ctx.cfg.unify
    specs = load_sources(ctx.cfg.conf_dir)
    missing = [s for s in SOURCES if not ctx.lake.exists(f"bronze/{s}")]
    if missing:
        raise UnifyError(f"bronze tables missing for {missing}: run jobs.ingest first")
    # older lakes have only the contact sources: business sources are unified once landed
    present = [s for s in BUSINESS_SOURCES if ctx.lake.exists(f"bronze/{s}")]
    bronze = {s: ctx.lake.read(f"bronze/{s}") for s in (*SOURCES, *present)}
    new = _new_batches(ctx, bronze)
    if not any(new.values()):
        ctx.log.info("no new bronze batches: silver is up to date")
        return
    tz = {s: specs[s].timezone for s in (*SOURCES, *present)}
    region, today = cfg.phone_region, ctx.run_date

    with ctx.stage("clean") as info:
        typed = {
            "crm": crm_records(bronze["crm"], tz["crm"], today),
            "voice": voice_contacts(bronze["voice"], tz["voice"], today, cfg.max_duration_s),
            "ivr": ivr_sessions(bronze["ivr"], tz["ivr"], today),
            "digital": digital_contacts(
                bronze["digital"], tz["digital"], today, cfg.max_duration_s
            ),
        }
        crm, voice, ivr, digital = (_raw_if_quarantined(d, new[s]) for s, d in typed.items())
        # one lookup for every phone column: a customer's number is parsed once, not once
        # per table it appears in (half the parses at 100k customers)
        raw_phones = (
            crm.select(F.col("primary_phone").alias("_raw_phone"))
            .union(crm.select("secondary_phone"))  # union is by position
            .union(voice.select("customer_phone"))
            .union(ivr.select("ani"))
        )
        phones = phone_lookup(raw_phones, region).localCheckpoint()
        crm = normalise_phones(crm, "primary_phone", "_p1", region, phones)
        crm = (
            normalise_phones(crm, "secondary_phone", "_p2", region, phones)
            .withColumn("primary_phone", F.col("_p1"))
            .withColumn("secondary_phone", F.col("_p2"))
            .drop("_p1", "_p2")
        )
        voice = normalise_contact_phones(voice, region, phones)
        ivr = (
            normalise_phones(ivr, "ani", "_e164", region, phones)
            .withColumn("ani", F.col("_e164"))
            .drop("_e164")
        )
        crm, voice, ivr, digital = (d.localCheckpoint() for d in (crm, voice, ivr, digital))
        ok = F.col("_reason").isNull()
        calls, merged_ivr = attach_ivr(voice.where(ok), ivr.where(ok))
        merged_ivr = merged_ivr.localCheckpoint()
        contacts = (
            calls.select(*CONTACT_COLUMNS, "_batch_id")
            .unionByName(
                ivr_only_contacts(ivr.where(ok), merged_ivr).select(*CONTACT_COLUMNS, "_batch_id")
            )
            .unionByName(digital.where(ok).select(*CONTACT_COLUMNS, "_batch_id"))
        )
        contacts = collapse_duplicates(contacts, cfg.duplicate_tolerance_s).localCheckpoint()
        info["rows"] = contacts.count()

    with ctx.stage("clean business sources") as info:
        # every business row is cleaned (not only the new batches): subscriptions and bills
        # are rebuilt whole, and keys repeated across batches resolve to one row
        business = _clean_business(
            ctx, bronze, new, tz, contacts_changed=any(new[s] for s in SOURCES)
        )
        info["rows"] = len(business)

    with ctx.stage("account for every bronze row") as info:
        new_all = sorted({b for s in SOURCES for b in new[s]})
        contact_sources = {"crm": crm, "voice": voice, "ivr": ivr, "digital": digital}
        every_part = [_contact_outcome_counts(contact_sources, contacts, merged_ivr, new)]
        every_part += [_bronze_counts(s, bronze[s], new[s]) for s in SOURCES]
        for source, biz_source in business.items():
            if new[source]:
                every_part.append(
                    biz.outcome_counts(biz_source.cleaned, biz_source.outcomes, new[source]).select(
                        F.lit(source).alias("source"), "_batch_id", "label", "n"
                    )
                )
                every_part.append(_bronze_counts(source, bronze[source], new[source]))
        per_source = _check_counts(every_part)
        info["rows"] = sum(c.get("bronze", 0) for s in per_source.values() for c in s.values())

    with ctx.stage("identity") as info:
        valid_contacts = contacts.where(~F.col("_duplicate"))
        # the graph is built from distinct identifiers, not from every contact and session;
        # each is read twice (edges, hub links)
        contact_ids = contact_identifiers(valid_contacts).localCheckpoint()
        ivr_ids = ivr.where(ok).select("account_id", "ani").distinct().localCheckpoint()
        edges, links = identity_edges(crm.where(ok), contact_ids, ivr_ids)
        # read twice (components, every node)
        edges = edges.localCheckpoint()
        hubs = (
            find_hubs(links, cfg.hub_max_customers)
            .select("node")
            .withColumn("is_hub", F.lit(True))
            .localCheckpoint()
        )
        hub_count = hubs.count()
        # anti-joins with the (small) hub list broadcast, rather than an isin of a
        # collected list whose every name the plan of each task would carry
        hub_nodes = F.broadcast(hubs.select("node"))
        usable = edges.join(hub_nodes.withColumnRenamed("node", "src"), "src", "left_anti").join(
            hub_nodes.withColumnRenamed("node", "dst"), "dst", "left_anti"
        )
        components = connected_components(usable)
        nodes = (
            all_nodes(contact_ids, edges)
            .unionByName(crm.where(ok).select(node("crm", "customer_id").alias("node")))
            .distinct()
        )
        components = nodes.join(components, "node", "left").withColumn(
            "component", F.coalesce("component", "node")
        )
        previous = (
            ctx.lake.read("silver/identity_map")
            .select("node", "customer_key")
            .where("customer_key is not null")
            if ctx.lake.exists("silver/identity_map")
            else None
        )
        keyed, events = assign_keys(components, previous)
        identity = (
            keyed.join(hubs, "node", "left")
            .select(
                "node",
                F.substring_index("node", ":", 1).alias("id_type"),
                F.expr("substr(node, instr(node, ':') + 1)").alias("id_value"),
                F.when(F.col("is_hub").isNull(), F.col("customer_key")).alias("customer_key"),
                F.coalesce("is_hub", F.lit(False)).alias("is_hub"),
            )
            .localCheckpoint()
        )
        info["rows"] = identity.count()
        ctx.log.info("identity: %d identifiers, %d hubs", info["rows"], hub_count)

    with ctx.stage("silver contacts") as info:
        touched = (
            valid_contacts.where(F.col("_batch_id").isin(new_all)).select("contact_date").distinct()
        )
        dates = sorted(r.contact_date for r in touched.collect())
        keyed_contacts = contact_keys(
            valid_contacts.where(F.col("contact_date").isin(dates)), identity
        )
        out = keyed_contacts.select("customer_key", *CONTACT_COLUMNS).repartition("contact_date")
        written = ctx.write_checked(
            out,
            "silver/contacts",
            mode="overwrite",
            partition_by=["contact_date"],
            replace_where={"contact_date": [d.isoformat() for d in dates]},
            app_id=ctx.app_id,
        )
        info["rows"] = written.rows_added
        ctx.rows_out += written.rows_added

    with ctx.stage("silver identity_map and customers") as info:
        ctx.lake.write(identity, "silver/identity_map", mode="overwrite", app_id=ctx.app_id)
        ctx.lake.write(
            events.withColumn("run_date", F.lit(today)).selectExpr(
                *[c.split()[0] for c in EVENTS_SCHEMA.split(", ")]
            ),
            "silver/identity_events",
            app_id=ctx.app_id,
        )
        crm_keys = identity.where(F.col("id_type") == "crm").select(
            F.col("id_value").alias("customer_id"), "customer_key"
        )
        history = ctx.lake.read("silver/customers") if ctx.lake.exists("silver/customers") else None
        customers = scd2_customers(history, crm.where(ok), crm_keys)
        info["rows"] = ctx.write_checked(
            customers, "silver/customers", mode="overwrite", app_id=ctx.app_id
        ).rows_added

    with ctx.stage("silver business tables") as info:
        written = _write_business(ctx, business, crm_keys, new, valid_contacts, new_all)
        info["rows"] = written
        ctx.rows_out += written

    with ctx.stage("quarantine") as info:
        rejected = 0
        cleaned_sources = list(contact_sources.items())
        cleaned_sources += [(source, b.cleaned) for source, b in business.items()]
        for source, cleaned in cleaned_sources:
            if not new[source]:
                continue
            result = ctx.lake.write(
                _quarantine(cleaned, new[source]).select(*QUARANTINE_SCHEMA.fieldNames()),
                f"quarantine/{source}",
                partition_by=["_landing_date"],
                app_id=f"{ctx.app_id}/{source}",
            )
            rejected += result.rows_added
        info["rows"] = rejected
        ctx.rows_rejected += rejected

    now = datetime.now(UTC)
    rows = []
    for source, counts in per_source.items():
        for batch, c in counts.items():
            rows.append(
                {
                    "source": source,
                    "batch_id": batch,
                    "rows_bronze": c.get("bronze", 0),
                    "rows_silver": c.get("silver", 0),
                    "rows_quarantined": c.get("quarantined", 0),
                    "rows_merged": c.get("merged", 0),
                    "run_date": today,
                    "unified_at": now,
                }
            )
            ctx.rows_in += c.get("bronze", 0)
    ctx.lake.append_rows(REGISTRY, rows, REGISTRY_SCHEMA, app_id=ctx.app_id)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
