"""Score a built lake against the generator's truth: identity clusters, duplicate removal,
row accounting. Prints a markdown table and writes benchmarks/results/evaluate-<name>.json.

    .venv/bin/python -m benchmarks.evaluate --env local [--name demo]
"""

from __future__ import annotations

import argparse

from pyspark.sql import functions as F

from benchmarks.common import save
from contactlake.config import load_config
from contactlake.evaluation import duplicate_removal, identity_items, pairwise_cluster_scores
from contactlake.lake import Lake
from contactlake.spark import build_session


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="local")
    parser.add_argument("--name", default="demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    cfg = load_config(args.env, args.overrides)
    spark = build_session(cfg.spark)
    lake = Lake.from_config(cfg.lake, spark)
    truth = cfg.truth.root
    predicted, expected = identity_items(
        lake.read("silver/identity_map"), spark.read.parquet(f"{truth}/identity")
    )
    ident = pairwise_cluster_scores(predicted, expected).first().asDict()
    dups = (
        duplicate_removal(lake.read("silver/contacts"), spark.read.parquet(f"{truth}/defects"))
        .first()
        .asDict()
    )
    ingested = (
        lake.read("ops/ingested_files")
        .agg(*[F.sum(c).alias(c) for c in ("rows_landed", "rows_bronze", "rows_quarantined")])
        .first()
        .asDict()
    )
    unified = (
        lake.read("ops/unified_batches")
        .agg(
            *[
                F.sum(c).alias(c)
                for c in ("rows_bronze", "rows_silver", "rows_quarantined", "rows_merged")
            ]
        )
        .first()
        .asDict()
    )
    result = {"identity": ident, "duplicates": dups, "ingest": ingested, "unify": unified}
    md = "\n".join(
        [
            f"### Silver vs truth ({args.name})",
            "| measure | value |",
            "|---|---|",
            f"| identity pairwise precision | {ident['precision']:.4f} |",
            f"| identity pairwise recall | {ident['recall']:.4f} |",
            f"| identifiers scored | {ident['items']:,} |",
            f"| planted duplicate calls removed | {dups['removed_share']:.4f} ({dups['planted']:,} planted) |",
            f"| landed = bronze + quarantine | {ingested['rows_landed']:,} = {ingested['rows_bronze']:,} + {ingested['rows_quarantined']:,} |",
            f"| bronze = silver + quarantine + merged | {unified['rows_bronze']:,} = {unified['rows_silver']:,} + {unified['rows_quarantined']:,} + {unified['rows_merged']:,} |",
        ]
    )
    save(f"evaluate-{args.name}", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
