"""The only I/O of the generator: text files per source and date, and truth Parquet.

Landing files are written by Spark's text writer (no codec, so no timestamps inside) with
one partition per date (hash-partitioned by date, sorted by a record key), then moved from
Spark's ``part-<n>-<uuid>`` names to stable ``<prefix>-00000.<ext>`` names, so the same
seed and settings give byte-identical files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


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
) -> int:
    """Write ``df`` (date, key, value) as ``<root>/<source>/<date>/<prefix>-00000.<ext>``.

    ``headers`` maps a date to its header line (CSV); every date in it gets a file, even
    when it has no rows. ``header`` is one header line for every date that has rows.
    Replaces files of earlier runs. Returns the number of files.
    """
    spark = df.sparkSession
    rows = df.select(
        "date", F.lit(1).alias("_o"), F.col("key").cast("string").alias("key"), "value"
    )
    if header:
        hdr = rows.select("date").distinct()
        rows = (
            hdr.select("date", F.lit(0).alias("_o"), F.lit(""), F.lit(header))
            .toDF(*rows.columns)
            .unionByName(rows)
        )
    if headers:
        hdr = spark.createDataFrame(
            [(d, 0, "", h) for d, h in sorted(headers.items())],
            "date string, _o int, key string, value string",
        )
        rows = hdr.unionByName(rows)
    base = _local(root)
    staging = base / "_staging" / f"{source}-{prefix}"
    if staging.exists():
        shutil.rmtree(staging)
    (
        rows.repartition(partitions, "date")
        .sortWithinPartitions("date", "_o", "key")
        .select("date", "value")
        .write.partitionBy("date")
        .option("compression", "none")
        .text(str(staging))
    )
    out = base / source
    moved = 0
    for ddir in sorted(staging.glob("date=*")):
        parts = sorted(f for f in ddir.iterdir() if f.name.startswith("part-"))
        if len(parts) != 1:
            raise RuntimeError(f"{ddir}: expected one file per date, got {len(parts)}")
        target = out / ddir.name.removeprefix("date=")
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(parts[0]), str(target / f"{prefix}-00000.{ext}"))
        moved += 1
    shutil.rmtree(staging)
    if not any((base / "_staging").iterdir()):
        (base / "_staging").rmdir()
    return moved


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
