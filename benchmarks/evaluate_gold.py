"""Score the gold layer of a built lake against the generator's truth: KPIs against the
planted concentration and repeat share, churn scores against the true churn probabilities,
segments against the planted personas (next to what a model told the personas reaches),
uplift scores against the true uplift. Prints a markdown table and writes
benchmarks/results/evaluate-gold-<name>.json.

    .venv/bin/python -m benchmarks.evaluate_gold --env local [--name demo] [--snapshot 2025-11-30]
        [--skip ceiling] [--skip uplift]

The KPI code is applied twice: to silver (what the pipeline reports) and to the truth's own
contacts keyed by the true customer, which separates the KPI definition from identity
resolution. Churn is compared on the validation snapshot, whose outcomes are known.

Uplift: for each campaign with true uplifts, its eligible customers (treatment and control)
are ranked by the champion's score in gold/uplift_scores, by a response-propensity model (a
plain classifier of response fitted on the treated customers of the uplift model's own
training rows, same features, learner and snapshots), by the true uplift (the best possible)
and at random; the top 10/20/30% of each ranking is judged by the truth: expected
incremental responders per contact (mean true uplift) and expected responders per contact
(mean true response probability when contacted). Random selection is its exact expectation
(the population mean). Figures are given for all eligible customers and for the customers
the uplift model held out for validation.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from mlflow import MlflowClient
from pyspark.ml import Pipeline
from pyspark.ml.classification import RandomForestClassifier
from pyspark.ml.feature import Imputer, StringIndexer, VectorAssembler
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from benchmarks.common import save
from contactlake.config import load_config
from contactlake.evaluation import adjusted_rand_index, roc_auc
from contactlake.kpis import concentration, followed_contacts, inbound, repeat_facts
from contactlake.lake import Lake
from contactlake.ml import churn, tracking, uplift
from contactlake.ml.data import as_double, model_inputs
from contactlake.spark import build_session


def planted_figures(contacts: DataFrame, first: date, last: date, window: int, top: float) -> dict:
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


def _attribution(silver: DataFrame, truth_contacts: DataFrame, keys: DataFrame) -> dict:
    """How identity resolution attributed the true inbound contacts: the share the pipeline
    tied to a CRM customer, and of those the share tied to the right one.

    Args:
        silver: silver/contacts (``contact_id, customer_key``).
        truth_contacts: ``contact_id, customer_key`` (the true customer), ``direction``.
        keys: ``customer_key, customer_id`` of silver/customers.

    Returns:
        ``linked_ids``: the contact ids tied to the right customer; ``shares``: ``contacts``,
        ``crm_linked``, ``right_among_linked``.
    """
    true = inbound(truth_contacts).select("contact_id", F.col("customer_key").alias("true_id"))
    pipeline = silver.join(keys, "customer_key").select("contact_id", "customer_id")
    # counted here and joined again for the repeat share on the tied contacts: computed once
    both = true.join(pipeline.dropDuplicates(["contact_id"]), "contact_id", "left").cache()
    right = F.col("customer_id") == F.col("true_id")
    row = both.agg(
        F.count(F.lit(1)).alias("contacts"),
        F.count("customer_id").alias("linked"),
        F.count(F.when(right, 1)).alias("right"),
    ).first()
    shares = {
        "contacts": row.contacts,
        "crm_linked": row.linked / max(row.contacts, 1),
        "right_among_linked": row.right / max(row.linked, 1),
    }
    return {"linked_ids": both.where(right), "shares": shares}


UPLIFT_FRACTIONS = (0.1, 0.2, 0.3)
SELECTIONS = {  # ranking column -> name in the results
    "score": "uplift model",
    "p_response": "response propensity",
    "true_uplift": "truth (best possible)",
}


def _top_shares(population: DataFrame, fractions=UPLIFT_FRACTIONS) -> list[dict]:
    """Mean true uplift and true treated response probability of the top share of each
    campaign's customers under each ranking of :data:`SELECTIONS`, and at random.

    Args:
        population: campaign_id, customer_id, true_uplift, p_treated_true, and the ranking
            columns (higher first; ties by customer_id).
    """
    per_campaign = Window.partitionBy("campaign_id")
    ranked = population.withColumn("_n", F.count("*").over(per_campaign))
    for column in SELECTIONS:
        order = per_campaign.orderBy(F.col(column).desc_nulls_last(), "customer_id")
        ranked = ranked.withColumn(f"_rank_{column}", F.row_number().over(order))
    aggs = [
        F.first("_n").alias("customers"),
        F.avg("true_uplift").alias("random_incremental"),
        F.avg("p_treated_true").alias("random_responders"),
    ]
    for column in SELECTIONS:
        for f in fractions:
            top = F.col(f"_rank_{column}") <= F.greatest(F.round(F.col("_n") * f), F.lit(1))
            aggs += [
                F.avg(F.when(top, F.col("true_uplift"))).alias(f"{column}|{f}|incremental"),
                F.avg(F.when(top, F.col("p_treated_true"))).alias(f"{column}|{f}|responders"),
            ]
    rows = ranked.groupBy("campaign_id").agg(*aggs).orderBy("campaign_id").collect()
    out = []
    for r in rows:
        d = r.asDict()
        result = {"campaign_id": d["campaign_id"], "customers": d["customers"], "top": {}}
        for f in fractions:
            result["top"][str(f)] = {
                "random": {
                    "incremental_per_contact": d["random_incremental"],
                    "responders_per_contact": d["random_responders"],
                },
                **{
                    SELECTIONS[c]: {
                        "incremental_per_contact": d[f"{c}|{f}|incremental"],
                        "responders_per_contact": d[f"{c}|{f}|responders"],
                    }
                    for c in SELECTIONS
                },
            }
        out.append(result)
    return out


def _persona_ceiling(features: DataFrame, personas: DataFrame, seed: int = 7) -> dict:
    """How far any segmentation could match the personas: a random forest *told* the
    personas (half the customers, every numeric feature) predicts the other half; its
    adjusted Rand index is a practical ceiling for unsupervised clustering of these features
    (which never sees the personas).

    Args:
        features: one snapshot of the feature table with ``customer_id``.
        personas: ``customer_id``, ``cluster`` (the true persona).
    """
    numeric = [
        f.name
        for f in features.schema.fields
        if f.dataType.typeName() in ("integer", "long", "double", "float", "short", "boolean")
    ]
    rows = as_double(features, numeric).join(personas, "customer_id")
    train, test = rows.randomSplit([0.5, 0.5], seed=seed)
    model = Pipeline(
        stages=[
            StringIndexer(inputCol="cluster", outputCol="persona_index"),
            Imputer(inputCols=numeric, outputCols=[f"{c}__i" for c in numeric], strategy="median"),
            VectorAssembler(inputCols=[f"{c}__i" for c in numeric], outputCol="features_vec"),
            RandomForestClassifier(
                featuresCol="features_vec",
                labelCol="persona_index",
                numTrees=60,
                maxDepth=10,
                seed=seed,
            ),
        ]
    ).fit(train)
    predicted = model.transform(test).select(
        F.col("customer_id").alias("item"), F.col("prediction").cast("int").alias("cluster")
    )
    scored = adjusted_rand_index(predicted, personas.withColumnRenamed("customer_id", "item"))
    row = scored.first()
    return {"customers": row.items, "ari": row.ari, "features": len(numeric)}


def _uplift_vs_truth(spark, lake: Lake, cfg, truth: str, ids: DataFrame) -> dict:
    """Uplift, propensity, truth and random selection judged by the true uplift."""
    ucfg, feats = cfg.ml.uplift, cfg.ml.features
    champion = tracking.champion(ucfg.model_name)
    if champion is None or not lake.exists(cfg.ml.uplift_scores_table):
        return {"missing": "no uplift champion or scores: run jobs.train_uplift, jobs.score"}
    run = MlflowClient().get_run(champion.run_id)
    params = run.data.params
    campaigns = params["campaigns"].split(",")
    snapshots = {c: date.fromisoformat(params[f"snapshot.{c}"]) for c in campaigns}
    columns = params["features"].split(",")
    table = lake.read(feats.table)
    features = as_double(
        table.where(F.col(feats.snapshot_column).isin(sorted(set(snapshots.values())))),
        columns,
    )
    rows = uplift.split_by_customer(
        uplift.training_rows(
            uplift.campaign_outcomes(lake.read(ucfg.campaigns_table)),
            features,
            snapshots,
            key=feats.key,
            snapshot_column=feats.snapshot_column,
        ),
        key=feats.key,
        share=float(params["validation_share"]),
        seed=int(params["seed"]),
    )
    treated_train = rows.where((F.col(uplift.TREATED) == 1.0) & ~F.col(uplift.VALIDATION))
    # the champion's own inputs and learner
    categorical = params.get("categorical_columns", "none")
    learner = ucfg.model_copy(
        update={
            "categorical_columns": [] if categorical == "none" else categorical.split(","),
            "classifier": params.get("classifier", ucfg.classifier),
        }
    )
    propensity = uplift.fit_response(treated_train.cache(), columns, learner)

    scores = lake.read(cfg.ml.uplift_scores_table)
    snapshot = scores.agg(F.max("snapshot_date")).first()[0]
    scores = scores.where(F.col("snapshot_date") == F.lit(snapshot)).where(
        F.col("model_version") == str(champion.version)
    )
    current = as_double(table.where(F.col(feats.snapshot_column) == F.lit(snapshot)), columns)
    response = uplift.with_response(propensity, uplift.campaign_grid(current, campaigns)).select(
        F.col(feats.key).alias("customer_key"), "campaign_id", uplift.P_RESPONSE
    )
    true = spark.read.parquet(f"{truth}/uplift").select(
        "customer_id",
        "campaign_id",
        F.col("uplift").alias("true_uplift"),
        F.col("p_response_treatment").alias("p_treated_true"),
    )
    population = uplift.split_by_customer(
        true.join(ids, "customer_id")
        .join(
            scores.select("customer_key", "campaign_id", F.col("uplift").alias("score")),
            ["customer_key", "campaign_id"],
        )
        .join(response, ["customer_key", "campaign_id"]),
        key="customer_key",
        share=float(params["validation_share"]),
        seed=int(params["seed"]),
    ).cache()
    result = {
        "model_version": int(champion.version),
        "method": params.get("method"),
        "score_snapshot": str(snapshot),
        "training_snapshots": {c: str(s) for c, s in snapshots.items()},
        "validation_metrics": {
            k: v
            for k, v in run.data.metrics.items()
            if k.split(".")[0]
            in ("qini_coefficient", "auuc", "uplift_at_10", "uplift_at_20", "uplift_at_30", "ate")
        },
        "all_customers": _top_shares(population),
        "held_out_customers": _top_shares(population.where(uplift.VALIDATION)),
    }
    population.unpersist()
    return result


def _uplift_markdown(u: dict) -> list[str]:
    if "missing" in u:
        return [f"Uplift: {u['missing']}"]
    names = ["uplift model", "response propensity", "random", "truth (best possible)"]
    lines = [
        "",
        f"#### Uplift vs truth: expected incremental responders per contact "
        f"(model v{u['model_version']} {u['method']}, scores of {u['score_snapshot']})",
        "Top 10 / 20 / 30% of each campaign's eligible customers by each ranking; in brackets "
        "the expected responders per contact (incremental or not).",
        "",
        "| campaign | customers | selection | top 10% | top 20% | top 30% |",
        "|---|---|---|---|---|---|",
    ]
    for scope, label in (("all_customers", "all"), ("held_out_customers", "held out")):
        for c in u[scope]:
            for name in names:
                cells = []
                for f in UPLIFT_FRACTIONS:
                    v = c["top"][str(f)][name]
                    cells.append(
                        f"{v['incremental_per_contact']:.4f} ({v['responders_per_contact']:.3f})"
                    )
                lines.append(
                    f"| {c['campaign_id']} ({label}) | {c['customers']:,} | {name} | "
                    + " | ".join(cells)
                    + " |"
                )
    return lines


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="local")
    parser.add_argument("--name", default="demo")
    parser.add_argument("--snapshot", default="2025-11-30", help="validation snapshot")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["ceiling", "uplift"],
        help="leave out the random-forest ceiling or the uplift comparison (the slow parts)",
    )
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
    # customer_key -> true customer via the CRM id
    keys = (
        lake.read("silver/customers")
        .where("is_current")
        .select("customer_key", "customer_id")
        .dropDuplicates(["customer_key"])
    )
    attribution = _attribution(silver, truth_contacts, keys)
    linked_truth = truth_contacts.join(
        attribution["linked_ids"].select("contact_id"), "contact_id", "left_semi"
    )
    kpis = {
        "planted": {"repeat_share": g["repeat_share"], "concentration": g["concentration"]},
        # as jobs.kpis reports them: the contacts of the configured KPI base
        "silver": planted_figures(
            followed_contacts(silver, lake.read("silver/customers"), cfg.kpis.customer_base),
            first,
            last,
            window,
            top,
        ),
        "silver_any_key": planted_figures(silver, first, last, window, top),
        "truth_contacts": planted_figures(truth_contacts, first, last, window, top),
        "truth_contacts_linked": planted_figures(linked_truth, first, last, window, top),
        "attribution": attribution["shares"],
    }
    snapshot = date.fromisoformat(args.snapshot)
    features = lake.read(cfg.ml.features.table).where(F.col("snapshot_date") == F.lit(snapshot))
    tracking.configure(cfg.mlflow)
    version, run_id, model = tracking.load_champion(cfg.ml.churn.model_name)
    trained_with = churn.trained_positive_weight(run_id)
    scored = churn.churn_scores(
        churn.with_probability(model, as_double(features, model_inputs(model)), trained_with),
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
    ceiling = None
    if "ceiling" not in args.skip:
        ceiling = _persona_ceiling(
            lake.read(cfg.ml.features.table).where(F.col("snapshot_date") == F.lit(latest)),
            personas,
        )
    uplift_result = {"missing": "not compared (--skip uplift)"}
    if "uplift" not in args.skip:
        ids = keys.dropDuplicates(["customer_id"])
        uplift_result = _uplift_vs_truth(spark, lake, cfg, truth, ids)
    result = {
        "kpis": {**kpis, "customer_base": cfg.kpis.customer_base},
        "churn": {
            "snapshot": args.snapshot,
            "model_version": version,
            "customers": model_auc["positives"] + model_auc["negatives"],
            "churners": model_auc["positives"],
            "model_auc": model_auc["auc"],
            "truth_auc": truth_auc["auc"],
            "ratio": model_auc["auc"] / truth_auc["auc"],
        },
        "segments": {
            "snapshot": str(latest),
            "customers": ari.items,
            "ari": ari.ari,
            "supervised_ceiling": ceiling,
        },
        "uplift": uplift_result,
    }
    c, s, a = result["churn"], result["segments"], kpis["attribution"]
    base = cfg.kpis.customer_base
    md = "\n".join(
        [
            f"### Gold vs truth ({args.name})",
            "| measure | planted / truth | KPI code on truth contacts | pipeline |",
            "|---|---|---|---|",
            f"| repeat share ({window} d) | {g['repeat_share']:.3f} | "
            f"{kpis['truth_contacts']['repeat_share']:.3f} | {kpis['silver']['repeat_share']:.3f} "
            f"(KPI base: {base}) |",
            f"| the same, contacts the pipeline tied to their customer ({a['crm_linked']:.1%} of "
            f"{a['contacts']:,} inbound; {a['right_among_linked']:.2%} of them right) | | "
            f"{kpis['truth_contacts_linked']['repeat_share']:.3f} | |",
            f"| the same, every contact with a customer_key (KPI base any_key) | | | "
            f"{kpis['silver_any_key']['repeat_share']:.3f} |",
            f"| calls from top {top:.0%} of callers | {g['concentration']['call_share']:.3f} | "
            f"{kpis['truth_contacts']['concentration']:.3f} | {kpis['silver']['concentration']:.3f} "
            f"(any_key: {kpis['silver_any_key']['concentration']:.3f}) |",
            f"| churn ROC AUC ({c['snapshot']}, {c['customers']:,} customers, "
            f"{c['churners']:,} churners) | {c['truth_auc']:.4f} (true probabilities) | | "
            f"{c['model_auc']:.4f} (ratio {c['ratio']:.3f}) |",
            f"| segments vs personas, adjusted Rand ({s['customers']:,} customers) | 1 | | "
            f"{s['ari']:.3f} |",
            *(
                [
                    f"| the same, practical ceiling from these features: a random forest told "
                    f"the personas, on {ceiling['customers']:,} held-out customers | 1 | | "
                    f"{ceiling['ari']:.3f} |"
                ]
                if ceiling
                else []
            ),
            *_uplift_markdown(uplift_result),
        ]
    )
    save(f"evaluate-gold-{args.name}", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
