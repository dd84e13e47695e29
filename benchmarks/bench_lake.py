"""Write and read N rows through the lake layer vs plain Spark Parquet, in the same run.

    .venv/bin/python -m benchmarks.bench_lake --rows 10000000 --repeats 3

The layer's extra work is staging, footer stats, moving files and the delta-rs commit;
the target is under 10% on the write. Results: benchmarks/results/lake-<rows>.{json,md}.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from pyspark.sql import functions as F

from benchmarks.common import PeakMemory, median, save, timed
from contactlake.config import load_config
from contactlake.lake import Lake
from contactlake.spark import build_session


def contact_like_rows(spark, rows: int):
    """A contacts-shaped frame: ids, codes, timestamps, durations, a date to partition by."""
    base = spark.range(rows)
    h = F.xxhash64("id")
    return base.select(
        F.col("id").alias("contact_id"),
        (F.abs(h) % 2_000_000).alias("customer_key"),
        F.element_at(
            F.array(*[F.lit(c) for c in ("voice", "ivr", "app", "wechat", "web", "chat")]),
            (F.abs(h) % 6 + 1).cast("int"),
        ).alias("channel"),
        F.concat(F.lit("Q"), (F.abs(h) % 40).cast("string")).alias("queue"),
        F.timestamp_seconds(F.lit(1767225600) + F.abs(h) % (30 * 86400)).alias("start_ts"),
        (F.abs(F.xxhash64("id", F.lit(1))) % 900).cast("double").alias("talk_s"),
        (F.abs(F.xxhash64("id", F.lit(2))) % 120).cast("double").alias("wait_s"),
        (F.abs(h) % 10 < 2).alias("abandoned"),
    ).withColumn("contact_date", F.to_date("start_ts"))


def scan(df):
    """Touch every column so the read is not pruned away."""
    return df.agg(
        F.count("*"),
        F.sum("talk_s"),
        F.sum("wait_s"),
        F.countDistinct("channel"),
        F.max("start_ts"),
        F.sum(F.length("queue")),
        F.sum(F.col("abandoned").cast("int")),
    ).collect()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)

    cfg = load_config("local", ["spark.shuffle_partitions=8", "spark.log_level=ERROR"])
    spark = build_session(cfg.spark)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-lake-"))
    lake = Lake(str(work / "lake"), spark)
    source = contact_like_rows(spark, args.rows).cache()
    source.count()

    times: dict[str, list[float]] = {
        k: []
        for k in (
            "spark_write",
            "lake_write",
            "spark_write_part",
            "lake_write_part",
            "spark_read",
            "lake_read",
        )
    }
    with PeakMemory() as memory:
        for i in range(args.repeats):
            plain, plain_part = work / f"plain-{i}", work / f"plain-part-{i}"
            # same URI form as the layer uses: Spark is measurably slower on scheme-less paths
            plain_uri, plain_part_uri = f"file://{plain}", f"file://{plain_part}"
            # alternate the order so neither side always runs on a warmer JVM
            order = ("spark", "lake") if i % 2 == 0 else ("lake", "spark")
            for side in order:
                if side == "spark":
                    with timed(times["spark_write"]):
                        source.write.parquet(plain_uri)
                    with timed(times["spark_write_part"]):
                        source.write.partitionBy("contact_date").parquet(plain_part_uri)
                else:
                    with timed(times["lake_write"]):
                        lake.write(source, f"bench/flat_{i}")
                    with timed(times["lake_write_part"]):
                        lake.write(source, f"bench/part_{i}", partition_by=["contact_date"])
            with timed(times["spark_read"]):
                scan(spark.read.parquet(plain_part_uri))
            with timed(times["lake_read"]):
                scan(lake.read(f"bench/part_{i}"))
            assert lake.read(f"bench/flat_{i}").count() == args.rows
            shutil.rmtree(plain)
            shutil.rmtree(plain_part)

    med = {k: median(v) for k, v in times.items()}
    overhead = {
        "write_flat_pct": round(100 * (med["lake_write"] / med["spark_write"] - 1), 1),
        "write_partitioned_pct": round(
            100 * (med["lake_write_part"] / med["spark_write_part"] - 1), 1
        ),
        "read_pct": round(100 * (med["lake_read"] / med["spark_read"] - 1), 1),
    }
    result = {
        "rows": args.rows,
        "repeats": args.repeats,
        "median_seconds": med,
        "overhead": overhead,
        "all_seconds": times,
        "peak_memory_gib": memory.peak_gib,
        "rows_per_second_per_core_lake_write": round(args.rows / med["lake_write"] / 2),
    }
    md = "\n".join(
        [
            f"### Lake layer vs plain Spark Parquet, {args.rows:,} rows, median of {args.repeats}",
            "| operation | plain Spark s | lake s | overhead |",
            "|---|---|---|---|",
            f"| write | {med['spark_write']} | {med['lake_write']} | {overhead['write_flat_pct']}% |",
            f"| write partitioned by date | {med['spark_write_part']} | {med['lake_write_part']} | {overhead['write_partitioned_pct']}% |",
            f"| read (full scan) | {med['spark_read']} | {med['lake_read']} | {overhead['read_pct']}% |",
            f"\npeak memory (PSS) driver+JVM {memory.peak_gib} GiB",
        ]
    )
    save(f"lake-{args.rows}", result, md)
    print(md)
    shutil.rmtree(work, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
