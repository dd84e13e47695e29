"""Score the gold layer of a built lake against the generator's truth: KPIs against the
planted concentration and repeat share, churn scores against the true churn probabilities,
segments against the planted personas. Prints a markdown table and writes
benchmarks/results/evaluate-gold-<name>.json.

    .venv/bin/python -m benchmarks.evaluate_gold --env local [--name demo] [--snapshot 2025-11-30]

The KPI code is applied twice: to silver (what the pipeline reports) and to the truth's own
contacts keyed by the true customer, which separates the KPI definition from identity
resolution. Churn is compared on the validation snapshot, whose outcomes are known.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from benchmarks.common import save
from contactlake.config import load_config
from contactlake.evaluation import adjusted_rand_index, roc_auc
from contactlake.kpis import concentration, inbound, repeat_facts
from contactlake.lake import Lake
from contactlake.ml import churn, tracking
from contactlake.ml.data import as_double, model_inputs
from contactlake.spark import build_session


def _planted_kpis(contacts: DataFrame, first: date, last: date, window: int, top: float) -> dict:
    """Repeat share and top-``top`` concentration of hotline calls over the whole period."""
    repeat = (
        repeat_facts(inbound(contacts), window, "resolved")
        .where((F.col("kpi_id") == "repeat_contact_rate") & F.col("kpi_date").between(first, last))
        .agg(F.sum("numerator") / F.sum("denominator"))
        .first()[0]
    )
    hotline = inbound(contacts).where(F.col("channel").isin("voice", "ivr"))
    days = (last - first).days + 1
    conc = (
        concentration(hotline, last, last, days, [top], 10)
        .where(F.col("dimension") == "top_share")
        .first()
        .value
    )
    return {"repeat_share": repeat, "concentration": conc}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="local")
    parser.add_argument("--name", default="demo")
    parser.add_argument("--snapshot", default="2025-11-30", help="validation snapshot")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    cfg = load_config(args.env, args.overrides)
    spark = build_session(cfg.spark)
    lake = Lake.from_config(cfg.lake, spark)
    truth = cfg.truth.root
    params = json.loads(Path(truth, "params.json").read_text())
    first = date.fromisoformat(params["start"])
    last = date.fromordinal(first.toordinal() + params["days"] - 1)
    g = params["config"]
    window, top = g["repeat_window_days"], g["concentration"]["top_share"]

    silver = lake.read("silver/contacts")
    truth_contacts = spark.read.parquet(f"{truth}/contacts").select(
        F.col("customer_id").alias("customer_key"),
        "contact_id",
        "channel",
        "direction",
        F.col("ts").alias("start_ts"),
        F.to_date(F.from_utc_timestamp("ts", "Asia/Shanghai")).alias("contact_date"),
        F.lit(None).cast("string").alias("queue"),
        F.lit(None).cast("boolean").alias("resolved"),
    )
    kpis = {
        "planted": {"repeat_share": g["repeat_share"], "concentration": g["concentration"]},
        "silver": _planted_kpis(silver, first, last, window, top),
        "truth_contacts": _planted_kpis(truth_contacts, first, last, window, top),
    }

    # customer_key -> true customer via the CRM id
    keys = (
        lake.read("silver/customers")
        .where("is_current")
        .select("customer_key", "customer_id")
        .dropDuplicates(["customer_key"])
    )
    snapshot = date.fromisoformat(args.snapshot)
    features = lake.read(cfg.ml.features.table).where(F.col("snapshot_date") == F.lit(snapshot))
    tracking.configure(cfg.mlflow)
    version, _, model = tracking.load_champion(cfg.ml.churn.model_name)
    scored = churn.churn_scores(
        churn.with_probability(model, as_double(features, model_inputs(model))),
        key="customer_key",
        snapshot_column="snapshot_date",
        model_name=cfg.ml.churn.model_name,
        model_version=version,
    )
    true_churn = spark.read.parquet(f"{truth}/churn").where(
        F.col("snapshot_date") == F.lit(snapshot)
    )
    both = (
        scored.join(keys, "customer_key")
        .join(true_churn.select("customer_id", "churn_prob", "churned"), "customer_id")
        .cache()
    )
    model_auc = roc_auc(both, "churn_probability", "churned").first().asDict()
    truth_auc = roc_auc(both, "churn_prob", "churned").first().asDict()

    personas = spark.read.parquet(f"{truth}/customers").select(
        "customer_id", F.col("persona").alias("cluster")
    )
    segments = lake.read(cfg.ml.segments_table)
    latest = segments.agg(F.max("snapshot_date")).first()[0]
    predicted = (
        segments.where(F.col("snapshot_date") == F.lit(latest))
        .join(keys, "customer_key")
        .select(F.col("customer_id").alias("item"), F.col("segment_id").alias("cluster"))
    )
    ari = adjusted_rand_index(predicted, personas.withColumnRenamed("customer_id", "item")).first()
    result = {
        "kpis": kpis,
        "churn": {
            "snapshot": args.snapshot,
            "model_version": version,
            "customers": model_auc["positives"] + model_auc["negatives"],
            "churners": model_auc["positives"],
            "model_auc": model_auc["auc"],
            "truth_auc": truth_auc["auc"],
            "ratio": model_auc["auc"] / truth_auc["auc"],
        },
        "segments": {"snapshot": str(latest), "customers": ari.items, "ari": ari.ari},
    }
    c, s = result["churn"], result["segments"]
    md = "\n".join(
        [
            f"### Gold vs truth ({args.name})",
            "| measure | planted / truth | KPI code on truth contacts | pipeline |",
            "|---|---|---|---|",
            f"| repeat share ({window} d) | {g['repeat_share']:.3f} | "
            f"{kpis['truth_contacts']['repeat_share']:.3f} | {kpis['silver']['repeat_share']:.3f} |",
            f"| calls from top {top:.0%} of callers | {g['concentration']['call_share']:.3f} | "
            f"{kpis['truth_contacts']['concentration']:.3f} | {kpis['silver']['concentration']:.3f} |",
            f"| churn ROC AUC ({c['snapshot']}, {c['customers']:,} customers, "
            f"{c['churners']:,} churners) | {c['truth_auc']:.4f} (true probabilities) | | "
            f"{c['model_auc']:.4f} (ratio {c['ratio']:.3f}) |",
            f"| segments vs personas, adjusted Rand ({s['customers']:,} customers) | 1 | | "
            f"{s['ari']:.3f} |",
        ]
    )
    save(f"evaluate-gold-{args.name}", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
