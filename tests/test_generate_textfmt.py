"""The generator's looked-up text of dates, times and amounts against Spark's own formatting."""

from __future__ import annotations

from pathlib import Path

import pytest

from contactlake.config import load_config
from contactlake.generate import textfmt
from contactlake.generate.params import resolve

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return resolve(load_config("test", ["generate.preset=tiny"], REPO / "conf").generate)


def test_dates_and_times_read_as_date_format_writes_them(spark, params):
    looked_up = len(params.landing_days) + textfmt.SPARE_DAYS
    day_s = textfmt.DAY_S
    # inside the looked-up days, both of its edges, before it and after it; null stays null
    seconds = [0, 59, 3_599, 3_600, day_s - 1, 45 * day_s + 37_230, (looked_up - 1) * day_s]
    seconds += [looked_up * day_s + 3_661, -1, -400 * day_s - 5, None]
    df = spark.createDataFrame([(t,) for t in seconds], "t bigint")
    epoch = textfmt.epoch(params)
    rows = df.selectExpr(
        f"{textfmt.ts_sql(params, 't')} AS got",
        f"date_format(timestamp_seconds({epoch}L + t), 'yyyy-MM-dd HH:mm:ss') AS want",
        f"{textfmt.ts_sql(params, 't', iso=True)} AS got_iso",
        f"date_format(timestamp_seconds({epoch}L + t), \"yyyy-MM-dd'T'HH:mm:ss'+08:00'\")"
        " AS want_iso",
        f"{textfmt.day_sql(params, 'CAST(FLOOR(t / 86400) AS INT)')} AS got_day",
        f"CAST(date_add(DATE'{params.start}', CAST(FLOOR(t / 86400) AS INT)) AS STRING)"
        " AS want_day",
    ).collect()
    assert [(r.got, r.got_iso, r.got_day) for r in rows] == [
        (r.want, r.want_iso, r.want_day) for r in rows
    ]
    assert rows[0].got == f"{params.start} 00:00:00"
    assert rows[-1].got is None


def test_amounts_read_as_a_cast_of_the_double_writes_them(spark):
    # every cent from 0 to 1000.00, large and negative amounts (cast, not looked up)
    df = (
        spark.range(100_001)
        .selectExpr("round(id / 100.0D, 2) AS x")
        .union(
            spark.createDataFrame([(9_999_999.99,), (1.0e7,), (12_345_678.9,), (-3.5,)], "x double")
        )
    )
    mismatched = df.selectExpr(
        "x", f"{textfmt.money_sql('x')} AS got", "CAST(x AS STRING) AS want"
    ).where("got IS DISTINCT FROM want")
    assert mismatched.limit(5).collect() == []
    assert df.selectExpr(f"{textfmt.money_sql('58.05D')} AS t").first().t == "58.05"


def test_amounts_given_in_cents_read_as_the_rounded_double_writes_them(spark):
    # whole cents over 100.0 are the doubles round(x, 2) gives, and write as they do
    mismatched = (
        spark.range(100_001)
        .selectExpr("id AS c", "id / 100.0D AS x", "round(id / 100.0D, 2) AS rounded")
        .selectExpr(
            "c",
            "x = rounded AS same_double",
            f"{textfmt.money_sql('x', cents='c')} AS got",
            "CAST(rounded AS STRING) AS want",
        )
        .where("NOT same_double OR got IS DISTINCT FROM want")
    )
    assert mismatched.limit(5).collect() == []
