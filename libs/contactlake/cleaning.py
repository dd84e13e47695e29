"""Cleaning transforms: phone numbers to E.164, source-local timestamps to UTC, codes."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _e164(region: str):
    import phonenumbers

    def convert(values: pd.Series) -> pd.Series:
        def one(raw):
            if raw is None:
                return None
            try:
                number = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                return None
            if not phonenumbers.is_valid_number(number):
                return None
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

        return values.map(one)

    return convert


def normalise_phones(df: DataFrame, column: str, out: str, region: str = "CN") -> DataFrame:
    """Add ``out``: ``column`` as an E.164 number (``+8613800138000``), null when invalid.

    Parsing uses Google's libphonenumber rules (``phonenumbers``): national and
    international forms, +86/0086/86 prefixes, separators, landlines with area codes. It
    runs once per distinct raw value (a Python UDF is slow; there are far fewer distinct
    numbers than rows), joined back by value.

    Args:
        df: needs ``column`` (string).
        region: the default country for numbers written without a country code.

    Returns:
        ``df`` plus ``out`` (string).
    """
    convert = F.pandas_udf(_e164(region), "string")
    distinct = (
        df.select(F.col(column).alias("_raw_phone"))
        .where(F.col("_raw_phone").isNotNull())
        .distinct()
    )
    mapping = distinct.select("_raw_phone", convert("_raw_phone").alias(out))
    return df.join(mapping, df[column] == mapping["_raw_phone"], "left").drop("_raw_phone")


def local_to_utc(column: Column | str, timezone: str) -> Column:
    """A source's local wall-clock timestamp string (or ISO text with an offset) as UTC.

    Text with an explicit offset (``2026-01-05T08:00:00+08:00``) keeps its offset; text
    without one is read in ``timezone``. Unparseable text gives null.
    """
    text = F.col(column) if isinstance(column, str) else column
    has_offset = text.rlike(r"(Z|[+-]\d{2}:?\d{2})$")
    parsed = F.try_to_timestamp(text)
    return F.when(has_offset, parsed).otherwise(
        F.to_utc_timestamp(F.try_to_timestamp(text), timezone)
    )
