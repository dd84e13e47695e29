"""Landing -> bronze: every new file of every source for the run date.

    python -m jobs.ingest --env local --run-date 2026-01-31 [--set ingest.sources=[voice,ivr]]

A file is ingested once (tracked by path and sha256 in ops/ingested_files); a changed file
under a known name stops its source with an error naming it. Lines that cannot be parsed
go to quarantine/<source> with the raw payload, file, line and reason. A file whose header
lacks a required column, or brings a new one under the "reject" drift policy, is stopped
and reported; the job then fails after committing the other files.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from datetime import UTC, datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import functions as F

from contactlake.ingest.bronze import (
    INGESTED_FILES_SCHEMA,
    QUARANTINE_SCHEMA,
    bronze_rows,
    quarantine_rows,
    rows_by_file,
)
from contactlake.ingest.landing import LandedFile, Landing
from contactlake.ingest.parse import (
    align_columns,
    json_keys_by_file,
    number_lines,
    parse_delimited,
    parse_json_lines,
)
from contactlake.ingest.sources import SourceSpec, load_sources
from contactlake.runner import JobContext, run_job

JOB = "ingest"
REGISTRY = "ops/ingested_files"


class IngestError(RuntimeError):
    pass


def _registered(ctx: JobContext, source: str) -> dict[str, str]:
    """path -> checksum of the files of ``source`` already ingested."""
    if not ctx.lake.exists(REGISTRY):
        return {}
    rows = ctx.lake.read(REGISTRY).where(F.col("source") == source).select("path", "checksum")
    return {r.path: r.checksum for r in rows.collect()}


def _layouts(landing: Landing, spark, spec: SourceSpec, files: list[LandedFile]):
    """Column layout of each file: CSV headers, JSON keys, Parquet schemas."""
    if spec.format == "csv":
        return {
            f.path: next(csv.reader([landing.first_line(f.path)], delimiter=spec.delimiter))
            for f in files
        }
    if spec.format == "jsonl":
        keys = json_keys_by_file(landing.read_lines(spark, [f.path for f in files])).collect()
        found: dict[str, list[str]] = {f.path: [] for f in files}
        for row in keys:
            found[row._file].append(row.key)
        return found
    return {f.path: spark.read.parquet(landing.spark_path(f.path)).columns for f in files}


def _check_layout(spec: SourceSpec, columns: list[str], known: list[str]) -> str | None:
    """Why a file cannot be ingested, or None."""
    missing = [c for c in spec.required if c not in columns]
    if missing:
        return f"required columns {missing} missing"
    new = [c for c in columns if c not in known]
    if new and spec.drift == "reject":
        return f"new columns {new} (drift policy: reject)"
    if len(set(columns)) != len(columns):
        return "repeated column names"
    return None


def _check_quiet_source(ctx: JobContext, table: str) -> None:
    """A source that sent no new files is validated as an empty batch, when its suite has a
    freshness check: the freshness and volume checks then record that the feed went quiet
    (nothing new would otherwise be checked at all)."""
    suite = ctx.quality_suite(table)
    if suite and suite.freshness and ctx.lake.exists(table):
        ctx.check_quality(ctx.lake.read(table).limit(0), table, suite)


def ingest_source(ctx: JobContext, landing: Landing, spec: SourceSpec) -> list[str]:
    """Ingest the run date's new files of one source; returns the stopped files' messages."""
    first_day = ctx.run_date - timedelta(days=ctx.cfg.ingest.lookback_days)
    files = landing.files(spec.name, first_day, ctx.run_date)
    day = f"{first_day}..{ctx.run_date}"
    seen = _registered(ctx, spec.name)
    stopped = [
        f"{f.path}: changed since it was ingested (sha256 {seen[f.path][:12]}... -> {f.checksum[:12]}...)"
        for f in files
        if f.path in seen and seen[f.path] != f.checksum
    ]
    new = [f for f in files if f.path not in seen]
    table = f"bronze/{spec.name}"
    if not new:
        ctx.log.info("%s %s: no new files (%d already ingested)", spec.name, day, len(files))
        _check_quiet_source(ctx, table)
        return stopped

    bronze_extra = []
    if ctx.lake.exists(table):
        bronze_extra = [
            c
            for c in ctx.lake.schema(table).fieldNames()
            if c not in spec.columns and not c.startswith("_")
        ]
    known = spec.columns + bronze_extra
    layouts = _layouts(landing, ctx.spark, spec, new)
    accepted = []
    for f in new:
        problem = _check_layout(spec, layouts[f.path], known)
        if problem:
            stopped.append(f"{f.path}: {problem}")
        else:
            accepted.append(f)
    if not accepted:
        return stopped
    columns = known + [c for f in accepted for c in layouts[f.path] if c not in known]
    columns = list(dict.fromkeys(columns))

    batch_id = hashlib.sha256(
        "|".join(f"{f.path}:{f.checksum}" for f in accepted).encode()
    ).hexdigest()[:16]
    app_id = f"{JOB}/{spec.name}/{batch_id}"
    ingested_at = F.lit(datetime.now(UTC)).cast("timestamp")

    with ctx.stage(f"{spec.name}: parse {len(accepted)} files") as info:
        parts = []
        # CSV columns are positional: one parse per header layout. JSON and Parquet are
        # read by name: one parse for all files.
        by_layout: dict[tuple, list[str]] = {}
        for f in accepted:
            layout = tuple(layouts[f.path]) if spec.format == "csv" else tuple(columns)
            by_layout.setdefault(layout, []).append(f.path)
        for layout, paths in by_layout.items():
            if spec.format == "parquet":
                lines = landing.read_parquet_rows(ctx.spark, paths)
                parsed = (
                    number_lines(lines)
                    .withColumn("_reason", F.lit(None).cast("string"))
                    .withColumn("_detail", F.lit(None).cast("string"))
                )
            else:
                lines = number_lines(landing.read_lines(ctx.spark, paths))
                if spec.format == "csv":
                    lines = lines.where(F.col("_line") > 1)  # the header
                    parsed = parse_delimited(lines, list(layout), spec.delimiter)
                else:
                    parsed = parse_json_lines(lines, list(layout))
            parts.append(
                align_columns(parsed, [*columns, "value", "_file", "_line", "_reason", "_detail"])
            )
        parsed = parts[0]
        for part in parts[1:]:
            parsed = parsed.unionByName(part)
        parsed = parsed.persist(StorageLevel.MEMORY_AND_DISK)
        counts = {r._file: r for r in rows_by_file(parsed).collect()}
        info["rows"] = sum(r.landed for r in counts.values())

    try:
        with ctx.stage(f"{spec.name}: write bronze and quarantine") as info:
            bronze = bronze_rows(parsed, columns, batch_id, ingested_at)
            written = ctx.write_checked(
                bronze, table, partition_by=["_landing_date"], evolve_schema=True, app_id=app_id
            )
            rejected = quarantine_rows(parsed, "ingest", batch_id, ingested_at)
            ctx.lake.write(
                rejected.select(*QUARANTINE_SCHEMA.fieldNames()),
                f"quarantine/{spec.name}",
                partition_by=["_landing_date"],
                app_id=app_id,
            )
            info["rows"] = written.rows_added
    finally:
        parsed.unpersist()

    landed = sum(r.landed for r in counts.values())
    good = sum(r.bronze for r in counts.values())
    bad = sum(r.quarantined for r in counts.values())
    if not written.skipped and written.rows_added != good:
        raise IngestError(f"{table}: committed {written.rows_added} rows, parsed {good}")
    now = datetime.now(UTC)
    ctx.lake.append_rows(
        REGISTRY,
        [
            {
                "source": spec.name,
                "landing_date": f.landing_date,
                "path": f.path,
                "size": f.size,
                "checksum": f.checksum,
                "batch_id": batch_id,
                "rows_landed": counts[f.path].landed if f.path in counts else 0,
                "rows_bronze": counts[f.path].bronze if f.path in counts else 0,
                "rows_quarantined": counts[f.path].quarantined if f.path in counts else 0,
                "ingested_at": now,
            }
            for f in accepted
        ],
        INGESTED_FILES_SCHEMA,
        app_id=app_id,
    )
    ctx.rows_in += landed
    ctx.rows_out += good
    ctx.rows_rejected += bad
    ctx.log.info(
        "%s %s: %d files, %d lines -> bronze %d + quarantine %d",
        spec.name,
        day,
        len(accepted),
        landed,
        good,
        bad,
    )
    return stopped


def run(ctx: JobContext) -> None:
    specs = load_sources(ctx.cfg.conf_dir)
    wanted = ctx.cfg.ingest.sources or sorted(specs)
    unknown = [s for s in wanted if s not in specs]
    if unknown:
        raise IngestError(f"ingest.sources names unknown sources {unknown}; known: {sorted(specs)}")
    landing = Landing(ctx.cfg.landing.root)
    stopped = []
    for name in wanted:
        stopped += ingest_source(ctx, landing, specs[name])
    if stopped:
        raise IngestError(
            f"{len(stopped)} files stopped, tables untouched for them: " + "; ".join(stopped)
        )


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(JOB, run, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
