"""Data files of a commit: partition values from hive-style paths and Delta stats from
Parquet footers. No Spark here, so commits also work from plain Python processes."""

from __future__ import annotations

import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from contactlake.lake.errors import InvalidDataFileError, PartitionMismatchError

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_UNIT = {"milliseconds": 1000, "microseconds": 1}
_HEX = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class DataFile:
    """One Parquet file to add to a table.

    ``path`` is relative to the table root exactly as on disk (delta-rs URI-encodes it in
    the log); partition values are Delta's string form, None for null.
    """

    path: str
    size: int
    modification_time: int
    partition_values: dict[str, str | None]
    num_records: int
    stats: str


def is_data_file(rel_path: str) -> bool:
    """Parquet data files only: no _SUCCESS, .crc, _temporary or other hidden entries.

    Spark's rule: a name starting with ``_`` or ``.`` is hidden, except a directory named
    ``col=value`` (a partition column may start with an underscore).
    """
    *dirs, name = rel_path.split("/")
    if name.startswith(("_", ".")):
        return False
    if any(d.startswith(".") or (d.startswith("_") and "=" not in d) for d in dirs):
        return False
    return name.endswith(".parquet")


def unescape_path_name(name: str) -> str:
    """Undo the %XX escaping Spark and delta-rs apply to partition directory names."""
    return _HEX.sub(lambda m: chr(int(m.group(1), 16)), name) if "%" in name else name


def partition_values_from_path(rel_path: str, partition_by: list[str]) -> dict[str, str | None]:
    """Read ``col=value`` directory segments; they must match ``partition_by`` in order."""
    dirs = rel_path.split("/")[:-1]
    if len(dirs) != len(partition_by):
        raise PartitionMismatchError(
            f"{rel_path}: expected partition directories {partition_by}, found {dirs}"
        )
    values: dict[str, str | None] = {}
    for segment, column in zip(dirs, partition_by, strict=True):
        key, sep, raw = segment.partition("=")
        if not sep or unescape_path_name(key) != column:
            raise PartitionMismatchError(f"{rel_path}: segment {segment!r} is not {column}=...")
        values[column] = None if raw == HIVE_NULL else unescape_path_name(raw)
    return values


def _format_timestamp_millis(micros: int, round_up: bool) -> str | None:
    millis = -((-micros) // 1000) if round_up else micros // 1000
    try:
        ts = _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        return None
    # Explicit zero padding: strftime("%Y") drops it for years before 1000.
    return (
        f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:"
        f"{ts.second:02d}.{ts.microsecond // 1000:03d}Z"
    )


def _stat_value(column, raw, is_max: bool, max_string_length: int):
    """Delta JSON value for a footer min/max, or None when Delta keeps no stat for it."""
    logical = json.loads(column.logical_type.to_json())
    kind = logical.get("Type")
    physical = column.physical_type
    if kind == "Timestamp":
        micros_per_unit = _MICROS_PER_UNIT.get(logical.get("timeUnit"))
        if not logical.get("isAdjustedToUTC") or micros_per_unit is None:
            return None  # timestamp_ntz or nanoseconds: not written by this layer
        # Stats keep milliseconds: floor the min, ceil the max so skipping stays safe.
        return _format_timestamp_millis(int(raw) * micros_per_unit, round_up=is_max)
    if kind == "Date":
        try:
            return (date(1970, 1, 1) + timedelta(days=int(raw))).isoformat()
        except OverflowError:
            return None
    if kind == "String":
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            return None
        return text if len(text) <= max_string_length else None
    if kind in ("None", "Int") and physical in ("INT32", "INT64"):
        if kind == "Int" and not logical.get("isSigned", True):
            return None
        return int(raw)
    if kind == "None" and physical in ("FLOAT", "DOUBLE"):
        value = float(raw)
        return None if math.isnan(value) or math.isinf(value) else value
    return None  # booleans, decimals, binary, nested types: no min/max


def _set_nested(target: dict, path: list[str], value) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def footer_stats(metadata: pq.FileMetaData, max_string_length: int) -> tuple[int, str]:
    """(numRecords, Delta stats JSON) from a Parquet footer.

    Raises:
        InvalidDataFileError: the file stores INT96 timestamps.
    """
    schema = metadata.schema
    stats: dict = {
        "numRecords": metadata.num_rows,
        "minValues": {},
        "maxValues": {},
        "nullCount": {},
    }
    for i in range(metadata.num_columns):
        column = schema.column(i)
        if column.physical_type == "INT96":
            raise InvalidDataFileError(
                f"column {column.path} is stored as INT96: set "
                "spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS"
            )
        if column.max_repetition_level > 0:
            continue  # inside a list or map: no per-column stats in Delta
        path = column.path.split(".")
        nulls, lows, highs, complete = 0, [], [], True
        for rg in range(metadata.num_row_groups):
            chunk_stats = metadata.row_group(rg).column(i).statistics
            if chunk_stats is None or not chunk_stats.has_null_count:
                complete = False
                break
            nulls += chunk_stats.null_count
            if chunk_stats.has_min_max:
                lows.append(chunk_stats.min_raw)
                highs.append(chunk_stats.max_raw)
        if not complete:
            continue
        _set_nested(stats["nullCount"], path, nulls)
        if not lows:
            continue
        low = _stat_value(column, min(lows), False, max_string_length)
        high = _stat_value(column, max(highs), True, max_string_length)
        if low is not None and high is not None:
            _set_nested(stats["minValues"], path, low)
            _set_nested(stats["maxValues"], path, high)
    return metadata.num_rows, json.dumps(stats, separators=(",", ":"))


def describe_files(
    fs: pafs.FileSystem,
    root: str,
    rel_paths: list[str],
    partition_by: list[str],
    max_string_length: int,
) -> list[DataFile]:
    """Check each file exists and is valid Parquet, and build its DataFile (in parallel)."""

    def describe(rel: str) -> DataFile:
        full = f"{root}/{rel}"
        info = fs.get_file_info(full)
        if info.type != pafs.FileType.File:
            raise InvalidDataFileError(f"data file {full} does not exist")
        try:
            metadata = pq.read_metadata(full, filesystem=fs)
        except Exception as exc:  # pyarrow raises several types for a bad footer
            raise InvalidDataFileError(f"data file {full} is not readable Parquet: {exc}") from exc
        try:
            num_records, stats = footer_stats(metadata, max_string_length)
        except InvalidDataFileError as exc:
            raise InvalidDataFileError(f"{full}: {exc}") from None
        return DataFile(
            path=rel,
            size=info.size,
            modification_time=int(info.mtime_ns // 1_000_000) if info.mtime_ns else 0,
            partition_values=partition_values_from_path(rel, partition_by),
            num_records=num_records,
            stats=stats,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(describe, rel_paths))
