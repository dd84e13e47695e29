"""The lake: Delta tables written by Spark's Parquet writer and committed with delta-rs.

A write stages Parquet files under ``<table>/_staging/<write id>/`` (hidden from Delta
readers and vacuum), checks them, moves them into the table root and commits them in one
Delta transaction. A process killed before the commit leaves the table at its previous
version; the moved files are orphans that :meth:`Lake.vacuum` removes.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from datetime import datetime

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DateType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
)

from contactlake.config import LakeConfig
from contactlake.lake.commit import (
    CommitResult,
    PartitionSpec,
    commit_files,
    nullable_schema,
    open_table,
    reconcile_schema,
    select_files,
    snapshot_files,
    table_lock,
    table_schema_json,
)
from contactlake.lake.errors import (
    LakeError,
    PartitionMismatchError,
    TableNotFoundError,
    UnsupportedTableError,
)
from contactlake.lake.files import describe_files, is_data_file

PARTITION_TYPES = (StringType, DateType, IntegerType, LongType, ShortType, ByteType, BooleanType)
STAGING = "_staging"
# Reader features whose semantics a plain Parquet read would get wrong.
UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping", "v2Checkpoint"}


class Lake:
    """Delta tables under ``root``, named ``"<layer>/<name>"`` (e.g. ``"silver/contacts"``).

    Every read and write records the table version in :attr:`reads` / :attr:`writes`, so
    a job can log exactly which snapshots it used.
    """

    def __init__(
        self,
        root: str,
        spark: SparkSession | None = None,
        *,
        lock_timeout_s: float = 900,
        vacuum_retention_hours: int = 168,
        optimize_target_mb: int = 128,
        stats_max_string_length: int = 32,
    ) -> None:
        self.root = root.rstrip("/")
        self.spark = spark
        self.lock_timeout_s = lock_timeout_s
        self.vacuum_retention_hours = vacuum_retention_hours
        self.optimize_target_mb = optimize_target_mb
        self.stats_max_string_length = stats_max_string_length
        self.fs, self._fs_root = pafs.FileSystem.from_uri(self.root)
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)
        self.reads: dict[str, int] = {}
        self.writes: dict[str, int] = {}

    @classmethod
    def from_config(cls, conf: LakeConfig, spark: SparkSession | None) -> Lake:
        return cls(
            conf.root,
            spark,
            lock_timeout_s=conf.lock_timeout_s,
            vacuum_retention_hours=conf.vacuum_retention_hours,
            optimize_target_mb=conf.optimize_target_mb,
            stats_max_string_length=conf.stats_max_string_length,
        )

    # ------------------------------------------------------------ naming
    @staticmethod
    def _check_name(table: str) -> str:
        parts = table.split("/")
        if len(parts) != 2 or not all(parts) or any(p.startswith(("_", ".")) for p in parts):
            raise LakeError(f"table name {table!r} must be '<layer>/<name>'")
        return table

    def uri(self, table: str) -> str:
        """Location of a table, as delta-rs and pyarrow take it."""
        return f"{self.root}/{self._check_name(table)}"

    def _fs_path(self, table: str) -> str:
        return f"{self._fs_root.rstrip('/')}/{self._check_name(table)}"

    def _spark_path(self, fs_path: str) -> str:
        return "file://" + fs_path if self.is_local else fs_path

    def _lock(self, table: str):
        lock_dir = f"{self._fs_root}/_locks" if self.is_local else "/tmp/contactlake-locks"
        return table_lock(lock_dir, f"{self.root}/{table}", self.lock_timeout_s)

    def _session(self) -> SparkSession:
        if self.spark is None:
            raise LakeError("this Lake was built without a SparkSession")
        return self.spark

    # ------------------------------------------------------------ metadata
    def exists(self, table: str) -> bool:
        return open_table(self.uri(table)) is not None

    def _open(self, table: str, version: int | None = None, timestamp=None):
        dt = open_table(self.uri(table), version=version, timestamp=timestamp)
        if dt is None:
            raise TableNotFoundError(f"{table}: no Delta table at {self.uri(table)}")
        return dt

    def version(self, table: str) -> int | None:
        dt = open_table(self.uri(table))
        return None if dt is None else dt.version()

    def schema(self, table: str, version: int | None = None) -> StructType:
        return StructType.fromJson(table_schema_json(self._open(table, version)))

    def partition_columns(self, table: str) -> list[str]:
        return list(self._open(table).metadata().partition_columns)

    def history(self, table: str, limit: int | None = None) -> list[dict]:
        """Commits newest first, as delta-rs reports them (version, timestamp, operation...)."""
        return self._open(table).history(limit)

    def tables(self) -> list[str]:
        """Every Delta table under the root, as ``layer/name``."""
        found = []
        for layer in self.fs.get_file_info(pafs.FileSelector(self._fs_root, allow_not_found=True)):
            if layer.type != pafs.FileType.Directory or layer.base_name.startswith(("_", ".")):
                continue
            for entry in self.fs.get_file_info(pafs.FileSelector(layer.path)):
                log = self.fs.get_file_info(f"{entry.path}/_delta_log")
                if log.type == pafs.FileType.Directory:
                    found.append(f"{layer.base_name}/{entry.base_name}")
        return sorted(found)

    # ------------------------------------------------------------ read
    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        partitions: list[tuple[str, str, object]] | None = None,
    ) -> DataFrame:
        """The table at the latest version, a version, or a timestamp, as a Spark DataFrame.

        Files come from the Delta log (delta-rs); Spark reads them with its Parquet reader
        and the schema of the log. ``partitions`` prunes files, delta-rs filter syntax:
        ``[("contact_date", "=", "2026-01-01")]``.
        """
        dt = self._open(table, version, timestamp)
        protocol = dt.protocol()
        unsupported = UNSUPPORTED_READER_FEATURES & set(protocol.reader_features or [])
        if unsupported or protocol.min_reader_version > 3:
            raise UnsupportedTableError(
                f"{table}: uses reader features {sorted(unsupported) or protocol.min_reader_version}"
            )
        self.reads[table] = dt.version()
        return self._spark_read(table, dt, dt.file_uris(file_pruning_predicate=partitions))

    # ------------------------------------------------------------ write
    def write(
        self,
        df: DataFrame,
        table: str,
        *,
        mode: str = "append",
        partition_by: list[str] | None = None,
        replace_where: dict[str, list] | None = None,
        replace_partitions: bool = False,
        evolve_schema: bool = False,
        app_id: str | None = None,
        check: Callable[[DataFrame], None] | None = None,
        options: dict[str, str] | None = None,
    ) -> CommitResult:
        """Write a DataFrame as one Delta commit.

        Args:
            mode: "append" or "overwrite". Overwrite replaces the whole table, or with
                ``replace_where`` (partition column -> values) those partitions only, or
                with ``replace_partitions`` the partitions present in ``df``.
            partition_by: partition columns; must equal the table's once it exists.
            evolve_schema: allow new nullable columns (the only evolution allowed).
            app_id: idempotency key, e.g. ``"ingest/2026-01-01"``. An append already
                committed under this id is skipped; an overwrite replaces cleanly.
            check: called with the written rows, read back from the staged Parquet files,
                before anything is committed (e.g. a quality gate); when it raises, the
                files are removed and the table is left as it was. Reading the files back
                costs a narrow columnar scan, where checking ``df`` would compute it twice
                or need it cached.
            options: Parquet writer options, e.g. ``{"parquet.enable.dictionary": "false"}``.
        """
        if mode not in ("append", "overwrite"):
            raise LakeError(f"{table}: mode must be 'append' or 'overwrite', not {mode!r}")
        if mode == "append" and (replace_where or replace_partitions):
            raise LakeError(f"{table}: replace_where/replace_partitions need mode='overwrite'")
        partition_by = list(partition_by or [])
        self._check_partition_types(table, df.schema, partition_by)
        if mode == "append":
            current = open_table(self.uri(table))
            if app_id and current is not None and current.transaction_version(app_id) is not None:
                return CommitResult(table, current.version(), skipped=True)
            self._precheck(table, current, df.schema, partition_by, evolve_schema)
            files = self._stage(df, table, partition_by, check, options)
            with self._lock(table):
                result = commit_files(
                    self.uri(table),
                    table,
                    files,
                    df.schema.jsonValue(),
                    partition_by,
                    app_id=app_id,
                    evolve_schema=evolve_schema,
                    operation="WRITE",
                )
            return self._record(result)
        with self._lock(table):
            current = open_table(self.uri(table))
            self._precheck(table, current, df.schema, partition_by, evolve_schema)
            files = self._stage(df, table, partition_by, check, options)
            replace = self._replace_spec(
                table, files, partition_by, replace_where, replace_partitions
            )
            result = commit_files(
                self.uri(table),
                table,
                files,
                df.schema.jsonValue(),
                partition_by,
                replace=replace,
                snapshot_version=None if current is None else current.version(),
                app_id=app_id,
                evolve_schema=evolve_schema,
                operation="OVERWRITE",
            )
        return self._record(result)

    def merge(
        self,
        df: DataFrame,
        table: str,
        *,
        keys: list[str],
        partition_by: list[str] | None = None,
        evolve_schema: bool = False,
        app_id: str | None = None,
    ) -> CommitResult:
        """Upsert ``df`` into ``table`` on ``keys``: matching rows are replaced, others added.

        Spark computes the merge over the touched partitions only (all of an unpartitioned
        table); the commit removes their old files and adds the new ones atomically. Keys
        must include the partition columns, and ``df`` must not repeat a key.

        Raises:
            LakeError: duplicate keys in ``df`` (as Delta MERGE does), bad keys.
        """
        partition_by = list(partition_by or [])
        missing = [c for c in keys + partition_by if c not in df.columns]
        if missing or not keys:
            raise LakeError(
                f"{table}: merge keys {keys} / partitions {partition_by}: missing {missing}"
            )
        if not set(partition_by) <= set(keys):
            raise LakeError(
                f"{table}: merge keys {keys} must include partition columns {partition_by}"
            )
        duplicate = df.groupBy(*keys).count().where("count > 1").limit(1).collect()
        if duplicate:
            raise LakeError(f"{table}: merge source repeats key {duplicate[0].asDict()}")
        with self._lock(table):
            current = open_table(self.uri(table))
            if current is None:
                files = self._stage(df, table, partition_by)
                result = commit_files(
                    self.uri(table),
                    table,
                    files,
                    df.schema.jsonValue(),
                    partition_by,
                    app_id=app_id,
                    operation="MERGE",
                )
                return self._record(result)
            self._precheck(table, current, df.schema, partition_by, evolve_schema)
            touched: list[PartitionSpec] | str = "all"
            if partition_by:
                rows = df.select(*partition_by).distinct().collect()
                touched = [self._partition_spec(r.asDict(), df.schema) for r in rows]
            paths = [p for p, _, _ in select_files(snapshot_files(current), touched)]
            target = self._spark_read(
                table, current, [f"{self._fs_path(table)}/{p}" for p in paths]
            )
            source = df
            if evolve_schema:
                for name in target.columns:
                    if name not in source.columns:
                        source = source.withColumn(
                            name, F.lit(None).cast(target.schema[name].dataType)
                        )
            else:
                source = source.select(*target.columns)
            for field in source.schema:
                if field.name not in target.columns:
                    target = target.withColumn(field.name, F.lit(None).cast(field.dataType))
            merged = target.join(source.select(*keys), keys, "left_anti").unionByName(source)
            files = self._stage(merged.select(*source.columns), table, partition_by)
            result = commit_files(
                self.uri(table),
                table,
                files,
                source.schema.jsonValue(),
                partition_by,
                replace=touched,
                snapshot_version=current.version(),
                app_id=app_id,
                evolve_schema=evolve_schema,
                operation="MERGE",
            )
        return self._record(result)

    def append_rows(
        self, table: str, rows: list[dict], schema: StructType, *, app_id: str | None = None
    ) -> CommitResult:
        """Append a few driver-side rows (bookkeeping tables) without a Spark job.

        Written with pyarrow and committed exactly like Spark writes; unpartitioned only.
        """
        current = open_table(self.uri(table))
        if app_id and current is not None and current.transaction_version(app_id) is not None:
            return CommitResult(table, current.version(), skipped=True)
        self._precheck(table, current, schema, [], False)
        arrow_schema = to_arrow_schema(schema, timezone="UTC")
        data = pa.Table.from_pylist(rows, schema=arrow_schema)
        rel = f"part-{uuid.uuid4().hex}.snappy.parquet"
        staging = f"{self._fs_path(table)}/{STAGING}/{uuid.uuid4().hex}"
        self.fs.create_dir(staging, recursive=True)
        pq.write_table(
            data,
            f"{staging}/{rel}",
            filesystem=self.fs,
            compression="snappy",
            coerce_timestamps="us",
            use_deprecated_int96_timestamps=False,
        )
        files = self._publish(table, staging, [rel], [])
        with self._lock(table):
            result = commit_files(
                self.uri(table),
                table,
                files,
                schema.jsonValue(),
                [],
                app_id=app_id,
                operation="WRITE",
            )
        return self._record(result)

    # ------------------------------------------------------------ maintenance
    def optimize(self, table: str, target_mb: int | None = None) -> dict:
        """Compact small files (delta-rs OPTIMIZE); data unchanged, a new version."""
        with self._lock(table):
            dt = self._open(table)
            metrics = dt.optimize.compact(target_size=(target_mb or self.optimize_target_mb) << 20)
        return metrics

    def vacuum(
        self,
        table: str,
        retention_hours: int | None = None,
        *,
        dry_run: bool = False,
        enforce_retention: bool = True,
    ) -> list[str]:
        """Delete files no version within the retention needs: removed files, orphans of
        killed writes (full vacuum) and stale staging folders."""
        hours = self.vacuum_retention_hours if retention_hours is None else retention_hours
        with self._lock(table):
            dt = self._open(table)
            deleted = dt.vacuum(
                retention_hours=hours,
                dry_run=dry_run,
                enforce_retention_duration=enforce_retention,
                full=True,
            )
            deleted += self._clean_staging(table, hours, dry_run)
        return deleted

    def restore(self, table: str, version: int | str | datetime) -> dict:
        """Make an earlier version the latest again (a new commit; history kept)."""
        with self._lock(table):
            return self._open(table).restore(version)

    # ------------------------------------------------------------ internals
    def _record(self, result: CommitResult) -> CommitResult:
        self.writes[result.table] = result.version
        return result

    @staticmethod
    def _check_partition_types(table: str, schema: StructType, partition_by: list[str]) -> None:
        for name in partition_by:
            if name not in schema.fieldNames():
                raise PartitionMismatchError(f"{table}: partition column {name!r} not in data")
            if not isinstance(schema[name].dataType, PARTITION_TYPES):
                raise PartitionMismatchError(
                    f"{table}: cannot partition by {name} of type {schema[name].dataType.simpleString()}"
                    " (use a string, date, integer or boolean column)"
                )

    def _precheck(self, table, current, schema: StructType, partition_by, evolve) -> None:
        """Fail before any Spark work when the write cannot commit (checked again at commit)."""
        if current is None:
            return
        existing = list(current.metadata().partition_columns)
        if existing != partition_by:
            raise PartitionMismatchError(
                f"{table}: partitioned by {existing}, write asked for {partition_by}"
            )
        reconcile_schema(
            table, table_schema_json(current), nullable_schema(schema.jsonValue()), evolve
        )

    def _stage(
        self,
        df: DataFrame,
        table: str,
        partition_by: list[str],
        check: Callable[[DataFrame], None] | None = None,
        options: dict[str, str] | None = None,
    ):
        table_path = self._fs_path(table)
        staging = f"{table_path}/{STAGING}/{uuid.uuid4().hex}"
        writer = df.write.mode("errorifexists").options(**(options or {}))
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(self._spark_path(staging))
        if check is not None:
            # the schema types the partition columns (from the folder names) as written
            staged = df.sparkSession.read.schema(df.schema).parquet(self._spark_path(staging))
            try:
                check(staged)
            except BaseException:
                self.fs.delete_dir(staging)
                raise
        listing = self.fs.get_file_info(pafs.FileSelector(staging, recursive=True))
        written = [i.path[len(staging) + 1 :] for i in listing if i.type == pafs.FileType.File]
        rels = sorted(r for r in written if is_data_file(r))
        skipped = [r for r in written if r.endswith(".parquet") and r not in rels]
        if skipped:  # never drop rows silently: a Parquet file we would not commit is an error
            self.fs.delete_dir(staging)
            raise LakeError(f"{table}: Spark wrote files the layer would not commit: {skipped[:3]}")
        return self._publish(table, staging, rels, partition_by)

    def _publish(self, table: str, staging: str, rels: list[str], partition_by: list[str]):
        """Validate staged files, then move them into the table root (not yet committed)."""
        table_path = self._fs_path(table)
        try:
            files = describe_files(
                self.fs, staging, rels, partition_by, self.stats_max_string_length
            )
        except Exception:
            self.fs.delete_dir(staging)
            raise
        # Spark writes a file for every task, empty ones included: those are not committed.
        files = [f for f in files if f.num_records > 0]
        for f in files:
            parent = f"{table_path}/{f.path}".rsplit("/", 1)[0]
            self.fs.create_dir(parent, recursive=True)
            self.fs.move(f"{staging}/{f.path}", f"{table_path}/{f.path}")
        self.fs.delete_dir(staging)
        return files

    @staticmethod
    def _partition_spec(values: dict, schema: StructType) -> PartitionSpec:
        """Delta's string form of partition values (dates ISO, booleans lower case)."""
        spec: PartitionSpec = {}
        for name, value in values.items():
            if value is None:
                spec[name] = None
            elif isinstance(value, bool):
                spec[name] = str(value).lower()
            elif isinstance(schema[name].dataType, DateType):
                spec[name] = value.isoformat()
            else:
                spec[name] = str(value)
        return spec

    def _replace_spec(self, table, files, partition_by, replace_where, replace_partitions):
        if not replace_where and not replace_partitions:
            return "all"
        if not partition_by:
            raise LakeError(f"{table}: replace_where/replace_partitions need a partitioned table")
        if replace_partitions:
            specs = {json.dumps(f.partition_values, sort_keys=True) for f in files}
            return [json.loads(s) for s in specs]
        unknown = set(replace_where) - set(partition_by)
        if unknown:
            raise LakeError(f"{table}: replace_where on non-partition columns {sorted(unknown)}")
        allowed = {
            c: {None if v is None else str(v) for v in vals} for c, vals in replace_where.items()
        }
        for f in files:
            if not all(f.partition_values.get(c) in vals for c, vals in allowed.items()):
                raise LakeError(
                    f"{table}: rows in partition {f.partition_values} are outside replace_where {replace_where}"
                )
        keys = list(allowed)
        combos = itertools.product(*(sorted(allowed[k], key=str) for k in keys))
        return [dict(zip(keys, combo, strict=True)) for combo in combos]

    def _spark_read(self, table: str, dt, file_paths: list[str]) -> DataFrame:
        """Spark's Parquet reader over these files of a snapshot, with the log's schema."""
        schema = StructType.fromJson(table_schema_json(dt))
        if not file_paths:
            return self._session().createDataFrame([], schema)
        reader = self._session().read.schema(schema)
        if dt.metadata().partition_columns:
            # Partition values come from the hive-style directories (what Spark, delta-spark
            # and delta-rs all write), typed by the Delta schema.
            reader = reader.option("basePath", self._spark_path(self._fs_path(table)))
        paths = [self._spark_path(p) for p in file_paths] if self.is_local else file_paths
        return reader.parquet(*paths).select(*schema.fieldNames())

    def _clean_staging(self, table: str, hours: int, dry_run: bool) -> list[str]:
        staging_root = f"{self._fs_path(table)}/{STAGING}"
        cutoff = datetime.now().timestamp() - hours * 3600
        removed = []
        for info in self.fs.get_file_info(pafs.FileSelector(staging_root, allow_not_found=True)):
            if info.mtime is not None and info.mtime.timestamp() <= cutoff:
                removed.append(info.path)
                if not dry_run:
                    self.fs.delete_dir(info.path)
        return removed
