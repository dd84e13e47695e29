"""Data-file handling of the commit path: which files count, paths, footers, nullability."""

from __future__ import annotations

import json
import multiprocessing

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql.types import LongType, StringType, StructField, StructType

from contactlake.lake import InvalidDataFileError, Lake, PartitionMismatchError
from contactlake.lake.files import describe_files, is_data_file, partition_values_from_path


@pytest.mark.parametrize(
    ("path", "counts"),
    [
        ("part-00000-abc.c000.snappy.parquet", True),
        ("day=2026-01-01/part-00000.parquet", True),
        ("_SUCCESS", False),
        (".part-00000.parquet.crc", False),
        ("day=2026-01-01/.part-00000.parquet.crc", False),
        ("_temporary/0/task/part-00000.parquet", False),
        ("_landing_date=2026-01-01/part-00000.parquet", True),
        (".hidden/part-00000.parquet", False),
        ("_delta_log/00000000000000000000.json", False),
        ("part-00000.csv", False),
    ],
)
def test_only_parquet_data_files_are_committed(path, counts):
    assert is_data_file(path) is counts


def test_partition_values_are_unescaped_and_checked():
    values = partition_values_from_path(
        "city=a%2Fb%3Dc/day=__HIVE_DEFAULT_PARTITION__/part-0.parquet", ["city", "day"]
    )
    assert values == {"city": "a/b=c", "day": None}
    with pytest.raises(PartitionMismatchError, match="is not day="):
        partition_values_from_path("city=x/hour=1/part-0.parquet", ["city", "day"])
    with pytest.raises(PartitionMismatchError, match="expected partition directories"):
        partition_values_from_path("part-0.parquet", ["city"])


def test_missing_or_corrupt_files_are_refused(tmp_path):
    fs = pafs.LocalFileSystem()
    with pytest.raises(InvalidDataFileError, match="does not exist"):
        describe_files(fs, str(tmp_path), ["part-0.parquet"], [], 32)
    (tmp_path / "part-1.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InvalidDataFileError, match="not readable Parquet"):
        describe_files(fs, str(tmp_path), ["part-1.parquet"], [], 32)


def test_int96_footer_is_refused(tmp_path):
    table = pa.table({"ts": pa.array([0], pa.timestamp("us", tz="UTC"))})
    pq.write_table(table, tmp_path / "part-0.parquet", use_deprecated_int96_timestamps=True)
    with pytest.raises(InvalidDataFileError, match="INT96"):
        describe_files(pafs.LocalFileSystem(), str(tmp_path), ["part-0.parquet"], [], 32)


def test_not_null_columns_are_committed_nullable(spark, lake):
    strict = StructType(
        [StructField("id", LongType(), nullable=False), StructField("s", StringType(), False)]
    )
    lake.write(spark.createDataFrame([(1, "a")], strict), "silver/n")
    fields = json.loads(DeltaTable(lake.uri("silver/n")).schema().to_json())["fields"]
    assert [(f["name"], f["nullable"]) for f in fields] == [("id", True), ("s", True)]
    # and a later write with a nullable schema is the same schema, not a mismatch
    lake.write(spark.createDataFrame([(2, None)], "id long, s string"), "silver/n")
    assert lake.read("silver/n").count() == 2


def _append_in_child(root: str) -> None:
    schema = StructType([StructField("id", LongType())])
    Lake(root).append_rows("ops/child", [{"id": 7}], schema)


def test_commits_from_a_spawned_child_after_the_parent_used_delta_rs(tmp_path):
    """delta-rs must not be used in a forked child once the parent used it (it can panic):
    the layer itself only uses threads, and children are started with spawn."""
    root = str(tmp_path / "lake")
    schema = StructType([StructField("id", LongType())])
    Lake(root).append_rows("ops/child", [{"id": 1}], schema)  # parent has used delta-rs
    child = multiprocessing.get_context("spawn").Process(target=_append_in_child, args=(root,))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    ids = DeltaTable(f"{root}/ops/child").to_pyarrow_table().column("id").to_pylist()
    assert sorted(ids) == [1, 7]
