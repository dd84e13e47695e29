"""Tag catalog validation, tag values, report and the tags job on hand-built features."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from contactlake import schemas
from contactlake.config import load_config
from contactlake.features import customer_features
from contactlake.tags import (
    TagCatalogError,
    load_catalog,
    online,
    tag_report,
    tag_values,
    tags_as_of,
    tags_long,
    validate_catalog,
)
from jobs import tags as job
from tests.test_features import CONTACTS_DDL, CUSTOMERS_DDL

REPO = Path(__file__).resolve().parents[1]
CATALOG = REPO / "conf" / "tags"
D1, D2 = date(2026, 1, 30), date(2026, 1, 31)


@pytest.fixture(scope="module")
def features_schema(spark):
    """The schema jobs.features writes with the shipped config (no Spark job: empty inputs)."""
    cfg = load_config("test", conf_dir=REPO / "conf").features
    empty = {
        name: spark.createDataFrame([], ddl)
        for name, ddl in {
            "customers": CUSTOMERS_DDL,
            "contacts": CONTACTS_DDL,
            "subscriptions": schemas.SUBSCRIPTIONS,
            "bills": schemas.BILLS,
            "complaints": schemas.COMPLAINTS,
            "surveys": schemas.SURVEYS,
            "campaign_contacts": schemas.CAMPAIGN_CONTACTS,
        }.items()
    }
    params = cfg.model_dump(exclude={"extra_snapshots"})  # which snapshots, not how
    schema = customer_features(**empty, snapshot_date=D1, **params).schema
    return StructType([StructField(f.name, f.dataType) for f in schema.fields])  # as in the lake


def _features(spark, schema, snapshot: date, rows: list[dict]):
    return spark.createDataFrame(
        [tuple({"snapshot_date": snapshot, **r}.get(f.name) for f in schema.fields) for r in rows],
        schema,
    )


# Four customers; only the columns the starter tags read are set (the rest are null).
CUSTOMERS = [
    dict(customer_key="F1", age=23, gender="F", city_tier=1, customer_type="C", abc_tier="A",
         active=1, tenure_days=30, revenue_3m=300.0, revenue_prev_3m=0.0, repeat_contacts_30d=2,
         repeat_contacts_90d=2, contacts_voice_90d=10, contacts_ivr_90d=0, contacts_90d=12,
         top_channel_90d="voice", uses_app=1, uses_wechat=1, latest_nps=3, latest_csat=4,
         complaints_90d=2, open_complaint=0, abandons_90d=2, transfers_90d=0,
         mean_wait_s_90d=30.0),
    dict(customer_key="F2", age=24, gender="M", city_tier=3, customer_type="B",
         industry="retail", abc_tier="C", active=1, tenure_days=400, revenue_3m=70.0,
         revenue_prev_3m=100.0, repeat_contacts_30d=0, repeat_contacts_90d=0,
         contacts_voice_90d=0, contacts_ivr_90d=0, contacts_90d=0, uses_app=0, uses_wechat=0,
         latest_nps=9, latest_csat=5, complaints_90d=1, open_complaint=1, abandons_90d=0,
         transfers_90d=3, mean_wait_s_90d=None),
    dict(customer_key="F3", age=36, customer_type="C", abc_tier="B", active=0, tenure_days=800,
         repeat_contacts_30d=1, repeat_contacts_90d=1, contacts_voice_90d=0, contacts_ivr_90d=1,
         contacts_90d=1, top_channel_90d="ivr", uses_app=0, uses_wechat=1, complaints_90d=0,
         open_complaint=0, abandons_90d=0, transfers_90d=0, mean_wait_s_90d=200.0),
    dict(customer_key="F4", customer_type="C", abc_tier="C", active=1, tenure_days=200,
         revenue_3m=90.0, revenue_prev_3m=100.0, repeat_contacts_30d=0, repeat_contacts_90d=0,
         contacts_voice_90d=0, contacts_ivr_90d=0, contacts_90d=0, uses_app=0, uses_wechat=0,
         complaints_90d=0, open_complaint=0, abandons_90d=0, transfers_90d=0),
]  # fmt: skip

TAG_IDS = [
    "age_band", "gender", "region_tier", "customer_type", "industry", "value_tier",
    "lifecycle_stage", "repeat_caller", "heavy_caller", "preferred_channel", "digital_adopter",
    "silent_customer", "dissatisfied", "complaint_prone", "service_sensitive", "segment",
    "churn_risk",
]  # fmt: skip
# Worked out from the definitions in conf/tags/*.yaml (a model tag without its table is null).
EXPECTED = [
    ("F1", "under_24", "female", "tier_1", "consumer", None, "high", "acquisition", "true",
     "true", "voice", "app_and_wechat", "false", "true", "true", "true", None, "high"),
    # age 24 is in 24_35; revenue 70 < 80% of 100: decline; complaint open: complaint prone
    ("F2", "24_35", "male", "tier_3", "business", "retail", "low", "decline", "false", "false",
     None, "none", "true", "false", "true", "true", None, "low"),
    # inactive: exit; 1 hotline contact is not in the top 14% (percent rank 1/3)
    ("F3", "over_35", None, None, "consumer", None, "medium", "exit", "false", "false", "ivr",
     "wechat", "false", None, "false", "true", None, None),
    # revenue 90 is 90% of 100: no decline; tenure 200 < 365: growth
    ("F4", None, None, None, "consumer", None, "low", "growth", "false", "false", None, "none",
     "true", None, "false", "false", None, None),
]  # fmt: skip


def _write_catalog(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extra.yaml").write_text(body)
    return folder


def _tag_yaml(tag_id: str, expression: str, status: str = "online") -> str:
    return f"""
tags:
  - id: {tag_id}
    names: {{en: Test, zh: 测试}}
    category: behaviour
    path: [behaviour, test]
    type: rule
    expression: "{expression}"
    version: 2
    owner: tests
    status: {status}
    description: a tag for tests
"""


def test_starter_catalog_is_valid_and_complete(spark, features_schema):
    tags = load_catalog(CATALOG)
    validate_catalog(spark, tags, features_schema)  # raises on any bad expression

    assert [t.id for t in online(tags)] == TAG_IDS
    assert {t.spec.type for t in tags if t.id in ("segment", "churn_risk")} == {"model"}


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("contacts_90d >", "PARSE_SYNTAX_ERROR"),
        ("no_such_feature > 1", "no_such_feature"),
        ("max(contacts_90d)", "MISSING_GROUP_BY"),  # an aggregate is not a per-customer value
    ],
)
def test_bad_tag_is_rejected_naming_its_id_and_file(
    spark, features_schema, tmp_path, expression, reason
):
    folder = _write_catalog(tmp_path / "tags", _tag_yaml("broken_tag", expression))
    tags = load_catalog(folder)

    with pytest.raises(TagCatalogError, match="tag broken_tag") as error:
        validate_catalog(spark, tags, features_schema)
    assert "extra.yaml" in str(error.value) and reason in str(error.value)


def test_catalog_schema_errors_name_the_tag(tmp_path):
    bad_status = _tag_yaml("odd_tag", "true", status="live")
    with pytest.raises(TagCatalogError, match=r"tag odd_tag .*status"):
        load_catalog(_write_catalog(tmp_path / "a", bad_status))

    folder = _write_catalog(tmp_path / "b", _tag_yaml("gender", "true"))
    (folder / "10_basic.yaml").write_text((CATALOG / "10_basic.yaml").read_text())
    with pytest.raises(TagCatalogError, match="tag gender .*already used in .*10_basic.yaml"):
        load_catalog(folder)


def test_tag_values_of_hand_built_features(spark, features_schema):
    tags = online(load_catalog(CATALOG))
    features = _features(spark, features_schema, D2, CUSTOMERS)
    churn = spark.createDataFrame(
        [("F1", D2, 0.6, "churn", "3"), ("F2", D2, 0.1, "churn", "3")],
        "customer_key string, snapshot_date date, churn_probability double, "
        "model_name string, model_version string",
    )

    wide = tag_values(features, tags, {"gold/churn_scores": churn})

    expected = spark.createDataFrame(
        [(D2, *row) for row in EXPECTED],
        "snapshot_date date, customer_key string, " + ", ".join(f"{t} string" for t in TAG_IDS),
    )
    assert_df_equality(wide, expected, ignore_row_order=True, ignore_nullable=True)
    long = tags_long(wide, tags).where("customer_key = 'F3'")
    assert sorted((r.tag_id, r.value, r.tag_version) for r in long.collect()) == sorted(
        (t, v, 1) for t, v in zip(TAG_IDS, EXPECTED[2][1:], strict=True) if v is not None
    )


def test_tag_report_coverage_and_change(spark):
    tags = [t for t in load_catalog(CATALOG) if t.id in ("gender", "churn_risk")]
    now = spark.createDataFrame(
        [(D2, "A", "male", "high"), (D2, "B", None, "low"), (D2, "C", "female", None)],
        "snapshot_date date, customer_key string, gender string, churn_risk string",
    )
    # the previous snapshot had no churn_risk column yet, and customer C was not in it
    before = spark.createDataFrame(
        [(D1, "A", "male"), (D1, "B", "female")],
        "snapshot_date date, customer_key string, gender string",
    )

    rows = {r.tag_id: r for r in tag_report(now, before, tags, D2, D1).collect()}

    # gender: 2 of 3 covered; of A, B (in both) B changed female -> null
    assert (rows["gender"].covered, rows["gender"].customers) == (2, 3)
    assert rows["gender"].coverage == pytest.approx(2 / 3)
    assert (rows["gender"].compared_customers, rows["gender"].changed) == (2, 1)
    assert rows["gender"].change_rate == pytest.approx(0.5)
    # churn_risk: new, so both compared customers changed from null
    assert (rows["churn_risk"].covered, rows["churn_risk"].changed) == (2, 2)
    assert rows["churn_risk"].previous_snapshot_date == D1
    first = tag_report(now, None, tags, D2, None).collect()
    assert {(r.changed, r.change_rate, r.previous_snapshot_date) for r in first} == {
        (None, None, None)
    }


def test_tags_as_of_a_date_are_the_latest_snapshot_up_to_it(spark):
    long = spark.createDataFrame(
        [
            (D1, "A", "gender", "male", 1),
            (D1, "B", "gender", "female", 1),
            (D2, "A", "gender", "female", 1),
        ],
        "snapshot_date date, customer_key string, tag_id string, value string, tag_version int",
    )

    assert {(r.customer_key, r.value) for r in tags_as_of(long, D1).collect()} == {
        ("A", "male"),
        ("B", "female"),
    }
    # on 2026-02-15 the latest snapshot is D2: B has no gender then
    assert [(r.customer_key, r.value) for r in tags_as_of(long, date(2026, 2, 15)).collect()] == [
        ("A", "female")
    ]


def test_tags_job_reruns_unchanged_and_reports_change(spark, job_argv, lake, features_schema):
    day1 = _features(spark, features_schema, D1, [{**c, "age": 40} for c in CUSTOMERS])
    day2 = _features(spark, features_schema, D2, CUSTOMERS)
    lake.write(day1.unionByName(day2), "gold/customer_features", partition_by=["snapshot_date"])

    assert job.main(job_argv(D1.isoformat()), spark=spark) == 0
    argv = job_argv(D2.isoformat())
    assert job.main(argv, spark=spark) == 0
    tags_once = sorted(lake.read("gold/customer_tags").collect())
    portrait_once = sorted(lake.read("gold/customer_portrait").collect())
    assert job.main(argv, spark=spark) == 0

    assert sorted(lake.read("gold/customer_tags").collect()) == tags_once
    assert sorted(lake.read("gold/customer_portrait").collect()) == portrait_once
    portrait = lake.read("gold/customer_portrait").where(F.col("snapshot_date") == D2)
    assert portrait.columns == ["snapshot_date", "customer_key", *TAG_IDS]
    assert portrait.count() == 4
    report = {
        r.tag_id: r
        for r in lake.read("gold/tag_report").where(F.col("snapshot_date") == D2).collect()
    }
    assert len(report) == len(TAG_IDS)
    # day 1: everyone was 40 (over_35); day 2: F1 under_24, F2 24_35, F4 unknown
    age = report["age_band"]
    assert (age.previous_snapshot_date, age.compared_customers, age.changed) == (D1, 4, 3)
    assert (age.covered, report["churn_risk"].covered) == (3, 0)  # no churn scores yet


def test_tags_job_stops_on_a_bad_tag_naming_it(spark, job_argv, lake, tmp_path):
    folder = _write_catalog(tmp_path / "bad_tags", _tag_yaml("typo_tag", "contacts_900d > 1"))
    lake.write(
        spark.createDataFrame([(D1, "F1")], "snapshot_date date, customer_key string"),
        "gold/customer_features",
        partition_by=["snapshot_date"],
    )

    code = job.main(
        job_argv(D1.isoformat(), overrides=(f"tags.catalog_dir={folder}",)), spark=spark
    )

    assert code == 1
    error = lake.read("ops/job_runs").first().error
    assert "tag typo_tag" in error and "contacts_900d" in error
    assert not lake.exists("gold/customer_tags")
