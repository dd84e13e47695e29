"""End to end on generated data: generate (tiny, 60 days) -> ingest -> unify, scored
against the generator's ground truth. One pipeline run shared by the tests below."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pyspark.sql import functions as F

from contactlake.evaluation import duplicate_removal, identity_items, pairwise_cluster_scores
from contactlake.lake import Lake
from jobs import pipeline

# Minutes on 2 cores (generation, Great Expectations on Spark): run with `make test-e2e`.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

START, DAYS, LATE = date(2025, 1, 1), 60, 3
RUN_DATE = (START + timedelta(days=DAYS + LATE)).isoformat()
TABLES = [
    "bronze/crm",
    "bronze/voice",
    "bronze/ivr",
    "bronze/digital",
    "quarantine/voice",
    "silver/contacts",
    "silver/customers",
    "silver/identity_map",
    "ops/ingested_files",
    "ops/unified_batches",
]


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    overrides = [
        f"lake.root={root / 'lake'}",
        f"landing.root={root / 'landing'}",
        f"truth.root={root / 'truth'}",
        f"quality.docs_dir={root / 'quality'}",
        "generate.preset=tiny",
        f"generate.scale.days={DAYS}",
        f"generate.start_date={START}",
        "ingest.lookback_days=100",
    ]
    argv = ["--env", "test", "--run-date", RUN_DATE, *[a for o in overrides for a in ("--set", o)]]
    assert pipeline.main([*argv, "--jobs", "generate,ingest,unify"]) == 0
    return {"root": root, "argv": argv, "lake": Lake(str(root / "lake"), spark)}


def test_nothing_is_lost_between_landing_bronze_and_silver(run):
    lake = run["lake"]
    for r in lake.read("ops/ingested_files").collect():
        assert r.rows_landed == r.rows_bronze + r.rows_quarantined, r.path
    for r in lake.read("ops/unified_batches").collect():
        assert r.rows_bronze == r.rows_silver + r.rows_quarantined + r.rows_merged, (
            r.source,
            r.batch_id,
        )
    # the registry's bronze counts are the bronze tables' rows
    counted = {
        r.source: r.rows
        for r in lake.read("ops/unified_batches")
        .groupBy("source")
        .agg(F.sum("rows_bronze").alias("rows"))
        .collect()
    }
    assert counted == {
        s: lake.read(f"bronze/{s}").count() for s in ("crm", "voice", "ivr", "digital")
    }


def test_identity_matches_the_truth(spark, run):
    truth = spark.read.parquet(str(run["root"] / "truth" / "identity"))
    predicted, expected = identity_items(run["lake"].read("silver/identity_map"), truth)
    scores = pairwise_cluster_scores(predicted, expected).first()
    assert scores.items > 1000
    assert scores.precision >= 0.98 and scores.recall >= 0.98, scores


def test_duplicate_calls_are_removed(spark, run):
    defects = spark.read.parquet(str(run["root"] / "truth" / "defects"))
    row = duplicate_removal(run["lake"].read("silver/contacts"), defects).first()
    assert row.planted > 0 and row.removed_share >= 0.99, row


def test_contacts_are_unique_and_keyed(run):
    contacts = run["lake"].read("silver/contacts")
    assert contacts.count() == contacts.select("contact_id").distinct().count()
    keyed = contacts.where("customer_key is not null").count() / contacts.count()
    assert keyed > 0.9


def test_rerunning_ingest_and_unify_changes_nothing(spark, run):
    lake = run["lake"]
    before = {t: (lake.version(t), lake.read(t).count()) for t in TABLES}
    assert (
        pipeline.main(
            [*run["argv"], "--jobs", "ingest,unify"],
        )
        == 0
    )
    assert {t: (lake.version(t), lake.read(t).count()) for t in TABLES} == before
