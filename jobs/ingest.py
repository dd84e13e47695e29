"""Landing -> bronze: every new file of every source for the run date.

    python -m jobs.ingest --env local --run-date 2026-01-31 [--set ingest.sources=[voice,ivr]]

A file is ingested once (tracked by path and sha256 in ops/ingested_files); a changed file
under a known name stops its source with an error naming it. Lines that cannot be parsed
go to quarantine/<source> with the raw payload, file, line and reason. The lines of each
file are counted first; bronze is committed only once every one of them is found again
in bronze or quarantine (read back from the staged files). A file whose header
lacks a required column, or brings a new one under the "reject" drift policy, is stopped
and reported; the job then fails after committing the other files.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame
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
    BLOCKS_SCHEMA,
    align_columns,
    line_blocks,
    number_lines,
    parse_delimited,
    parse_json_lines,
)
from contactlake.ingest.sources import SourceSpec, load_sources
from contactlake.lake import CommitResult
from contactlake.runner import JobContext, run_job

JOB = "ingest"
REGISTRY = "ops/ingested_files"
# Bronze columns are raw text, mostly ids, times and whole lines that never repeat: Parquet
# would try a dictionary for each and fall back to plain (a quarter of the write's time at
# 8.5M billing rows, for files 12% smaller). Only the lineage that repeats keeps one.
BRONZE_PARQUET = {
    "parquet.enable.dictionary": "false",
    "parquet.enable.dictionary#_file": "true",
    "parquet.enable.dictionary#_batch_id": "true",
}


class IngestError(RuntimeError):
    pass


def _registered(ctx: JobContext, source: str) -> dict[str, str]:
    """path -> checksum of the files of ``source`` already ingested."""
    if not ctx.lake.exists(REGISTRY):
        return {}
    rows = ctx.lake.read(REGISTRY).where(F.col("source") == source).select("path", "checksum")
    return {r.path: r.checksum for r in rows.collect()}


def _json_layouts(blocks: list) -> dict[str, list[str]]:
    """Keys of each JSON-lines file, from its splits' :func:`line_blocks` rows (sorted, so
    new columns are added in the same order on every run)."""
    found: dict[str, set[str]] = {}
    for row in blocks:
        found.setdefault(row._file, set()).update(row._keys or [])
    return {path: sorted(keys) for path, keys in found.items()}


def _csv_layouts(landing: Landing, spec: SourceSpec, files: list[LandedFile]):
    return {
        f.path: next(csv.reader([landing.first_line(f.path)], delimiter=spec.delimiter))
        for f in files
    }


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


def _accept(
    spec: SourceSpec,
    files: list[LandedFile],
    layouts: dict[str, list[str]],
    known: list[str],
    stopped: list[str],
) -> list[LandedFile]:
    """The files whose layout can be ingested; the others' reasons go to ``stopped``."""
    accepted = []
    for f in files:
        problem = _check_layout(spec, layouts[f.path], known)
        if problem:
            stopped.append(f"{f.path}: {problem}")
        else:
            accepted.append(f)
    return accepted


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
    # Files are read in groups: CSV files per header layout (their columns are positional),
    # JSON and Parquet files all together (read by name). Each group's lines are counted
    # per file split in one pass, collected, and every later pass over the same group
    # numbers its lines from those counts (same files, so Spark splits them the same way).
    if spec.format == "csv":
        layouts = _csv_layouts(landing, spec, new)
        accepted = _accept(spec, new, layouts, known, stopped)
        groups: dict[tuple, list[str]] = {}
        for f in accepted:
            groups.setdefault(tuple(layouts[f.path]), []).append(f.path)
    else:
        groups = {(): [f.path for f in new]}
    read = landing.read_parquet_rows if spec.format == "parquet" else landing.read_lines
    block_rows = []
    with ctx.stage(f"{spec.name}: count lines") as info:
        for paths in groups.values():
            lines = read(ctx.spark, paths)
            block_rows += line_blocks(lines, json_keys=spec.format == "jsonl").collect()
        info["rows"] = sum(r._n for r in block_rows)
    if spec.format == "jsonl":
        layouts = {f.path: [] for f in new} | _json_layouts(block_rows)
        accepted = _accept(spec, new, layouts, known, stopped)
    elif spec.format == "parquet":
        layouts = {f.path: ctx.spark.read.parquet(landing.spark_path(f.path)).columns for f in new}
        accepted = _accept(spec, new, layouts, known, stopped)
    if not accepted:
        return stopped
    columns = known + [c for f in accepted for c in layouts[f.path] if c not in known]
    columns = list(dict.fromkeys(columns))
    header_lines = 1 if spec.format == "csv" else 0
    landed = {f.path: -header_lines for f in accepted}
    for r in block_rows:
        if r._file in landed:
            landed[r._file] += r._n
    landed = {path: max(0, n) for path, n in landed.items()}
    blocks = ctx.spark.createDataFrame(block_rows, BLOCKS_SCHEMA)

    batch_id = hashlib.sha256(
        "|".join(f"{f.path}:{f.checksum}" for f in accepted).encode()
    ).hexdigest()[:16]
    app_id = f"{JOB}/{spec.name}/{batch_id}"
    ingested_at = F.lit(datetime.now(UTC)).cast("timestamp")

    parts = []
    for layout, paths in groups.items():
        lines = number_lines(read(ctx.spark, paths), blocks)
        if len(accepted) < len(paths):  # JSON or Parquet files stopped by their layout
            lines = lines.where(F.col("_file").isin([f.path for f in accepted]))
        if spec.format == "parquet":
            parsed = lines.withColumn("_reason", F.lit(None).cast("string")).withColumn(
                "_detail", F.lit(None).cast("string")
            )
        elif spec.format == "csv":
            lines = lines.where(F.col("_line") > 1)  # the header
            parsed = parse_delimited(lines, list(layout), spec.delimiter)
        else:
            parsed = parse_json_lines(lines, columns)
        parts.append(
            align_columns(parsed, [*columns, "value", "_file", "_line", "_reason", "_detail"])
        )
    parsed = parts[0]
    for part in parts[1:]:
        parsed = parsed.unionByName(part)

    # Not cached: bronze is one pass over the files; quarantine another, in which Spark
    # prunes the column parsing and keeps only what finds the rejected lines.
    with ctx.stage(f"{spec.name}: parse and write bronze and quarantine") as info:
        bronze, quarantined, written = _write_batch(
            ctx,
            spec.name,
            bronze_rows(parsed, columns, batch_id, ingested_at),
            quarantine_rows(parsed, "ingest", batch_id, ingested_at),
            landed,
            batch_id,
            app_id,
        )
        info["rows"] = sum(bronze.values())

    good, bad = sum(bronze.values()), sum(quarantined.values())
    if not written.skipped and written.rows_added != good:
        raise IngestError(f"{table}: committed {written.rows_added} rows, staged {good}")
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
                "rows_landed": landed[f.path],
                "rows_bronze": bronze.get(f.path, 0),
                "rows_quarantined": quarantined.get(f.path, 0),
                "ingested_at": now,
            }
            for f in accepted
        ],
        INGESTED_FILES_SCHEMA,
        app_id=app_id,
    )
    total = sum(landed.values())
    ctx.rows_in += total
    ctx.rows_out += good
    ctx.rows_rejected += bad
    ctx.log.info(
        "%s %s: %d files, %d lines -> bronze %d + quarantine %d",
        spec.name,
        day,
        len(accepted),
        total,
        good,
        bad,
    )
    return stopped


def _write_batch(
    ctx: JobContext,
    source: str,
    bronze: DataFrame,
    rejected: DataFrame,
    landed: dict[str, int],
    batch_id: str,
    app_id: str,
) -> tuple[dict[str, int], dict[str, int], CommitResult]:
    """Write one batch to ``bronze/<source>`` and ``quarantine/<source>``, every landed
    line accounted for before bronze is committed.

    Quarantine is written inside bronze's check, once bronze's staged files passed the
    quality gate and were counted: a failed gate commits neither table, and a line missing
    from both stops the job before bronze is committed.

    Returns:
        (bronze rows per file, quarantined rows per file, bronze's commit).
    """
    table, quarantine = f"bronze/{source}", f"quarantine/{source}"
    counts: dict[str, dict[str, int]] = {}

    def per_file(rows: DataFrame) -> dict[str, int]:
        return {r._file: r.rows for r in rows_by_file(rows).collect()}

    def of_batch(name: str) -> DataFrame:
        """What an earlier, interrupted run of this batch committed to ``name``."""
        return ctx.lake.read(name).where(F.col("_batch_id") == batch_id)

    def check_quarantine(staged: DataFrame) -> None:
        counts["quarantined"] = per_file(staged)
        _check_counts(landed, counts["bronze"], counts["quarantined"])

    def write_quarantine() -> None:
        result = ctx.lake.write(
            rejected.select(*QUARANTINE_SCHEMA.fieldNames()),
            quarantine,
            partition_by=["_landing_date"],
            app_id=app_id,
            check=check_quarantine,
        )
        if result.skipped:
            check_quarantine(of_batch(quarantine))

    def check_bronze(staged: DataFrame) -> None:  # after bronze's quality gate
        counts["bronze"] = per_file(staged)
        write_quarantine()

    written = ctx.write_checked(
        bronze,
        table,
        partition_by=["_landing_date"],
        evolve_schema=True,
        app_id=app_id,
        check=check_bronze,
        options=BRONZE_PARQUET,
    )
    if written.skipped:
        counts["bronze"] = per_file(of_batch(table))
        write_quarantine()
    return counts["bronze"], counts["quarantined"], written


def _check_counts(
    landed: dict[str, int], bronze: dict[str, int], quarantined: dict[str, int]
) -> None:
    """Every landed line of every file is in bronze or in quarantine, else IngestError."""
    wrong = [
        f"{path}: {n} lines landed, {bronze.get(path, 0)} in bronze + "
        f"{quarantined.get(path, 0)} in quarantine"
        for path, n in sorted(landed.items())
        if bronze.get(path, 0) + quarantined.get(path, 0) != n
    ]
    unknown = sorted((set(bronze) | set(quarantined)) - set(landed))
    if wrong or unknown:
        raise IngestError(f"rows not accounted for: {'; '.join(wrong + unknown)[:2000]}")


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
