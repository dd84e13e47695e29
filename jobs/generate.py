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

from contactlake.generate import contacts as ct
from contactlake.generate import customers as cu
from contactlake.generate import defects as dq
from contactlake.generate import model, writers
from contactlake.generate.catalog import PERSONA_NAMES
from contactlake.generate.params import resolve
from contactlake.runner import JobContext, run_job

JOB = "generate"
SOURCES = ("crm", "voice", "ivr", "digital")
TRUTH = ("customers", "churn", "identity", "contacts", "defects", "params.json")


def _write_source(ctx: JobContext, name: str, df, p, root: str, ext: str, headers=None) -> int:
    df = df.persist(StorageLevel.DISK_ONLY)
    try:
        with ctx.stage(f"landing {name}") as info:
            writers.write_lines(df, root, name, p.partitions, ext=ext, headers=headers)
            info["rows"] = written = df.count()
        with ctx.stage(f"truth defects {name}") as info:
            bad = dq.defect_truth(df, name, F.col("file"), F.col("record_id"))
            writers.write_truth(bad, ctx.cfg.truth.root, f"defects/source={name}", 1)
            info["rows"] = bad.count()
        return written
    finally:
        df.unpersist()


def run(ctx: JobContext) -> None:
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
    writers.clear(truth, *TRUTH)
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
        crm = cu.crm(state, p)
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
    finally:
        state.unpersist()
    late = p.cfg.late_max_days
    rows += _write_source(
        ctx, "voice", ct.voice(contacts, p), p, landing, "csv", ct.voice_headers(p, late + 1)
    )
    rows += _write_source(ctx, "ivr", ct.ivr(contacts, p), p, landing, "jsonl")
    rows += _write_source(ctx, "digital", ct.digital(contacts, p), p, landing, "jsonl")
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
