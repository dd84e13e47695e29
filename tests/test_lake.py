"""The Delta layer: real Spark writes, real delta-rs commits, tables on disk in tmp_path."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chispa import assert_df_equality
from deltalake import DeltaTable
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from contactlake.lake import (
    ConcurrentWriteError,
    InvalidDataFileError,
    LakeError,
    PartitionMismatchError,
    SchemaMismatchError,
)
from contactlake.lake.commit import commit_files, table_lock
from contactlake.lake.errors import LockTimeoutError

SCHEMA = StructType(
    [
        StructField("id", LongType()),
        StructField("city", StringType()),
        StructField("ts", TimestampType()),
        StructField("day", DateType()),
    ]
)
# Values a naive layer gets wrong: hive-escaped characters, unicode, glob characters,
# null partitions, timestamps outside the pandas nanosecond range.
ROWS = [
    (1, "a/b", datetime(1800, 1, 1, tzinfo=UTC), date(1800, 1, 1)),
    (2, "x=y ü%", datetime(2300, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), date(2300, 6, 1)),
    (3, None, None, None),
    (4, "[b]{c}?*#", datetime(2020, 1, 1, tzinfo=UTC), date(2020, 1, 1)),
    (5, "空 格", datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), date(1969, 12, 31)),
]


def _df(spark, rows, schema=SCHEMA):
    return spark.createDataFrame(rows, schema)


def _delta_rs_rows(path, version=None) -> list[tuple]:
    table = DeltaTable(path, version=version).to_pyarrow_table().sort_by("id")
    names = table.column_names
    return [tuple(r[n] for n in names) for r in table.to_pylist()]


def _spark_rows(df) -> list[tuple]:
    return [tuple(r) for r in df.orderBy("id").collect()]


def _as_utc(rows):
    return [tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in r) for r in rows]


def test_written_table_reads_the_same_in_spark_and_delta_rs(spark, lake):
    lake.write(_df(spark, ROWS), "silver/t", partition_by=["city"])

    expected = sorted(ROWS, key=lambda r: r[0])
    path = lake.uri("silver/t")
    assert _as_utc(_delta_rs_rows(path)) == expected
    got = lake.read("silver/t")
    assert got.columns == ["id", "city", "ts", "day"]
    assert _as_utc(_spark_rows(got)) == expected


def test_polars_reads_the_table(spark, lake):
    pl = pytest.importorskip("polars")
    lake.write(_df(spark, ROWS), "silver/t", partition_by=["city"])
    frame = pl.read_delta(lake.uri("silver/t")).sort("id")
    assert frame["id"].to_list() == [1, 2, 3, 4, 5]
    assert frame["city"].to_list() == [r[1] for r in ROWS]


def test_time_travel_to_every_version(spark, lake):
    path = lake.uri("silver/t")
    lake.write(_df(spark, ROWS[:2]), "silver/t", partition_by=["city"])  # v0
    lake.write(_df(spark, ROWS[2:3]), "silver/t", partition_by=["city"])  # v1
    lake.write(_df(spark, ROWS[3:]), "silver/t", mode="overwrite", partition_by=["city"])  # v2
    update = [(4, "[b]{c}?*#", None, None), (9, "new", None, None)]
    lake.merge(_df(spark, update), "silver/t", keys=["id", "city"], partition_by=["city"])  # v3

    expected = {
        0: ROWS[:2],
        1: ROWS[:3],
        2: ROWS[3:],
        3: [ROWS[4], update[0], update[1]],
    }
    assert lake.version("silver/t") == 3
    for version, rows in expected.items():
        want = sorted(rows, key=lambda r: r[0])
        assert _as_utc(_spark_rows(lake.read("silver/t", version=version))) == want, version
        assert _as_utc(_delta_rs_rows(path, version)) == want, version


def test_time_travel_by_timestamp(spark, lake):
    lake.write(_df(spark, ROWS[:1]), "silver/t")
    first_commit = lake.history("silver/t")[0]["timestamp"]
    lake.write(_df(spark, ROWS[1:2]), "silver/t")
    as_of = datetime.fromtimestamp(first_commit / 1000, tz=UTC)
    assert [r.id for r in lake.read("silver/t", timestamp=as_of).collect()] == [1]
    assert lake.read("silver/t").count() == 2


def test_stats_from_footers(spark, lake):
    rows = [
        (1, "short", datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), date(2024, 1, 1)),
        (7, "x" * 40, datetime(1850, 3, 4, 5, 6, 7, 891011, tzinfo=UTC), date(1850, 3, 4)),
        (3, None, None, None),
    ]
    lake.write(_df(spark, rows).coalesce(1), "silver/s")
    log = (lake.root + "/silver/s/_delta_log/00000000000000000000.json").removeprefix("file://")
    with open(log) as lines:
        adds = [json.loads(line)["add"] for line in lines if '"add"' in line]
    assert len(adds) == 1
    stats = json.loads(adds[0]["stats"])
    assert stats["numRecords"] == 3
    assert stats["minValues"] == {"id": 1, "ts": "1850-03-04T05:06:07.891Z", "day": "1850-03-04"}
    # the max is rounded up to the next millisecond so data skipping stays safe
    assert stats["maxValues"] == {"id": 7, "ts": "2024-01-01T00:00:00.124Z", "day": "2024-01-01"}
    # a 40-character string gets no min/max (Delta keeps none for long strings)
    assert "city" not in stats["minValues"]
    assert stats["nullCount"] == {"id": 0, "city": 1, "ts": 1, "day": 1}


def test_delta_rs_data_skipping_uses_the_stats(spark, lake):
    old = [(i, "c", datetime(1890, 1, 1, tzinfo=UTC), None) for i in range(3)]
    new = [(i, "c", datetime(2290, 1, 1, tzinfo=UTC), None) for i in range(3, 6)]
    lake.write(_df(spark, old).coalesce(1), "silver/k")
    lake.write(_df(spark, new).coalesce(1), "silver/k")
    dt = DeltaTable(lake.uri("silver/k"))
    table = dt.to_pyarrow_table(filters=[("ts", ">", datetime(2000, 1, 1, tzinfo=UTC))])
    assert sorted(table.column("id").to_pylist()) == [3, 4, 5]


def test_int96_files_are_refused_and_the_table_is_untouched(spark, lake):
    lake.write(_df(spark, ROWS[:1]), "silver/t")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        with pytest.raises(InvalidDataFileError, match="INT96"):
            lake.write(_df(spark, ROWS[1:2]), "silver/t")
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    assert lake.version("silver/t") == 0
    assert [r.id for r in lake.read("silver/t").collect()] == [1]


def test_schema_must_match_unless_adding_nullable_columns(spark, lake):
    lake.write(_df(spark, ROWS[:1]), "silver/t")
    wider = _df(spark, ROWS[:1]).withColumn("extra", F.col("id") * 2)
    with pytest.raises(SchemaMismatchError, match=r"new columns \['extra'\]"):
        lake.write(wider, "silver/t")
    with pytest.raises(SchemaMismatchError, match=r"missing columns \['day'\]"):
        lake.write(_df(spark, ROWS[:1]).drop("day"), "silver/t")
    with pytest.raises(SchemaMismatchError, match=r"retyped columns \['id \(long -> string\)'\]"):
        lake.write(_df(spark, ROWS[:1]).withColumn("id", F.col("id").cast("string")), "silver/t")
    with pytest.raises(PartitionMismatchError, match="partitioned by"):
        lake.write(_df(spark, ROWS[:1]), "silver/t", partition_by=["city"])
    assert lake.version("silver/t") == 0

    lake.write(
        _df(spark, ROWS[1:2]).withColumn("extra", F.col("id") * 2), "silver/t", evolve_schema=True
    )
    got = {r.id: r.extra for r in lake.read("silver/t").collect()}
    assert got == {1: None, 2: 4}
    schema = json.loads(DeltaTable(lake.uri("silver/t")).schema().to_json())
    assert [f["name"] for f in schema["fields"]] == ["id", "city", "ts", "day", "extra"]
    assert all(f["nullable"] for f in schema["fields"])


def test_timestamp_partition_columns_are_refused(spark, lake):
    with pytest.raises(PartitionMismatchError, match="cannot partition by ts"):
        lake.write(_df(spark, ROWS), "silver/t", partition_by=["ts"])


def test_same_app_id_append_is_a_no_op_and_overwrite_a_clean_replace(spark, lake):
    first = lake.write(_df(spark, ROWS), "silver/t", app_id="ingest/2026-01-01")
    again = lake.write(_df(spark, ROWS), "silver/t", app_id="ingest/2026-01-01")
    assert again.skipped and again.version == first.version
    assert lake.read("silver/t").count() == len(ROWS)
    lake.write(_df(spark, ROWS[:2]), "silver/t", app_id="ingest/2026-01-02")
    assert lake.read("silver/t").count() == len(ROWS) + 2

    for _ in range(2):
        lake.write(_df(spark, ROWS[:3]), "gold/o", mode="overwrite", app_id="kpis/2026-01-01")
    assert sorted(r.id for r in lake.read("gold/o").collect()) == [1, 2, 3]
    assert DeltaTable(lake.uri("gold/o")).transaction_version("kpis/2026-01-01") == 2


def test_a_write_check_sees_the_staged_rows_and_a_failing_one_commits_nothing(
    spark, lake, tmp_path
):
    lake.write(_df(spark, ROWS[:2]), "silver/t", partition_by=["city"])
    staged_rows: list[tuple] = []

    def keep(staged):
        staged_rows.extend(tuple(r) for r in staged.select(*SCHEMA.fieldNames()).collect())

    lake.write(_df(spark, ROWS[2:]), "silver/t", partition_by=["city"], check=keep)
    # the check reads back what was written (escaped and null partitions included), only that
    assert sorted(_as_utc(staged_rows), key=lambda r: r[0]) == ROWS[2:]

    def refuse(staged):
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        lake.write(
            _df(spark, [(9, "zz", None, None)]),
            "silver/t",
            mode="overwrite",
            partition_by=["city"],
            check=refuse,
        )
    assert lake.version("silver/t") == 1
    assert _as_utc(_spark_rows(lake.read("silver/t"))) == ROWS
    assert not [f for f in (tmp_path / "lake" / "silver" / "t").rglob("*") if "zz" in str(f)]


def test_replace_where_replaces_named_partitions_only(spark, lake):
    day_schema = StructType([StructField("id", LongType()), StructField("day", StringType())])
    lake.write(
        spark.createDataFrame([(1, "d1"), (2, "d2"), (3, "d3")], day_schema),
        "silver/p",
        partition_by=["day"],
    )
    # d2 now has no rows at all: replace_where empties it, which replace_partitions would not
    lake.write(
        spark.createDataFrame([(10, "d1")], day_schema),
        "silver/p",
        mode="overwrite",
        partition_by=["day"],
        replace_where={"day": ["d1", "d2"]},
    )
    assert sorted((r.id, r.day) for r in lake.read("silver/p").collect()) == [(3, "d3"), (10, "d1")]
    with pytest.raises(LakeError, match="outside replace_where"):
        lake.write(
            spark.createDataFrame([(11, "d9")], day_schema),
            "silver/p",
            mode="overwrite",
            partition_by=["day"],
            replace_where={"day": ["d1"]},
        )
    only_d3 = lake.read("silver/p", partitions=[("day", "=", "d3")])
    assert [r.id for r in only_d3.collect()] == [3]


def test_merge_upserts_on_keys(spark, lake):
    base = [(1, "c1", None, None), (2, "c1", None, None), (3, "c2", None, None)]
    lake.write(_df(spark, base), "silver/m", partition_by=["city"])
    day = date(2026, 1, 1)
    changes = [(2, "c1", None, day), (4, "c1", None, day), (5, "c3", None, day)]
    result = lake.merge(_df(spark, changes), "silver/m", keys=["id", "city"], partition_by=["city"])
    assert result.files_removed >= 1
    expected = _df(spark, [base[0], changes[0], base[2], changes[1], changes[2]])
    assert_df_equality(lake.read("silver/m"), expected, ignore_row_order=True)

    with pytest.raises(LakeError, match="repeats key"):
        lake.merge(
            _df(spark, [changes[0], changes[0]]),
            "silver/m",
            keys=["id", "city"],
            partition_by=["city"],
        )
    with pytest.raises(LakeError, match="must include partition columns"):
        lake.merge(_df(spark, changes), "silver/m", keys=["id"], partition_by=["city"])


def test_overwrite_from_a_stale_snapshot_fails_and_loses_nothing(spark, lake):
    lake.write(_df(spark, ROWS[:1]), "silver/t")
    stale = lake.version("silver/t")
    lake.write(_df(spark, ROWS[1:2]), "silver/t")  # another writer lands meanwhile
    with (
        table_lock(lake.root + "/_locks", "t", 5),
        pytest.raises(ConcurrentWriteError, match="changed from version 0 to 1"),
    ):
        commit_files(
            lake.uri("silver/t"),
            "silver/t",
            [],
            SCHEMA.jsonValue(),
            [],
            replace="all",
            snapshot_version=stale,
        )
    assert sorted(r.id for r in lake.read("silver/t").collect()) == [1, 2]


def test_lock_times_out_with_a_clear_error(tmp_path):
    with (
        table_lock(str(tmp_path), "silver/t", 5),
        pytest.raises(LockTimeoutError, match="silver/t"),
        table_lock(str(tmp_path), "silver/t", 0.2),
    ):
        pass


def test_optimize_vacuum_and_restore(spark, lake):
    for i in range(4):
        lake.write(_df(spark, [ROWS[i]]), "silver/t")
    files_before = len(DeltaTable(lake.uri("silver/t")).file_uris())
    lake.optimize("silver/t")
    dt = DeltaTable(lake.uri("silver/t"))
    assert len(dt.file_uris()) < files_before
    assert sorted(r.id for r in lake.read("silver/t").collect()) == [1, 2, 3, 4]

    deleted = lake.vacuum("silver/t", retention_hours=0, enforce_retention=False)
    assert len(deleted) == files_before
    assert sorted(r.id for r in lake.read("silver/t").collect()) == [1, 2, 3, 4]

    lake.restore("silver/t", 4)  # the version before vacuum: files gone, data was compacted
    lake.write(_df(spark, [ROWS[4]]), "silver/t")
    assert lake.read("silver/t").count() == 5


def test_vacuum_keeps_files_within_retention(spark, lake):
    lake.write(_df(spark, ROWS[:2]), "silver/t")
    lake.write(_df(spark, ROWS[2:]), "silver/t", mode="overwrite")
    assert lake.vacuum("silver/t") == []  # default retention: old version stays readable
    assert lake.read("silver/t", version=0).count() == 2


def test_tables_lists_every_delta_table(spark, lake):
    lake.write(_df(spark, ROWS[:1]), "silver/a")
    lake.write(_df(spark, ROWS[:1]), "gold/b")
    lake.append_rows("ops/c", [{"id": 1, "city": None, "ts": None, "day": None}], SCHEMA)
    assert lake.tables() == ["gold/b", "ops/c", "silver/a"]


def test_bad_table_names_are_refused(lake):
    for name in ("contacts", "a/b/c", "_x/y", "silver/"):
        with pytest.raises(LakeError, match="must be"):
            lake.uri(name)


def test_append_rows_writes_a_valid_table_without_spark(spark, tmp_path):
    from contactlake.lake import Lake

    driver_only = Lake(str(tmp_path / "lake"))  # no SparkSession
    when = datetime(1700, 5, 5, 5, 5, 5, 5, tzinfo=UTC)
    driver_only.append_rows(
        "ops/r", [{"id": 1, "city": "x", "ts": when, "day": date(1700, 5, 5)}], SCHEMA
    )
    table = DeltaTable(str(tmp_path / "lake/ops/r")).to_pyarrow_table()
    assert table.column("ts").to_pylist()[0].astimezone(UTC) == when
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    spark_side = Lake(str(tmp_path / "lake"), spark).read("ops/r").collect()
    assert spark_side[0].ts.astimezone(UTC) == when


def test_empty_table_reads_with_its_schema(spark, lake):
    lake.write(_df(spark, []), "silver/e")
    got = lake.read("silver/e")
    assert got.count() == 0 and got.schema.fieldNames() == SCHEMA.fieldNames()


def test_dates_far_from_epoch_survive(spark, lake):
    rows = [(1, "c", datetime(1, 1, 1, tzinfo=UTC) + timedelta(days=1), date(1, 1, 2))]
    lake.write(_df(spark, rows), "silver/old")
    assert _as_utc(_spark_rows(lake.read("silver/old"))) == rows
    assert _as_utc(_delta_rs_rows(lake.uri("silver/old"))) == rows


def test_partition_columns_may_start_with_an_underscore(spark, lake):
    df = spark.createDataFrame([(1, "2026-01-01"), (2, "2026-01-02")], "id long, _day string")
    result = lake.write(df, "bronze/u", partition_by=["_day"])
    assert result.rows_added == 2
    assert sorted((r.id, r._day) for r in lake.read("bronze/u").collect()) == [
        (1, "2026-01-01"),
        (2, "2026-01-02"),
    ]


def test_parquet_writer_options_reach_the_files(spark, lake):
    # bronze turns Parquet dictionaries off for columns whose values never repeat
    rows = [(i % 3, "same", None, None) for i in range(60)]
    options = {"parquet.enable.dictionary": "false", "parquet.enable.dictionary#city": "true"}
    lake.write(_df(spark, rows).coalesce(1), "bronze/d", options=options)
    lake.write(_df(spark, rows).coalesce(1), "bronze/d")
    root = lake.uri("bronze/d").removeprefix("file://")
    dictionaries = []
    for path in DeltaTable(lake.uri("bronze/d")).get_add_actions(flatten=True)["path"].to_pylist():
        chunks = pq.read_metadata(f"{root}/{path}").row_group(0)
        dictionaries.append(
            {chunks.column(i).path_in_schema: chunks.column(i).has_dictionary_page for i in (0, 1)}
        )
    assert sorted(dictionaries, key=str) == [
        {"id": False, "city": True},  # the write with the options
        {"id": True, "city": True},  # the default
    ]
