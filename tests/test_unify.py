"""Unify transforms on hand-built bronze rows with hand-worked expectations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from contactlake.ingest.sources import load_sources
from contactlake.unify import (
    CONTACT_COLUMNS,
    collapse_duplicates,
    contact_keys,
    crm_records,
    scd2_customers,
    voice_contacts,
)

# Column layouts from the source specs (the contract with the exports).
SPECS = load_sources(Path(__file__).resolve().parents[1] / "conf")
VOICE_COLS = SPECS["voice"].columns
RUN = date(2026, 1, 10)


def _voice(spark, rows):
    full = [(*r, "voice/2026-01-05/a.csv", i + 2, "raw", "b1") for i, r in enumerate(rows)]
    schema = (
        ", ".join(f"{c} string" for c in VOICE_COLS)
        + ", _file string, _line long, _raw string, _batch_id string"
    )
    return spark.createDataFrame(full, schema)


def _call(call_id, ivr, queue, answer, end, hold="10", system="CTI-A", disposition="answered"):
    return (
        call_id,
        "13800138000",
        "95000",
        "inbound",
        "billing",
        "s1",
        "AG00001",
        ivr,
        queue,
        answer,
        end,
        hold,
        "20",
        "0",
        "",
        disposition,
        "bill",
        "",
        system,
    )


def test_voice_rows_are_typed_timed_and_checked(spark):
    rows = [
        _call(
            "CA1",
            "2026-01-05 09:00:00",
            "2026-01-05 09:01:00",
            "2026-01-05 09:01:30",
            "2026-01-05 09:06:30",
        ),
        _call("", "2026-01-05 09:00:00", "", "", "2026-01-05 09:01:00"),  # missing id
        _call("CA3", "2026-01-05 09:00:00", "", "", "2026-01-05 08:00:00"),  # ends before it starts
        _call("CA4", "2026-01-05 09:00:00", "", "", "2036-01-05 09:00:00"),  # in the future
        _call("CA5", "2026-01-05 09:00:00", "", "", "2026-01-07 09:00:00"),  # 2 days long
        _call(
            "CA6", "2026-01-05 09:00:00", "", "", "2026-01-05 09:01:00", hold="-5"
        ),  # negative hold
        _call("CA7", "not a time", "", "", "2026-01-05 09:01:00"),
    ]
    got = (
        voice_contacts(_voice(spark, rows), "Asia/Shanghai", RUN, 21600).orderBy("_line").collect()
    )
    assert [(r.contact_id, r._reason) for r in got] == [
        ("CA1", None),
        (None, "MISSING_ID"),
        ("CA3", "NEGATIVE_DURATION"),
        ("CA4", "FUTURE_TIMESTAMP"),
        ("CA5", "ABSURD_DURATION"),
        ("CA6", "NEGATIVE_DURATION"),
        ("CA7", "BAD_TIMESTAMP"),
    ]
    first = got[0]
    # 09:00 in Shanghai is 01:00 UTC; waits and talk from the switch's own timestamps
    assert first.start_ts.astimezone(UTC) == datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    assert (first.wait_s, first.talk_s, first.hold_s, first.wrapup_s, first.handle_s) == (
        30.0,
        300.0,
        10.0,
        20.0,
        330.0,
    )
    assert (first.contact_date, first.channel, first.handled_by_agent, first.abandoned) == (
        date(2026, 1, 5),
        "voice",
        True,
        False,
    )


def test_the_same_call_from_two_systems_collapses_to_the_richer_record(spark):
    rows = [
        _call(
            "CA1",
            "2026-01-05 09:00:00",
            "2026-01-05 09:01:00",
            "2026-01-05 09:01:30",
            "2026-01-05 09:06:30",
        ),
        # CTI-B: same call 2 s later, hold missing (poorer record)
        _call(
            "CB1",
            "2026-01-05 09:00:02",
            "2026-01-05 09:01:00",
            "2026-01-05 09:01:30",
            "2026-01-05 09:06:32",
            hold="",
            system="CTI-B",
        ),
        # a genuinely new call from the same number 10 minutes later
        _call(
            "CA2",
            "2026-01-05 09:10:00",
            "2026-01-05 09:11:00",
            "2026-01-05 09:11:30",
            "2026-01-05 09:16:30",
        ),
    ]
    contacts = voice_contacts(_voice(spark, rows), "Asia/Shanghai", RUN, 21600).where(
        "_reason is null"
    )
    marked = collapse_duplicates(
        contacts.select(*CONTACT_COLUMNS, "_raw", "_batch_id"), tolerance_s=10
    )
    got = sorted((r.contact_id, r._duplicate) for r in marked.collect())
    assert got == [("CA1", False), ("CA2", False), ("CB1", True)]


CRM_COLS = SPECS["crm"].columns


def _crm(spark, rows):
    schema = (
        ", ".join(f"{c} string" for c in CRM_COLS)
        + ", _file string, _line long, _raw string, _batch_id string"
    )
    return spark.createDataFrame(
        [(*r, "crm/2026-01-01/a.csv", i + 2, "raw", "b1") for i, r in enumerate(rows)], schema
    )


def _customer(cid, city, updated, birth="1990-05-01"):
    return (
        cid,
        "A" + cid,
        "张三",
        "110101199005010011",
        "13800138000",
        "",
        "m",
        birth,
        "北京",
        city,
        "1",
        "teacher",
        "c",
        "",
        "2020-01-01",
        "1",
        "0",
        "1",
        "0",
        "0",
        "1",
        "snapshot",
        updated,
    )


def test_customers_keep_history_and_reruns_change_nothing(spark):
    keys = spark.createDataFrame(
        [("C1", "K1"), ("C2", "K2")], "customer_id string, customer_key string"
    )
    day1 = crm_records(
        _crm(
            spark,
            [
                _customer("C1", "北京", "2026-01-01 00:00:00"),
                _customer(
                    "C2", "上海", "2026-01-01 00:00:00", birth="2090-01-01"
                ),  # impossible birth date
                _customer("", "上海", "2026-01-01 00:00:00"),
            ],
        ),
        "Asia/Shanghai",
        RUN,
    )
    assert [r._reason for r in day1.orderBy("_line").collect()] == [None, None, "MISSING_ID"]
    v1 = scd2_customers(None, day1.where("_reason is null"), keys)
    day2 = crm_records(
        _crm(
            spark,
            [
                _customer("C1", "天津", "2026-01-03 10:00:00"),  # moved
                _customer("C2", "上海", "2026-01-03 10:00:00", birth="2090-01-01"),  # unchanged
            ],
        ),
        "Asia/Shanghai",
        RUN,
    )
    v2 = scd2_customers(v1, day2, keys)
    rows = sorted((r.customer_id, r.city, r.is_current, r.valid_to is None) for r in v2.collect())
    assert rows == [
        ("C1", "北京", False, False),
        ("C1", "天津", True, True),
        ("C2", "上海", True, True),
    ]
    assert {r.customer_id: r.birth_date for r in v2.collect()}["C2"] is None
    assert [r.gender for r in v2.where("customer_id = 'C1'").collect()] == ["M", "M"]
    # the same records again: the same history
    v3 = scd2_customers(v2, day2, keys)
    assert sorted(map(tuple, v3.drop("attributes_hash").collect())) == sorted(
        map(tuple, v2.drop("attributes_hash").collect())
    )
    assert v3.where(F.col("is_current")).count() == 2


def test_contact_keys_take_the_first_known_identifier_in_priority_order(spark):
    ids = "account_id string, customer_phone string, app_user_id string, wechat_unionid string, wechat_openid string, cookie_id string"
    contacts = spark.createDataFrame(
        [
            ("c1", "A1", "+8613800000001", None, None, None, None),  # account wins over phone
            ("c2", None, "+8613800000001", "U1", None, None, None),  # phone wins over app
            ("c3", "A9", "+8613800000002", None, None, None, None),  # unknown account: phone
            ("c4", None, "+8613800000003", "U1", None, None, None),  # hub phone: app user
            ("c5", None, None, None, None, "o1", "ck1"),  # openid before cookie
            ("c6", None, None, None, None, None, "ck9"),  # unknown cookie: no key
            ("c7", None, None, None, None, None, None),  # no identifier at all
            ("c8", "A1", "+8613800000001", None, None, None, None),  # same ids as c1
        ],
        f"contact_id string, {ids}",
    )
    identity = spark.createDataFrame(
        [
            ("account:A1", "K1", False),
            ("phone:+8613800000001", "K2", False),
            ("phone:+8613800000002", "K3", False),
            ("phone:+8613800000003", None, True),
            ("app:U1", "K4", False),
            ("wechat_open:o1", "K5", False),
            ("cookie:ck1", "K6", False),
        ],
        "node string, customer_key string, is_hub boolean",
    )
    expected = spark.createDataFrame(
        [
            ("c1", "K1"),
            ("c2", "K2"),
            ("c3", "K3"),
            ("c4", "K4"),
            ("c5", "K5"),
            ("c6", None),
            ("c7", None),
            ("c8", "K1"),
        ],
        "contact_id string, customer_key string",
    )
    got = contact_keys(contacts, identity).select("contact_id", "customer_key")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_contact_rows_are_counted_per_source_batch_and_outcome(spark):
    from jobs.unify import _contact_outcome_counts

    cleaned_schema = "_batch_id string, _reason string"
    cleaned = {
        "crm": spark.createDataFrame([("b1", None), ("b1", "BAD_PHONE")], cleaned_schema),
        # v0 was unified by an earlier run: not counted again
        "voice": spark.createDataFrame(
            [("v1", "FUTURE_TIME"), ("v0", "FUTURE_TIME")], cleaned_schema
        ),
        "ivr": spark.createDataFrame([("i1", "NO_ID"), ("i1", None)], cleaned_schema),
        "digital": spark.createDataFrame([("d1", None)], cleaned_schema),
    }
    merged_ivr = spark.createDataFrame([("i1",)], "_batch_id string")
    contacts = spark.createDataFrame(
        [
            ("voice", "v1", False),
            ("voice", "v1", True),
            ("voice", "v0", False),
            ("ivr", "i1", False),
            ("digital", "d1", False),
            ("digital", "d1", True),
            ("digital", "d1", True),
        ],
        "source string, _batch_id string, _duplicate boolean",
    )
    new = {"crm": ["b1"], "voice": ["v1"], "ivr": ["i1"], "digital": ["d1"]}

    got = _contact_outcome_counts(cleaned, contacts, merged_ivr, new)

    expected = spark.createDataFrame(
        [
            ("crm", "b1", "quarantined", 1),
            ("crm", "b1", "silver", 1),
            ("digital", "d1", "merged", 2),
            ("digital", "d1", "silver", 1),
            ("ivr", "i1", "merged", 1),
            ("ivr", "i1", "quarantined", 1),
            ("ivr", "i1", "silver", 1),
            ("voice", "v1", "merged", 1),
            ("voice", "v1", "quarantined", 1),
            ("voice", "v1", "silver", 1),
        ],
        "source string, _batch_id string, label string, n long",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
