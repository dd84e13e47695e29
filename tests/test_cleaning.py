"""Cleaning transforms on tiny frames with hand-worked expectations."""

from __future__ import annotations

from datetime import UTC, datetime

from chispa import assert_df_equality

from contactlake.cleaning import local_to_utc, normalise_phones, phone_lookup


def test_phone_numbers_in_every_chinese_form(spark):
    raw = [
        ("13800138000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("010-62345678", "+861062345678"),  # Beijing landline
        ("(021) 6234 5678", "+862162345678"),  # Shanghai landline
        ("400-810-8888", "+864008108888"),  # service number
        ("1380013800", None),  # a digit missing
        ("95588", None),  # short code, not a subscriber number
        ("abc", None),
        (None, None),
    ]
    df = spark.createDataFrame([(i, r) for i, (r, _) in enumerate(raw)], "id int, ani string")
    got = normalise_phones(df, "ani", "phone").orderBy("id")
    expected = spark.createDataFrame(
        [(i, r, e) for i, (r, e) in enumerate(raw)], "id int, ani string, phone string"
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_one_phone_lookup_serves_several_columns(spark):
    crm = spark.createDataFrame(
        [("C1", "13800138000", "010-62345678"), ("C2", "0086 13900139000", None)],
        "customer_id string, primary_phone string, secondary_phone string",
    )
    calls = spark.createDataFrame(
        [("V1", "13800138000"), ("V2", "95588")], "call_id string, ani string"
    )
    values = (
        crm.select(crm.primary_phone.alias("_raw_phone"))
        .union(crm.select("secondary_phone"))
        .union(calls.select("ani"))
    )
    lookup = phone_lookup(values)
    # distinct, non-null raw values only: 13800138000 is in both tables, parsed once
    expected_lookup = spark.createDataFrame(
        [
            ("13800138000", "+8613800138000"),
            ("010-62345678", "+861062345678"),
            ("0086 13900139000", "+8613900139000"),
            ("95588", None),
        ],
        "_raw_phone string, _e164 string",
    )
    assert_df_equality(lookup, expected_lookup, ignore_row_order=True, ignore_nullable=True)

    got = normalise_phones(calls, "ani", "phone", lookup=lookup)
    expected = spark.createDataFrame(
        [("V1", "13800138000", "+8613800138000"), ("V2", "95588", None)],
        "call_id string, ani string, phone string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_local_times_to_utc(spark):
    df = spark.createDataFrame(
        [
            ("2026-01-05 08:00:00",),
            ("2026-01-05T08:00:00+08:00",),
            ("2026-01-05T00:00:00Z",),
            ("garbage",),
        ],
        "t string",
    )
    got = [r.u for r in df.select(local_to_utc("t", "Asia/Shanghai").alias("u")).collect()]
    utc = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert [g.astimezone(UTC) if g else None for g in got] == [utc, utc, utc, None]
