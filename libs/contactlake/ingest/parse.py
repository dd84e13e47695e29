"""Pure transforms from landed lines to bronze rows, each row keeping its file, line and raw
text, and a reason code when it cannot be parsed (those rows go to quarantine).

Reason codes: INVALID_UTF8, EMPTY_LINE, COLUMN_COUNT (delimited files), BROKEN_JSON,
NOT_AN_OBJECT (JSON lines).
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

REASON = "_reason"
DETAIL = "_detail"
# A CSV field in quotes, with "" as an escaped quote inside.
_QUOTED = r'"(?:[^"]|"")*"'


BLOCKS_SCHEMA = "_file string, _block long, _n long, _first long, _keys array<string>"


def line_blocks(lines: DataFrame, json_keys: bool = False) -> DataFrame:
    """Per file split: how many lines it holds and where its row ids start (what
    :func:`number_lines` needs), and optionally the JSON keys its lines use.

    Small (a row per split): a job collects it once, so that numbering the lines costs no
    second pass over the files in each later Spark job.

    Args:
        lines: needs ``_file``, ``_block`` (byte offset of the file split the row was read
            from), ``_mid`` (``monotonically_increasing_id()`` taken at read time) and,
            for ``json_keys``, ``value``.
        json_keys: also collect the distinct top-level keys of the split's JSON objects
            (for schema-drift checks); else ``_keys`` is null.

    Returns:
        ``_file``, ``_block``, ``_n`` (lines), ``_first`` (smallest ``_mid``), ``_keys``.
    """
    keys = F.lit(None).cast("array<string>")
    if json_keys:
        per_line = F.json_object_keys(F.when(F.is_valid_utf8("value"), F.col("value")))
        keys = F.array_distinct(F.flatten(F.collect_set(per_line)))
    return lines.groupBy("_file", "_block").agg(
        F.count(F.lit(1)).alias("_n"), F.min("_mid").alias("_first"), keys.alias("_keys")
    )


def number_lines(lines: DataFrame, blocks: DataFrame) -> DataFrame:
    """Add ``_line``, the 1-based line number of each row within its file.

    Args:
        lines: needs ``_file``, ``_block`` and ``_mid``, as for :func:`line_blocks`.
        blocks: :func:`line_blocks` of the same read (``_file, _block, _n, _first``).

    Returns:
        ``lines`` with ``_line`` added and ``_block``/``_mid`` dropped.
    """
    earlier = (
        Window.partitionBy("_file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    )
    offsets = blocks.select(
        "_file",
        "_block",
        "_first",
        F.coalesce(F.sum("_n").over(earlier), F.lit(0)).alias("_offset"),
    )
    # Rows of one split are consecutive in one partition, so mid - first is the row's
    # position inside the split; earlier splits of the same file come before it.
    return (
        lines.join(F.broadcast(offsets), ["_file", "_block"])
        .withColumn("_line", F.col("_offset") + F.col("_mid") - F.col("_first") + 1)
        .drop("_block", "_mid", "_first", "_offset")
    )


def _common_reason(value: Column) -> Column:
    return F.when(~F.is_valid_utf8(value), F.lit("INVALID_UTF8")).when(
        F.trim(value) == "", F.lit("EMPTY_LINE")
    )


def parse_delimited(lines: DataFrame, columns: list[str], delimiter: str = ",") -> DataFrame:
    """Split delimited lines into string columns named by ``columns`` (the file's header).

    Args:
        lines: needs ``value`` (one line of text, header excluded).
        columns: the file's column names, in order.

    Returns:
        ``lines`` plus one string column per name, ``_reason`` and ``_detail`` (null when
        the line parsed). Quoting follows RFC 4180 (``"a,b"``, ``""`` inside quotes).
    """
    schema = ", ".join(f"`c{i}` STRING" for i in range(len(columns)))
    options = {"sep": delimiter, "escape": '"', "quote": '"', "mode": "PERMISSIVE"}
    value = F.col("value")
    sep = re.escape(delimiter)
    # The CSV parser reads every line, but pads missing and drops extra fields silently, so
    # fields are counted outside it: for most lines (no quote) the delimiters plus one,
    # counted without building the fields; for a line with a quote, outside the quotes.
    # (Splitting unquoted lines instead, and taking each field from the split or the
    # parser, made a generated method too large for the JIT: 3x slower at 19 columns.)
    delimiters = (
        F.octet_length(value) - F.octet_length(F.replace(value, F.lit(delimiter), F.lit("")))
    ) / len(delimiter.encode())
    staged = lines.select(
        *lines.columns,
        F.from_csv(value, schema, options).alias("_csv"),
        F.when(
            value.contains('"'),
            F.size(F.split(F.regexp_replace(value, _QUOTED, ""), sep, -1)),
        )
        .otherwise(delimiters.cast("int") + 1)
        .alias("_fields"),
    )
    reason = _common_reason(value).when(F.col("_fields") != len(columns), F.lit("COLUMN_COUNT"))
    detail = F.when(
        reason == "COLUMN_COUNT",
        F.format_string(f"expected {len(columns)} fields, found %d", F.col("_fields")),
    )
    return staged.select(
        *lines.columns,
        *[F.col("_csv")[f"c{i}"].alias(name) for i, name in enumerate(columns)],
        reason.alias(REASON),
        detail.alias(DETAIL),
    )


def parse_json_lines(lines: DataFrame, columns: list[str]) -> DataFrame:
    """Read JSON-object lines into string columns (nested values kept as JSON text).

    Args:
        lines: needs ``value`` (one JSON document per line).
        columns: the keys to extract; absent keys give null.

    Returns:
        ``lines`` plus one string column per key, ``_reason`` and ``_detail``.
    """
    schema = ", ".join(f"`{name}` STRING" for name in columns)
    value = F.col("value")
    # A line is one JSON document when "[line]" is an array of one element and "[line,0]"
    # of two: Jackson stops at the array's end, so text after the document (a second
    # record, or a "]" that closes the array early) fails one of the two. try_parse_json
    # stops after the first value and took '{"a": 1}{"a": 2}' as {"a": 1}, losing the rest.
    valid = F.coalesce(
        (F.json_array_length(F.concat(F.lit("["), value, F.lit("]"))) == 1)
        & (F.json_array_length(F.concat(F.lit("["), value, F.lit(",0]"))) == 2),
        F.lit(False),
    )
    reason = (
        _common_reason(value)
        .when(~valid, F.lit("BROKEN_JSON"))
        .when(~F.ltrim("value").startswith("{"), F.lit("NOT_AN_OBJECT"))
    )
    # Parsed in a projection of its own: inside each column's when() Spark cannot share it
    # and parsed every line once per column (3x slower over 14 columns).
    staged = lines.select("*", F.from_json(value, schema).alias("_parsed"), reason.alias(REASON))
    ok = F.col(REASON).isNull()
    return staged.select(
        *lines.columns,
        *[F.when(ok, F.col("_parsed")[name]).alias(name) for name in columns],
        REASON,
        F.when(F.col(REASON) == "BROKEN_JSON", F.lit("not valid JSON")).alias(DETAIL),
    )


def align_columns(df: DataFrame, columns: list[str]) -> DataFrame:
    """Select ``columns`` in order, adding absent ones as null strings (older layouts)."""
    present = set(df.columns)
    return df.select(
        *[F.col(c) if c in present else F.lit(None).cast("string").alias(c) for c in columns]
    )
