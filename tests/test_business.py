"""Business sources (billing, complaints, surveys, campaign) from bronze to silver: the
transforms on hand-built bronze rows with hand-worked expectations, and jobs.unify on a
tiny lake (accounting, re-runs)."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from contactlake import business as biz
from contactlake.ingest.sources import load_sources
from contactlake.lake import Lake
from contactlake.schemas import SILVER_BUSINESS
from jobs import unify

REPO = Path(__file__).resolve().parents[1]
SPECS = load_sources(REPO / "conf")
TZ = "Asia/Shanghai"
BILLING_DAY = "2026-03-05"  # the billing export's landing folder in these tests
LINEAGE = "_file string, _line long, _raw string, _batch_id string"


def _utc(*parts: int) -> datetime:
    """A UTC instant as the naive datetime Spark returns in a UTC session."""
    return datetime(*parts, tzinfo=UTC).replace(tzinfo=None)


def _bronze(spark, source: str, rows: list[dict], day: str = "2026-01-05", batch: str = "b1"):
    """Bronze rows of ``source``: every spec column a string (missing ones null), lineage."""
    cols = SPECS[source].columns
    schema = ", ".join(f"`{c}` string" for c in cols) + ", " + LINEAGE
    data = [
        (
            *[r.get(c) for c in cols],
            r.get("_file", f"{source}/{day}/part-00000.csv"),
            i + 2,
            "raw",
            batch,
        )
        for i, r in enumerate(rows)
    ]
    return spark.createDataFrame(data, schema)


def _keys(spark, pairs):
    return spark.createDataFrame(pairs, "customer_id string, customer_key string")


def _reasons_of(df):
    return [r._reason for r in df.orderBy("_line").collect()]


def _sub(rid, kind, cid, start, plan="P1", fee="58", end=None, ts="2026-01-05 08:00:00", **kw):
    return {
        "record_id": rid,
        "record_type": kind,
        "customer_id": cid,
        "account_id": "A" + cid if cid else "",
        "plan": plan,
        "monthly_fee": fee,
        "start_date": start,
        "end_date": end,
        "event_ts": ts,
        **kw,
    }


def _bill(rid, kind, cid, month, amount="60.5", paid=None, ts="2026-01-31 23:00:00", **kw):
    return {
        "record_id": rid,
        "record_type": kind,
        "customer_id": cid,
        "account_id": "A" + cid,
        "plan": "P1",
        "monthly_fee": "58",
        "start_date": "2024-06-01",
        "bill_month": month,
        "amount": amount,
        "due_date": "2026-02-15",
        "paid_at": paid,
        "payment_method": "alipay" if paid else None,
        "event_ts": ts,
        **kw,
    }


# ----------------------------------------------------------------------------- billing
def test_billing_records_are_typed_and_bad_rows_get_reasons(spark):
    rows = [
        _bill(" R1 ", " BILL ", "C1", "2026-01", paid=None),  # fine: trimmed, lower-cased
        _bill("R2", "bill", "C1", "2026-01", account_id=""),  # no account
        _bill("R3", "refund", "C1", "2026-01"),
        _bill("R4", "bill", "C1", "2026-01", ts="yesterday"),
        _bill("R5", "payment", "C1", "2026-01", paid=None),  # a payment without its time
        _bill("R6", "bill", "C1", "2026-01", ts="2026-03-08 00:00:00"),  # after landing + 2 d
        _bill("R7", "bill", "C1", "2026-13"),
        _sub("R8", "subscription", "C1", ""),  # period without a start
        _sub("R9", "cancellation", "C1", "2026-01-03", end="2026-01-01"),  # ends before start
        _bill("R10", "bill", "C1", "2026-01", amount=""),
        _bill("R11", "bill", "C1", "2026-01", amount="-61.5"),
        _sub("R12", "subscription", "C1", "2024-06-01", fee="abc"),
    ]
    got = biz.billing_records(_bronze(spark, "billing", rows, day=BILLING_DAY), TZ)
    assert _reasons_of(got) == [
        None,
        "MISSING_ID",
        "UNKNOWN_RECORD_TYPE",
        "BAD_TIMESTAMP",
        "BAD_TIMESTAMP",
        "FUTURE_TIMESTAMP",
        "BAD_DATE",
        "BAD_DATE",
        "BAD_DATE",
        "BAD_AMOUNT",
        "NEGATIVE_AMOUNT",
        "BAD_AMOUNT",
    ]
    first = got.orderBy("_line").first()
    # 23:00 in Shanghai is 15:00 UTC; the local date stays the 31st
    assert (first.record_id, first.record_type, first.amount, first.monthly_fee) == (
        "R1",
        "bill",
        60.5,
        58.0,
    )
    assert (first.event_ts, first.event_date) == (_utc(2026, 1, 31, 15), date(2026, 1, 31))


def test_subscription_periods_fold_plan_changes_and_cancellations(spark):
    rows = [
        _sub("S1", "subscription", "C1", "2024-06-01", plan="P1", fee="58"),
        _sub(
            "S2", "plan_change", "C1", "2026-01-03", plan="P2", fee="88", ts="2026-01-03 08:00:00"
        ),
        # C1 cancels the P2 period: effective on the 20th, so its last day is the 19th
        _sub(
            "S3",
            "cancellation",
            "C1",
            "2026-01-03",
            plan="P2",
            fee="88",
            end="2026-01-20",
            ts="2026-01-05 10:00:00",
        ),
        # C2: the subscription record was lost, the cancellation still gives the period
        _sub("S4", "cancellation", "C2", "2025-03-01", plan="P3", fee="128", end="2026-01-04"),
        # an exact repeat of S1 in another file
        {**_sub("S1", "subscription", "C1", "2024-06-01"), "_file": "billing/2026-03-06/x.csv"},
        _bill("B1", "bill", "C1", "2025-12"),  # not a period record: ignored here
    ]
    records = biz.billing_records(_bronze(spark, "billing", rows, day=BILLING_DAY), TZ)
    table, outcomes = biz.subscriptions(biz.mark_periods(records), _keys(spark, [("C1", "K1")]))
    expected = spark.createDataFrame(
        [
            (
                "K1",
                "C1",
                "AC1",
                "P1",
                58.0,
                date(2024, 6, 1),
                date(2026, 1, 2),
                False,
                "S1",
                _utc(2026, 1, 5, 0),
            ),
            (
                "K1",
                "C1",
                "AC1",
                "P2",
                88.0,
                date(2026, 1, 3),
                date(2026, 1, 19),
                True,
                "S2",
                _utc(2026, 1, 5, 2),
            ),
            (
                None,
                "C2",
                "AC2",
                "P3",
                128.0,
                date(2025, 3, 1),
                date(2026, 1, 3),
                True,
                "S4",
                _utc(2026, 1, 5, 0),
            ),
        ],
        biz_schema("silver/subscriptions"),
    )
    assert_df_equality(table, expected, ignore_row_order=True, ignore_nullable=True)
    # 5 period records: 3 periods; S3 folded into S2's period, the repeat into S1's
    assert sorted((r._line, r._merged) for r in outcomes.collect()) == [
        (2, False),
        (3, False),
        (4, True),
        (5, False),
        (6, True),
    ]


def biz_schema(table: str):
    from pyspark.sql.types import _parse_datatype_string

    return _parse_datatype_string(SILVER_BUSINESS[table])


def test_bills_carry_their_payment(spark):
    rows = [
        _bill("B1", "bill", "C1", "2026-01"),
        _bill(
            "P1", "payment", "C1", "2026-01", paid="2026-02-03 09:30:00", ts="2026-02-03 09:30:00"
        ),
        # the payment of February arrived, its bill was quarantined upstream
        _bill(
            "P2",
            "payment",
            "C1",
            "2026-02",
            amount="70",
            paid="2026-03-02 08:00:00",
            ts="2026-03-02 08:00:00",
            _file="billing/2026-03-02/part-00000.csv",
        ),
        _bill("B3", "bill", "C2", "2026-01", amount="12"),  # unpaid
        _sub("S1", "subscription", "C1", "2024-06-01"),  # not a bill: ignored here
    ]
    records = biz.billing_records(_bronze(spark, "billing", rows, day=BILLING_DAY), TZ)
    assert _reasons_of(records) == [None] * 5
    table, outcomes = biz.bills(biz.mark_bills(records), _keys(spark, [("C1", "K1"), ("C2", "K2")]))
    expected = spark.createDataFrame(
        [
            (
                "K1",
                "C1",
                "AC1",
                "P1",
                "2026-01",
                date(2026, 1, 31),
                60.5,
                date(2026, 2, 15),
                _utc(2026, 2, 3, 1, 30),
                "alipay",
                "B1",
            ),
            (
                "K1",
                "C1",
                "AC1",
                "P1",
                "2026-02",
                date(2026, 2, 28),
                70.0,
                date(2026, 2, 15),
                _utc(2026, 3, 2, 0),
                "alipay",
                "P2",
            ),
            (
                "K2",
                "C2",
                "AC2",
                "P1",
                "2026-01",
                date(2026, 1, 31),
                12.0,
                date(2026, 2, 15),
                None,
                None,
                "B3",
            ),
        ],
        biz_schema("silver/bills"),
    )
    assert_df_equality(table, expected, ignore_row_order=True, ignore_nullable=True)
    assert sorted((r._line, r._merged) for r in outcomes.collect()) == [
        (2, False),
        (3, True),
        (4, False),
        (5, False),
    ]


# -------------------------------------------------------------------------- complaints
def _ticket(tid, cid="C1", open_ts="2026-01-05T10:00:00+08:00", close_ts=None, **kw):
    return {
        "ticket_id": tid,
        "customer_id": cid,
        "account_id": "A" + cid if cid else None,
        "contact_id": "CT" + tid,
        "source_channel": " Voice ",
        "category": "billing",
        "severity": "3",
        "region": "北京",
        "city": "北京",
        "brand": "全球通",
        "business": "billing",
        "open_ts": open_ts,
        "close_ts": close_ts,
        **kw,
    }


def test_complaints_keep_one_row_per_ticket_and_quarantine_bad_ones(spark):
    rows = [
        _ticket("T1"),  # open ...
        _ticket("T1", close_ts="2026-01-06T09:00:00+08:00"),  # ... then closed: this one wins
        _ticket("T2", open_ts="2026-01-05 07:00:00", _file="complaints/2026-01-05/b.jsonl"),
        _ticket(""),
        _ticket("T4", cid=""),
        _ticket("T5", open_ts="soon"),
        _ticket("T6", close_ts="never"),
        _ticket("T7", open_ts="2026-02-01T10:00:00+08:00"),
        _ticket("T8", close_ts="2026-01-04T10:00:00+08:00"),
    ]
    records = biz.complaint_records(_bronze(spark, "complaints", rows), TZ)
    assert _reasons_of(records) == [
        None,
        None,
        None,
        "MISSING_ID",
        "MISSING_ID",
        "BAD_TIMESTAMP",
        "BAD_TIMESTAMP",
        "FUTURE_TIMESTAMP",
        "NEGATIVE_DURATION",
    ]
    table, outcomes = biz.complaints(records.where("_reason is null"), _keys(spark, [("C1", "K1")]))
    expected = spark.createDataFrame(
        [
            (
                "T1",
                "K1",
                "C1",
                "AC1",
                "CTT1",
                "voice",
                "billing",
                "3",
                "北京",
                "北京",
                "全球通",
                "billing",
                _utc(2026, 1, 5, 2),
                _utc(2026, 1, 6, 1),
                date(2026, 1, 5),
                False,
            ),
            (
                "T1",
                "K1",
                "C1",
                "AC1",
                "CTT1",
                "voice",
                "billing",
                "3",
                "北京",
                "北京",
                "全球通",
                "billing",
                _utc(2026, 1, 5, 2),
                None,
                date(2026, 1, 5),
                True,
            ),
            # 07:00 local is 23:00 UTC the day before; the open date is local
            (
                "T2",
                "K1",
                "C1",
                "AC1",
                "CTT2",
                "voice",
                "billing",
                "3",
                "北京",
                "北京",
                "全球通",
                "billing",
                _utc(2026, 1, 4, 23),
                None,
                date(2026, 1, 5),
                False,
            ),
        ],
        SILVER_BUSINESS["silver/complaints"] + ", _merged boolean",
    )
    assert_df_equality(table, expected, ignore_row_order=True, ignore_nullable=True)
    assert sorted(r._merged for r in outcomes.collect()) == [False, False, True]


# ----------------------------------------------------------------------------- surveys
def _survey(sid, cid="CT1", nps="9", csat="5", ts="2026-01-05 12:00:00", **kw):
    return {
        "survey_id": sid,
        "contact_id": cid,
        "channel": "Voice",
        "nps": nps,
        "csat": csat,
        "answered_ts": ts,
        **kw,
    }


def test_surveys_are_keyed_by_their_contact_and_scores_checked(spark):
    rows = [
        _survey("SV1"),
        _survey("SV2", cid="CT404", nps="", csat="2"),  # unknown contact: kept, key null
        _survey(""),
        _survey("SV4", ts=""),
        _survey("SV5", ts="2026-01-09 12:00:00"),
        _survey("SV6", nps="nine"),
        _survey("SV7", nps="", csat=""),
        _survey("SV8", nps="42"),
        _survey("SV9", csat="0"),
        _survey("SV1", nps="7", _file="surveys/2026-01-06/part-00000.csv"),  # re-export wins
    ]
    records = biz.survey_records(_bronze(spark, "surveys", rows), TZ)
    assert _reasons_of(records) == [
        None,
        None,
        "MISSING_ID",
        "BAD_TIMESTAMP",
        "FUTURE_TIMESTAMP",
        "BAD_SCORE",
        "BAD_SCORE",
        "SCORE_OUT_OF_RANGE",
        "SCORE_OUT_OF_RANGE",
        None,
    ]
    contacts = spark.createDataFrame([("CT1", "K1")], "contact_id string, customer_key string")
    table, _ = biz.surveys(records.where("_reason is null"), contacts)
    expected = spark.createDataFrame(
        [
            ("SV1", "CT1", "K1", "voice", 7, 5, _utc(2026, 1, 5, 4), date(2026, 1, 5), False),
            ("SV1", "CT1", "K1", "voice", 9, 5, _utc(2026, 1, 5, 4), date(2026, 1, 5), True),
            ("SV2", "CT404", None, "voice", None, 2, _utc(2026, 1, 5, 4), date(2026, 1, 5), False),
        ],
        SILVER_BUSINESS["silver/surveys"] + ", _merged boolean",
    )
    assert_df_equality(table, expected, ignore_row_order=True, ignore_nullable=True)


# ---------------------------------------------------------------------------- campaign
def _attempt(aid, no, ts, group="treatment", connected="0", result="no_answer", **kw):
    return {
        "attempt_id": aid,
        "campaign_id": "CMP01",
        "offer": "5G",
        "channel": "Outbound_Call",
        "customer_id": "C1",
        "account_id": "AC1",
        "phone": "13800138000",
        "group": group,
        "attempt_no": no,
        "attempt_ts": ts,
        "connected": connected,
        "result": result,
        "responded": "0",
        **kw,
    }


def test_campaign_attempts_and_holdouts(spark):
    rows = [
        _attempt("A1", "1", "2026-01-04 09:10:00"),
        _attempt("A2", "2", "2026-01-05 10:00:00", connected="1", result="accepted", responded="1"),
        _attempt("H1", "0", "", group="Control", connected="", result="holdout", customer_id="C2"),
        _attempt("", "1", "2026-01-04 09:10:00"),
        _attempt("X1", "1", "2026-01-04 09:10:00", group="vip"),
        _attempt("X2", "first", "2026-01-04 09:10:00"),
        _attempt("X3", "0", "", group="treatment"),  # a holdout must be a control
        _attempt("X4", "1", ""),  # an attempt without its time
        _attempt("X5", "1", "2026-03-01 09:00:00"),
    ]
    records = biz.campaign_records(_bronze(spark, "campaign", rows), TZ)
    assert _reasons_of(records) == [
        None,
        None,
        None,
        "MISSING_ID",
        "UNKNOWN_GROUP",
        "BAD_ATTEMPT",
        "BAD_ATTEMPT",
        "BAD_TIMESTAMP",
        "FUTURE_TIMESTAMP",
    ]
    table, _ = biz.campaign_contacts(records.where("_reason is null"), _keys(spark, [("C1", "K1")]))
    expected = spark.createDataFrame(
        [
            (
                "A1",
                "CMP01",
                "5G",
                "outbound_call",
                "K1",
                "C1",
                "treatment",
                1,
                _utc(2026, 1, 4, 1, 10),
                date(2026, 1, 4),
                False,
                "no_answer",
                False,
                False,
            ),
            (
                "A2",
                "CMP01",
                "5G",
                "outbound_call",
                "K1",
                "C1",
                "treatment",
                2,
                _utc(2026, 1, 5, 2),
                date(2026, 1, 5),
                True,
                "accepted",
                True,
                False,
            ),
            # the holdout is dated by the campaign's first attempt (its launch)
            (
                "H1",
                "CMP01",
                "5G",
                "outbound_call",
                None,
                "C2",
                "control",
                0,
                None,
                date(2026, 1, 4),
                False,
                "holdout",
                False,
                False,
            ),
        ],
        SILVER_BUSINESS["silver/campaign_contacts"] + ", _merged boolean",
    )
    assert_df_equality(table, expected, ignore_row_order=True, ignore_nullable=True)


def test_outcome_counts_add_up_per_batch(spark):
    rows = [_survey("SV1"), _survey("SV1"), _survey("")]
    cleaned = biz.survey_records(_bronze(spark, "surveys", rows), TZ)
    _, outcomes = biz.surveys(
        cleaned.where("_reason is null"),
        spark.createDataFrame([], "contact_id string, customer_key string"),
    )
    counts = biz.outcome_counts(cleaned, outcomes, ["b1", "other"])
    assert sorted((r._batch_id, r.label, r.n) for r in counts.collect()) == [
        ("b1", "merged", 1),
        ("b1", "quarantined", 1),
        ("b1", "silver", 1),
    ]


# ------------------------------------------------------------------------------ the job
def _land_bronze(spark, lake: Lake, source: str, rows: list[dict], day: str, batch: str) -> None:
    """Write rows into bronze/<source> as jobs.ingest would (strings + ingest metadata)."""
    df = _bronze(spark, source, rows, day=day, batch=batch).select(
        "*",
        F.lit(datetime(2026, 1, 1)).cast("timestamp").alias("_ingested_at"),
        F.lit(date.fromisoformat(day)).alias("_landing_date"),
    )
    lake.write(df, f"bronze/{source}", app_id=f"test/{source}/{batch}")


def _contacts_bronze(spark, lake: Lake, day: str) -> None:
    crm = {c: "" for c in SPECS["crm"].columns} | {
        "customer_id": "C1",
        "account_id": "AC1",
        "primary_phone": "13800138000",
        "updated_at": "2026-01-01 08:00:00",
    }
    call = {c: "" for c in SPECS["voice"].columns} | {
        "call_id": "CA1",
        "ani": "13800138000",
        "dnis": "95000",
        "direction": "inbound",
        "ivr_entry_ts": "2026-01-04 09:00:00",
        "answer_ts": "2026-01-04 09:01:00",
        "end_ts": "2026-01-04 09:05:00",
        "account_id": "AC1",
        "source_system": "CTI-A",
    }
    ivr = {
        "session_id": "IV1",
        "call_id": "CA1",
        "ani": "13800138000",
        "start_ts": "2026-01-04 09:00:00",
        "end_ts": "2026-01-04 09:01:00",
    }
    chat = {
        "session_id": "DG1",
        "channel": "app",
        "start_ts": "2026-01-04 10:00:00",
        "end_ts": "2026-01-04 10:05:00",
        "account_id": "AC1",
        "app_user_id": "U1",
    }
    for source, row in (("crm", crm), ("voice", call), ("ivr", ivr), ("digital", chat)):
        _land_bronze(spark, lake, source, [row], day, f"{source}-1")


def _snapshot(lake: Lake) -> dict[str, list]:
    tables = [*SILVER_BUSINESS, "ops/unified_batches"] + [
        f"quarantine/{s}" for s in ("billing", "surveys")
    ]
    return {
        t: sorted(
            (tuple(r) for r in lake.read(t).drop("_ingested_at", "unified_at").collect()), key=str
        )
        for t in tables
    }


def test_unify_builds_business_tables_accounts_rows_and_reruns_change_nothing(
    spark, tmp_path, job_argv
):
    lake = Lake(str(tmp_path / "lake"), spark)
    day1, day2 = "2026-01-05", "2026-01-06"
    # without the Great Expectations suites (a Spark job per metric): this test is about
    # tables, accounting and re-runs
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf, ignore=shutil.ignore_patterns("quality"))

    def argv(day: str) -> list[str]:
        return job_argv(day, "--conf-dir", str(conf))

    _contacts_bronze(spark, lake, day1)
    _land_bronze(
        spark,
        lake,
        "billing",
        [
            _sub("S1", "subscription", "C1", "2024-06-01"),
            _bill("B1", "bill", "C1", "2025-12", ts="2025-12-31 23:00:00"),
            _bill("B2", "bill", "C1", "2025-11", amount="-3", ts="2025-11-30 23:00:00"),
        ],
        day1,
        "billing-1",
    )
    _land_bronze(spark, lake, "complaints", [_ticket("T1")], day1, "complaints-1")
    _land_bronze(
        spark,
        lake,
        "surveys",
        [_survey("SV1", cid="CA1"), _survey("SV2", nps="11")],
        day1,
        "surveys-1",
    )
    _land_bronze(
        spark,
        lake,
        "campaign",
        [
            _attempt("A1", "1", "2026-01-04 09:10:00"),
            _attempt("H1", "0", "", group="control", connected="", result="holdout"),
            # a campaign whose attempts have not arrived: its holdout is not dated yet
            _attempt(
                "H2", "0", "", group="control", connected="", result="holdout", campaign_id="CMP02"
            ),
        ],
        day1,
        "campaign-1",
    )
    assert unify.main(argv(day1), spark=spark) == 0
    key = lake.read("silver/identity_map").where("node = 'crm:C1'").first().customer_key
    subs = lake.read("silver/subscriptions").collect()
    assert [(r.customer_key, r.plan, r.start_date, r.end_date) for r in subs] == [
        (key, "P1", date(2024, 6, 1), None)
    ]
    assert [(r.bill_month, r.paid_at) for r in lake.read("silver/bills").collect()] == [
        ("2025-12", None)
    ]
    assert [(r.survey_id, r.customer_key) for r in lake.read("silver/surveys").collect()] == [
        ("SV1", key)
    ]
    attempts = sorted(
        (r.attempt_id, r.attempt_date) for r in lake.read("silver/campaign_contacts").collect()
    )
    assert attempts == [("A1", date(2026, 1, 4)), ("H1", date(2026, 1, 4)), ("H2", None)]
    # the rejected rows keep their raw line (the rows carried on to silver drop it)
    quarantined = [
        (r.reason_code, r._line, r._raw)
        for t in ("quarantine/billing", "quarantine/surveys")
        for r in lake.read(t).collect()
    ]
    assert quarantined == [("NEGATIVE_AMOUNT", 4, "raw"), ("SCORE_OUT_OF_RANGE", 3, "raw")]
    registry = {r.source: r for r in lake.read("ops/unified_batches").collect()}
    billing = registry["billing"]
    assert (billing.rows_bronze, billing.rows_silver, billing.rows_quarantined) == (3, 2, 1)
    assert (registry["campaign"].rows_bronze, registry["campaign"].rows_silver) == (3, 3)

    first = _snapshot(lake)
    assert unify.main(argv(day1), spark=spark) == 0
    assert _snapshot(lake) == first

    # day 2: the bill's payment, the ticket closed, the second campaign's first attempt
    _land_bronze(
        spark,
        lake,
        "billing",
        [
            _bill(
                "P1",
                "payment",
                "C1",
                "2025-12",
                paid="2026-01-05 10:00:00",
                ts="2026-01-05 10:00:00",
            )
        ],
        day2,
        "billing-2",
    )
    _land_bronze(
        spark,
        lake,
        "complaints",
        [_ticket("T1", close_ts="2026-01-06T09:00:00+08:00")],
        day2,
        "complaints-2",
    )
    _land_bronze(
        spark,
        lake,
        "campaign",
        [_attempt("B1", "1", "2026-01-05 09:00:00", campaign_id="CMP02")],
        day2,
        "campaign-2",
    )
    assert unify.main(argv(day2), spark=spark) == 0
    assert [r.paid_at for r in lake.read("silver/bills").collect()] == [_utc(2026, 1, 5, 2)]
    assert [(r.ticket_id, r.close_ts) for r in lake.read("silver/complaints").collect()] == [
        ("T1", _utc(2026, 1, 6, 1))
    ]
    attempts = sorted(
        (r.attempt_id, r.attempt_date) for r in lake.read("silver/campaign_contacts").collect()
    )
    assert attempts == [
        ("A1", date(2026, 1, 4)),
        ("B1", date(2026, 1, 5)),
        ("H1", date(2026, 1, 4)),
        ("H2", date(2026, 1, 5)),  # moved out of the undated partition
    ]
    batches = {r.batch_id: r for r in lake.read("ops/unified_batches").collect()}
    paid = batches["billing-2"]
    assert (paid.rows_bronze, paid.rows_silver, paid.rows_merged) == (1, 0, 1)
    assert batches["complaints-2"].rows_silver == 1  # the closed record replaces the open one
    second = _snapshot(lake)
    assert unify.main(argv(day2), spark=spark) == 0
    assert _snapshot(lake) == second
