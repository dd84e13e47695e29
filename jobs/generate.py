"""Generate synthetic source-system exports into landing/ and their ground truth into truth/.

    python -m jobs.generate --env local [--set generate.preset=tiny|demo|large] [--set generate.seed=7]

Same seed and settings give byte-identical landing files; a re-run replaces the output.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import functions as F

from contactlake.generate import business as bz
from contactlake.generate import contacts as ct
from contactlake.generate import customers as cu
from contactlake.generate import defects as dq
from contactlake.generate import model, writers
from contactlake.generate.catalog import PERSONA_NAMES
from contactlake.generate.params import resolve
from contactlake.runner import JobContext, run_job
from contactlake.spark import session_conf

JOB = "generate"
SOURCES = (
    "crm",
    "voice",
    "ivr",
    "digital",
    "billing",
    "campaign",
    "surveys",
    "complaints",
    "sms",
    "clickstream",
)
TRUTH = (
    "customers",
    "churn",
    "identity",
    "contacts",
    "defects",
    "subscriptions",
    "uplift",
    "surveys",
    "complaints",
    "params.json",
)


def _write_source(
    ctx: JobContext, name: str, df, p, root: str, ext: str, headers=None, header=None
) -> int:
    """Write a source's landing files and, in the same pass, the truth of its defects."""
    truth = ctx.cfg.truth.root
    with ctx.stage(f"landing {name}") as info:
        written = writers.write_lines(
            df,
            root,
            name,
            p.landing_partitions,
            ext=ext,
            headers=headers,
            header=header,
            header_dates=[p.day(d).isoformat() for d in p.landing_days],
            side=dq.defect_json(name, F.col("file"), F.col("record_id")),
            side_to=f"{truth}/_staging/defects-{name}.jsonl",
        )
        info["rows"] = written.rows
    with ctx.stage(f"truth defects {name}") as info:
        spark = ctx.spark
        if written.side is None:
            bad = spark.createDataFrame([], dq.TRUTH_SCHEMA)
        else:
            bad = spark.read.schema(dq.TRUTH_SCHEMA).json(str(written.side))
        # the folder name carries the source: a column of that name in the files as well made
        # Spark warn (COLUMN_ALREADY_EXISTS) on every read of truth/defects
        writers.write_truth(bad.drop("source"), truth, f"defects/source={name}", 1)
        info["rows"] = spark.read.parquet(f"{truth}/defects/source={name}").count()
        writers.clear(truth, "_staging")
    return written.rows


GENERATE_CONF = {
    # lower() of the hex ids through the JVM's ASCII path rather than ICU (4% of billing's
    # CPU); the generator only changes the case of ASCII text, where both agree.
    "spark.sql.icu.caseMappings.enabled": "false",
}


def run(ctx: JobContext) -> None:
    with session_conf(ctx.spark, GENERATE_CONF):
        _run(ctx)


def _run(ctx: JobContext) -> None:
    g = ctx.cfg.generate
    landing, truth = ctx.cfg.landing.root, ctx.cfg.truth.root
    with ctx.stage("calibrate") as info:
        p = resolve(g)
        info["rows"] = p.customers
    ctx.log.info(
        "scale: %d customers, %d days from %s; sigma=%.3f q=%.3f",
        p.customers,
        p.days,
        p.start,
        p.calib.sigma,
        p.calib.q,
    )
    writers.clear(landing, *SOURCES, "_staging")
    writers.clear(truth, *TRUTH, "_staging")
    rows = 0
    spark = ctx.spark
    state = model.customer_state(spark, p).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        with ctx.stage("truth customers") as info:
            writers.write_truth(cu.customers_truth(state, p), truth, "customers", p.partitions)
            info["rows"] = state.count()
        with ctx.stage("truth churn") as info:
            writers.write_truth(cu.churn_truth(state, p), truth, "churn", p.partitions)
            info["rows"] = spark.read.parquet(f"{truth}/churn").count()
        # identity truth and the CRM file both read the CRM rows: compute them once
        crm = cu.crm(state, p).persist(StorageLevel.DISK_ONLY)
        with ctx.stage("truth identity") as info:
            writers.write_truth(cu.identity_truth(crm), truth, "identity", p.partitions)
            info["rows"] = spark.read.parquet(f"{truth}/identity").count()
        crm_lines = crm.withColumn(
            "file", F.concat(F.lit("crm/"), F.col("date"), F.lit("/part-00000.csv"))
        )
        rows += _write_source(
            ctx,
            "crm",
            crm_lines,
            p,
            landing,
            "csv",
            {p.start.isoformat(): ",".join(cu.CRM_COLUMNS)},
        )
        with ctx.stage("truth contacts") as info:
            writers.write_truth(ct.contacts_truth(state, p), truth, "contacts", p.partitions)
            contacts = spark.read.parquet(f"{truth}/contacts")
            info["rows"] = contacts.count()
        with ctx.stage("truth subscriptions") as info:
            crm.unpersist()
            subs = bz.subscriptions(state, p).persist(StorageLevel.MEMORY_AND_DISK)
            writers.write_truth(
                bz.subscriptions_truth(subs, p), truth, "subscriptions", p.partitions
            )
            info["rows"] = spark.read.parquet(f"{truth}/subscriptions").count()
        rows += _write_source(
            ctx,
            "billing",
            bz.billing(subs, p),
            p,
            landing,
            "csv",
            header=",".join(bz.BILLING_COLUMNS),
        )
        with ctx.stage("truth uplift") as info:
            targets = bz.campaign_targets(state, p)
            writers.write_truth(bz.uplift_truth(targets), truth, "uplift", p.partitions)
            info["rows"] = spark.read.parquet(f"{truth}/uplift").count()
        rows += _write_source(
            ctx,
            "campaign",
            bz.campaign(targets, p),
            p,
            landing,
            "csv",
            header=",".join(bz.CAMPAIGN_COLUMNS),
        )
        subs.unpersist()
    finally:
        state.unpersist()
    rows += _write_source(
        ctx, "voice", ct.voice(contacts, p), p, landing, "csv", ct.voice_headers(p)
    )
    rows += _write_source(ctx, "ivr", ct.ivr(contacts, p), p, landing, "jsonl")
    rows += _write_source(ctx, "digital", ct.digital(contacts, p), p, landing, "jsonl")
    with ctx.stage("truth surveys") as info:
        writers.write_truth(bz.surveys(contacts, p).drop("_day"), truth, "surveys", p.partitions)
        surveys = spark.read.parquet(f"{truth}/surveys")
        info["rows"] = surveys.count()
    sv = surveys.withColumn("_day", F.floor(F.col("t") / model.DAY_S).cast("int"))
    rows += _write_source(
        ctx,
        "surveys",
        bz.survey_lines(sv, p),
        p,
        landing,
        "csv",
        header=",".join(bz.SURVEY_COLUMNS),
    )
    with ctx.stage("truth complaints") as info:
        tickets = bz.complaints(contacts, p).persist(StorageLevel.DISK_ONLY)
        writers.write_truth(bz.complaints_truth(tickets), truth, "complaints", p.partitions)
        info["rows"] = tickets.count()
    rows += _write_source(ctx, "complaints", bz.complaint_lines(tickets, p), p, landing, "jsonl")
    tickets.unpersist()
    rows += _write_source(
        ctx, "sms", bz.sms(contacts, p), p, landing, "csv", header=",".join(bz.SMS_COLUMNS)
    )
    rows += _write_source(ctx, "clickstream", bz.clickstream(contacts, p), p, landing, "jsonl")
    params = {
        "seed": p.seed,
        "customers": p.customers,
        "days": p.days,
        "start": p.start.isoformat(),
        "persona_weights": dict(zip(PERSONA_NAMES, p.weights, strict=True)),
        "calibration": asdict(p.calib),
        "snapshots": list(p.snapshots),
        "hubs": p.hubs,
        "incident_days": list(p.incident_days),
        "drift_day": p.drift_day,
        "config": json.loads(g.model_dump_json()),
    }
    Path(truth).mkdir(parents=True, exist_ok=True)
    (Path(truth) / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True))
    ctx.rows_out = rows
    ctx.log.info("generated %s landing records under %s", f"{rows:,}", landing)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
