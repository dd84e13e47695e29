"""Dirty data: which records get a defect, and the column expressions that inject it.

A record is defective when ``u(seed, "defect", source, key) < defect_rate``; its kind is
drawn uniformly from the kinds that source can have. The truth table lists every injected
defect with source, file, record id and kind.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contactlake.generate.rand import pick, u, uint

KINDS = {
    "crm": ("phone_format", "missing_id", "invalid_utf8"),
    "voice": (
        "phone_format",
        "duplicate",
        "missing_id",
        "negative_duration",
        "absurd_duration",
        "future_ts",
        "late",
    ),
    "ivr": ("broken_json", "missing_id", "late"),
    "digital": ("broken_json", "missing_id", "future_ts", "invalid_utf8", "late"),
    "billing": ("missing_id", "negative_amount", "late"),
    "campaign": ("missing_id", "phone_format", "late"),
    "surveys": ("missing_id", "out_of_range", "late"),
    "complaints": ("broken_json", "missing_id", "late"),
    "sms": ("phone_format", "missing_id", "late"),
    "clickstream": ("broken_json", "missing_id", "late"),
}
BAD_BYTES_HEX = "C328FFFE"  # an invalid UTF-8 sequence


def with_defect(df: DataFrame, seed: int, source: str, key: Column, rate: float) -> DataFrame:
    """Adds ``defect`` (kind or null) and ``_du`` (a uniform for the defect's details)."""
    kinds = KINDS[source]
    hit = u(seed, "defect", F.lit(source), key) < F.lit(rate)
    kind = pick(uint(seed, "defect-kind", len(kinds), F.lit(source), key), kinds)
    return df.withColumn("defect", F.when(hit, kind)).withColumn(
        "_du", u(seed, "defect-u", F.lit(source), key)
    )


def is_(kind: str) -> Column:
    return F.coalesce(F.col("defect") == F.lit(kind), F.lit(False))


def mangle_phone(phone: Column, uu: Column) -> Column:
    """+86 / 0086 prefixes, spaces, dashes or a missing digit."""
    v = F.floor(uu * 5).cast("int")
    spaced = F.concat_ws(
        " ", F.substring(phone, 1, 3), F.substring(phone, 4, 4), F.substring(phone, 8, 4)
    )
    dashed = F.concat_ws(
        "-", F.substring(phone, 1, 3), F.substring(phone, 4, 4), F.substring(phone, 8, 4)
    )
    return (
        F.when(v == 0, F.concat(F.lit("+86"), phone))
        .when(v == 1, F.concat(F.lit("0086"), phone))
        .when(v == 2, spaced)
        .when(v == 3, dashed)
        .otherwise(F.substring(phone, 1, 10))
    )


def invalid_utf8(text: Column) -> Column:
    """``text`` followed by invalid UTF-8 bytes (written as raw bytes)."""
    bad = F.unhex(F.lit(BAD_BYTES_HEX)).cast("string")
    return F.concat(text, bad)


def break_json(line: Column, uu: Column) -> Column:
    """A truncated JSON line (a writer crashed mid-record)."""
    return F.substring(
        line, 1, F.greatest(F.lit(5), F.floor(F.length(line) * (F.lit(0.3) + uu * 0.5)).cast("int"))
    )


TRUTH_SCHEMA = "source string, file string, record_id string, kind string, detail string"


def defect_json(source: str, file_col: Column, record_id: Column) -> Column:
    """The truth row of a defective record as a JSON line, null for a clean record.

    Its fields are :data:`TRUTH_SCHEMA`'s: source, file (relative to the landing root),
    record_id, kind, detail (unused, always null).
    """
    truth = F.struct(
        F.lit(source).alias("source"),
        file_col.alias("file"),
        record_id.cast("string").alias("record_id"),
        F.col("defect").alias("kind"),
    )
    return F.when(F.col("defect").isNotNull(), F.to_json(truth))
