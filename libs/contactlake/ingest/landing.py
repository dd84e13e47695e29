"""Reading the landing area: files per source and date, checksums, headers, raw lines.

I/O helpers for jobs.ingest (the transforms in parse.py never touch files).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import pyarrow.fs as pafs
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

CHUNK = 8 << 20


@dataclass(frozen=True)
class LandedFile:
    """A file in ``landing/<source>/<date>/``; ``path`` is relative to the landing root."""

    path: str
    size: int
    checksum: str
    landing_date: date


class Landing:
    """The landing root (a local path or a URI pyarrow understands)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, base = pafs.FileSystem.from_uri(self.root)
        self.base = base.rstrip("/")
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    def full_path(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def spark_path(self, rel: str) -> str:
        return f"file://{self.full_path(rel)}" if self.is_local else f"{self.root}/{rel}"

    def files(self, source: str, first_day: date, last_day: date) -> list[LandedFile]:
        """Data files of one source in the date folders from ``first_day`` to ``last_day``,
        sorted, with their sha256 (hidden files and Spark/Hadoop markers skipped)."""
        found = []
        source_dir = pafs.FileSelector(f"{self.base}/{source}", allow_not_found=True)
        for folder in self.fs.get_file_info(source_dir):
            try:
                day = date.fromisoformat(folder.base_name)
            except ValueError:
                continue  # not a date folder
            if folder.type != pafs.FileType.Directory or not first_day <= day <= last_day:
                continue
            for info in self.fs.get_file_info(pafs.FileSelector(folder.path)):
                name = info.base_name
                if info.type != pafs.FileType.File or name.startswith(("_", ".")):
                    continue
                rel = info.path[len(self.base) + 1 :]
                found.append(LandedFile(rel, info.size, self.checksum(rel), day))
        return sorted(found, key=lambda f: f.path)

    def checksum(self, rel: str) -> str:
        digest = hashlib.sha256()
        with self.fs.open_input_stream(self.full_path(rel)) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def first_line(self, rel: str) -> str:
        """The header line of a delimited file (BOM stripped, decoded as UTF-8)."""
        with self.fs.open_input_stream(self.full_path(rel)) as stream:
            head = b""
            while b"\n" not in head:
                chunk = stream.read(64 << 10)
                if not chunk:
                    break
                head += chunk
        return head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", errors="replace")

    def _relative(self) -> Column:
        """``_metadata.file_path`` (``file:/x/...`` or ``s3://b/x/...``) relative to the root.

        A substring after the root's path, not a regular expression: it runs on every row.
        """
        path = F.col("_metadata.file_path")
        root = self.base.lstrip("/") + "/"
        return F.substring(path, F.instr(path, root) + len(root), 1 << 30)

    def read_lines(self, spark: SparkSession, rels: list[str]) -> DataFrame:
        """Lines of text files: ``value``, ``_file`` (relative path), ``_block``, ``_mid``."""
        return spark.read.text([self.spark_path(r) for r in rels]).select(
            F.col("value"),
            self._relative().alias("_file"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_mid"),
        )

    def read_parquet_rows(self, spark: SparkSession, rels: list[str]) -> DataFrame:
        """Rows of Parquet files with ``value`` (the row as JSON), ``_file``, ``_block``, ``_mid``."""
        df = spark.read.parquet(*[self.spark_path(r) for r in rels])
        return df.select(
            *[F.col(c).cast("string").alias(c) for c in df.columns],
            F.to_json(F.struct(*df.columns)).alias("value"),
            self._relative().alias("_file"),
            F.col("_metadata.file_block_start").alias("_block"),
            F.monotonically_increasing_id().alias("_mid"),
        )
