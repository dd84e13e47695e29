"""The only I/O of the generator: text files per source and date, and truth Parquet.

Landing files are written by Spark's text writer (no codec, so no timestamps inside),
each date's rows in one task (hash-partitioned by date) in the order of a hash of their
record key, then moved from Spark's ``part-<n>-<uuid>`` names to stable
``<prefix>-00000.<ext>`` names, so the same seed and settings give byte-identical files.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, Observation
from pyspark.sql import functions as F

from contactlake.spark import session_conf

# the partition value of the side lines (see write_lines); dates are ISO dates, never this
SIDE = "_side"

# Rows are sorted by a 64-bit hash of their key, not by (date, key): with the date first,
# every comparison ties on the sort prefix (the date) and falls back to comparing whole
# rows, which took a quarter of the billing CPU. The writer then gets the rows of a task's
# dates interleaved, so it keeps one file open per date instead of requiring date order
# (which would make Spark re-sort by date and lose the hash order).
SORT_KEY = "shiftleft(CAST(_o AS BIGINT), 62) | shiftrightunsigned(xxhash64(key), 2)"
WRITE_CONF = {
    "spark.sql.optimizer.plannedWrite.enabled": "false",
    # above every date a task can hold, so the writer never falls back to sorting by date
    "spark.sql.maxConcurrentOutputFileWriters": str(2**31 - 1),
}


@dataclass(frozen=True)
class Written:
    """What :func:`write_lines` wrote."""

    files: int  # landing files
    rows: int  # records (header lines not counted)
    side: Path | None  # the side lines, or None when there were none


def _local(path: str) -> Path:
    if "://" in path and not path.startswith("file://"):
        raise ValueError(f"the generator writes to local or mounted paths only, not {path}")
    return Path(path.removeprefix("file://"))


def write_lines(
    df: DataFrame,
    root: str,
    source: str,
    partitions: int,
    prefix: str = "part",
    ext: str = "csv",
    headers: dict[str, str] | None = None,
    header: str | None = None,
    header_dates: Sequence[str] = (),
    side: Column | None = None,
    side_to: str | None = None,
) -> Written:
    """Write ``df`` (date, key, value) as ``<root>/<source>/<date>/<prefix>-00000.<ext>``.

    ``headers`` maps a date to its header line (CSV); every date in it gets a file, even
    when it has no rows. ``header`` is one header line for every date that has rows; each
    of ``header_dates`` (every date a row can have) gets it, and files left with the header
    only are removed. ``side`` (a string column, null for most rows) is written in the same
    pass as the lines, one per non-null value, to the file ``side_to``: the rows are
    computed once without being cached. Replaces files of earlier runs.
    """
    spark = df.sparkSession
    counted = Observation(f"{source}-{prefix}")
    df = df.observe(counted, F.count(F.lit(1)).alias("rows"))
    key = F.col("key").cast("string")
    line = F.struct(F.col("date"), F.lit(1).alias("_o"), key.alias("key"), F.col("value"))
    if side is None:
        rows = df.select(line.alias("r"))
    else:
        side_line = F.struct(
            F.lit(SIDE).alias("date"), F.lit(1).alias("_o"), key.alias("key"), side.alias("value")
        )
        # one generated row gives its line and, when side is set, a side line
        items = F.array(line, F.when(side.isNotNull(), side_line))
        rows = df.select(F.explode(items).alias("r")).where("r IS NOT NULL")
    rows = rows.select("r.*")
    hdr_lines = dict(headers or {})
    if header:
        hdr_lines.update({d: header for d in header_dates})
    if hdr_lines:
        hdr = spark.createDataFrame(
            [(d, 0, "", h) for d, h in sorted(hdr_lines.items())],
            "date string, _o int, key string, value string",
        )
        rows = hdr.unionByName(rows)
    base = _local(root)
    staging = base / "_staging" / f"{source}-{prefix}"
    if staging.exists():
        shutil.rmtree(staging)
    with session_conf(spark, WRITE_CONF):
        (
            rows.repartition(partitions, "date")
            # the header (_o = 0) first; key and line break ties of the hash
            .sortWithinPartitions(F.expr(SORT_KEY), "key", "value")
            .select("date", "value")
            .write.partitionBy("date")
            .option("compression", "none")
            .text(str(staging))
        )
    out = base / source
    moved = 0
    side_file = None
    header_line = header.encode() + b"\n" if header else b""
    for ddir in sorted(staging.glob("date=*")):
        parts = sorted(f for f in ddir.iterdir() if f.name.startswith("part-"))
        if len(parts) != 1:
            raise RuntimeError(f"{ddir}: expected one file per date, got {len(parts)}")
        date = ddir.name.removeprefix("date=")
        if date == SIDE:
            side_file = _local(side_to)
            side_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(parts[0]), str(side_file))
            continue
        if header:
            if parts[0].stat().st_size == len(header_line):
                continue  # a header date without rows
            with parts[0].open("rb") as f:
                if f.read(len(header_line)) != header_line:
                    raise RuntimeError(f"{source}: rows dated {date} are outside header_dates")
        target = out / date
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(parts[0]), str(target / f"{prefix}-00000.{ext}"))
        moved += 1
    shutil.rmtree(staging)
    if not any((base / "_staging").iterdir()):
        (base / "_staging").rmdir()
    return Written(files=moved, rows=counted.get["rows"], side=side_file)


def clear(root: str, *names: str) -> None:
    """Remove ``<root>/<name>`` folders (a re-run replaces its output)."""
    for name in names:
        path = _local(root) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def write_truth(df: DataFrame, root: str, name: str, partitions: int) -> None:
    """Write a truth table as Parquet at ``<root>/<name>`` (replaces it).

    ``coalesce`` rather than ``repartition``: at most ``partitions`` files without
    shuffling the table (the contacts truth is the largest data set of the run).
    """
    df.coalesce(partitions).write.mode("overwrite").parquet(str(_local(root) / name))
