"""Cleaning transforms on tiny frames with hand-worked expectations."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pandas as pd
from chispa import assert_df_equality
from pyspark.sql import functions as F

from contactlake.cleaning import _e164, cn_mobile, local_to_utc, normalise_phones, phone_lookup


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


def _forms(n: str) -> list[str]:
    return [
        n,
        "+86" + n,
        "0086" + n,
        "86" + n,
        f"+86 {n[:3]} {n[3:7]} {n[7:]}",
        f"{n[:3]}-{n[3:7]}-{n[7:]}",
    ]


def test_mobile_shortcut_agrees_with_libphonenumber(spark):
    # every 3-digit start (valid mobile blocks and not), the 4-digit starts where only part
    # of a block is mobile, in every common form, and with a digit missing or extra
    rng = random.Random(7)
    numbers = [f"{p}{rng.randrange(10**8):08d}" for p in range(100, 200) for _ in range(3)]
    numbers += [f"{p}{rng.randrange(10**7):07d}" for p in (1610, 1611, 1740, 1745, 1746, 1749)]
    values = [v for n in numbers for v in (*_forms(n), n[:-1], n + "5", "0" + n)]
    libphonenumber = dict(zip(values, _e164("CN")(pd.Series(values)), strict=True))

    df = spark.createDataFrame([(v,) for v in values], "raw string")
    got = {
        r.raw: r.national
        for r in df.select("raw", cn_mobile(F.col("raw")).alias("national")).collect()
    }
    recognised = {raw: "+86" + national for raw, national in got.items() if national}
    assert recognised == {raw: libphonenumber[raw] for raw in recognised}
    # and it recognises every valid mobile number in each common form
    valid = [n for n in numbers if libphonenumber[n]]
    assert len(valid) > 100
    assert {v for n in valid for v in _forms(n)} <= recognised.keys()


def test_one_phone_lookup_serves_several_columns(spark):
    crm = spark.createDataFrame(
        [("C1", "13800138000", "010-62345678"), ("C2", "0086 13900139000", None)],
        "customer_id string, primary_phone string, secondary_phone string",
    )
    calls = spark.createDataFrame(
        [("V1", "13800138000"), ("V2", "95588"), ("V3", "010-62345678")],
        "call_id string, ani string",
    )
    values = (
        crm.select(crm.primary_phone.alias("_raw_phone"))
        .union(crm.select("secondary_phone"))
        .union(calls.select("ani"))
    )
    lookup = phone_lookup(values)
    # distinct, non-null raw values that need libphonenumber (010-62345678 is in both tables,
    # parsed once): mobile numbers in a common form are converted by normalise_phones itself
    expected_lookup = spark.createDataFrame(
        [("010-62345678", "+861062345678"), ("95588", None)],
        "_raw_phone string, _e164 string",
    )
    assert_df_equality(lookup, expected_lookup, ignore_row_order=True, ignore_nullable=True)

    got = normalise_phones(calls, "ani", "phone", lookup=lookup)
    expected = spark.createDataFrame(
        [
            ("V1", "13800138000", "+8613800138000"),
            ("V2", "95588", None),
            ("V3", "010-62345678", "+861062345678"),
        ],
        "call_id string, ani string, phone string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_local_times_to_utc(spark):
    df = spark.createDataFrame(
        [
            ("2026-01-05 08:00:00",),
            ("2026-01-05T08:00:00+08:00",),
            ("2026-01-05T00:00:00Z",),
            ("2026-01-04T19:00:00-05:00",),
            ("2026-01-04 19:00:00.000-0500",),
            ("2026-01-05 08:00:00.000",),
            ("garbage",),
            ("2026-01-05 08:00:00 +",),
        ],
        "t string",
    )
    got = [r.u for r in df.select(local_to_utc("t", "Asia/Shanghai").alias("u")).collect()]
    utc = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    want = [utc, utc, utc, utc, utc, utc, None, None]
    assert [g.astimezone(UTC) if g else None for g in got] == want
