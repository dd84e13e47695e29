"""jobs.ingest on hand-built landing files: parsing, quarantine, accounting, re-runs, drift."""

from __future__ import annotations

import shutil

import pytest
from pyspark.sql import functions as F

from contactlake.ingest.landing import Landing
from contactlake.ingest.parse import BLOCKS_SCHEMA, line_blocks, number_lines
from contactlake.lake import Lake
from jobs import ingest
from tests.ingest_helpers import DAY, land, run_ingest

CALLS = (
    b"call_id,ani,note,secs\n"  # line 1: header
    b"c1,13800000001,plain,30\n"  # 2
    b'c2,+86 138-0000-0002,"with, comma",45\n'  # 3
    b"c3,13800000003,bad \xff\xfe bytes,10\n"  # 4 invalid UTF-8
    b"c4,13800000004,too,many,fields\n"  # 5
    b"c5,13800000005\n"  # 6 too few
    b"\n"  # 7 empty
    b'c6,13800000006,"say ""hi""",\n'  # 8 escaped quotes, empty last field
)


def test_csv_lines_go_to_bronze_or_quarantine_with_reasons(spark, tmp_path, job_argv, conf_dir):
    land(tmp_path, "calls", "part-00000.csv", CALLS)
    assert run_ingest(spark, job_argv, conf_dir) == 0

    lake = Lake(str(tmp_path / "lake"), spark)
    bronze = lake.read("bronze/calls").orderBy("_line").collect()
    assert [(r.call_id, r.ani, r.note, r.secs, r._line) for r in bronze] == [
        ("c1", "13800000001", "plain", "30", 2),
        ("c2", "+86 138-0000-0002", "with, comma", "45", 3),
        ("c6", "13800000006", 'say "hi"', None, 8),
    ]
    assert {r._file for r in bronze} == {f"calls/{DAY}/part-00000.csv"}
    assert bronze[1]._raw == 'c2,+86 138-0000-0002,"with, comma",45'

    quarantine = lake.read("quarantine/calls").orderBy("_line").collect()
    assert [(r._line, r.reason_code) for r in quarantine] == [
        (4, "INVALID_UTF8"),
        (5, "COLUMN_COUNT"),
        (6, "COLUMN_COUNT"),
        (7, "EMPTY_LINE"),
    ]
    assert quarantine[0]._raw_bytes == b"c3,13800000003,bad \xff\xfe bytes,10"
    assert quarantine[1].reason_detail == "expected 4 fields, found 5"
    assert {r.stage for r in quarantine} == {"ingest"}

    [registered] = lake.read("ops/ingested_files").collect()
    assert (registered.rows_landed, registered.rows_bronze, registered.rows_quarantined) == (
        7,
        3,
        4,
    )
    [run] = lake.read("ops/job_runs").collect()
    assert (run.status, run.rows_in, run.rows_out, run.rows_rejected) == ("succeeded", 7, 3, 4)


def test_rerun_is_a_no_op_and_a_new_file_is_a_new_batch(spark, tmp_path, job_argv, conf_dir):
    land(tmp_path, "calls", "part-00000.csv", CALLS)
    assert run_ingest(spark, job_argv, conf_dir) == 0
    lake = Lake(str(tmp_path / "lake"), spark)
    versions = {
        t: lake.version(t) for t in ("bronze/calls", "quarantine/calls", "ops/ingested_files")
    }

    assert run_ingest(spark, job_argv, conf_dir) == 0
    assert {t: lake.version(t) for t in versions} == versions
    assert lake.read("bronze/calls").count() == 3

    land(tmp_path, "calls", "part-00001.csv", b"call_id,ani,note,secs\nc7,13800000007,late,5\n")
    assert run_ingest(spark, job_argv, conf_dir) == 0
    assert sorted(r.call_id for r in lake.read("bronze/calls").collect()) == [
        "c1",
        "c2",
        "c6",
        "c7",
    ]
    assert lake.read("ops/ingested_files").select("batch_id").distinct().count() == 2


def test_changed_file_is_stopped_and_named(spark, tmp_path, job_argv, conf_dir, caplog):
    land(tmp_path, "calls", "part-00000.csv", CALLS)
    assert run_ingest(spark, job_argv, conf_dir) == 0
    lake = Lake(str(tmp_path / "lake"), spark)
    version = lake.version("bronze/calls")

    land(tmp_path, "calls", "part-00000.csv", CALLS + b"c9,13800000009,sneaky,1\n")
    assert run_ingest(spark, job_argv, conf_dir) == 1
    assert f"calls/{DAY}/part-00000.csv: changed since it was ingested" in caplog.text
    assert lake.version("bronze/calls") == version


def test_missing_required_column_stops_the_file_only(spark, tmp_path, job_argv, conf_dir, caplog):
    land(tmp_path, "calls", "part-00000.csv", b"call_id,note,secs\nc1,x,1\n")  # no ani
    land(tmp_path, "calls", "part-00001.csv", b"call_id,ani,note,secs\nc2,1380000002,y,2\n")
    assert run_ingest(spark, job_argv, conf_dir) == 1
    assert "part-00000.csv: required columns ['ani'] missing" in caplog.text
    lake = Lake(str(tmp_path / "lake"), spark)
    assert [r.call_id for r in lake.read("bronze/calls").collect()] == ["c2"]
    assert [r.path for r in lake.read("ops/ingested_files").collect()] == [
        f"calls/{DAY}/part-00001.csv"
    ]


def test_new_csv_column_is_added_by_policy(spark, tmp_path, job_argv, conf_dir):
    land(tmp_path, "calls", "part-00000.csv", b"call_id,ani,note,secs\nc1,1,a,1\n")
    assert run_ingest(spark, job_argv, conf_dir) == 0
    land(
        tmp_path,
        "calls",
        "part-00000.csv",
        b"call_id,ani,queue,note,secs\nc2,2,VIP,b,2\n",
        day="2026-01-06",
    )
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-06") == 0
    rows = Lake(str(tmp_path / "lake"), spark).read("bronze/calls").orderBy("call_id").collect()
    assert [(r.call_id, r.note, r.queue) for r in rows] == [("c1", "a", None), ("c2", "b", "VIP")]


CHATS = (
    b'{"session_id": "s1", "channel": "app", "tags": ["a", "b"]}\n'
    b'{"session_id": "s2", "channel": "web"\n'  # broken
    b"[1, 2]\n"  # not an object
    b'{"session_id": "s3", "channel": null, "n": 1}\n'
)


def test_json_lines_and_reject_drift(spark, tmp_path, job_argv, conf_dir, caplog):
    land(tmp_path, "chats", "part-00000.jsonl", CHATS)
    assert run_ingest(spark, job_argv, conf_dir) == 1  # "n" is new and chats rejects drift
    assert "part-00000.jsonl: new columns ['n'] (drift policy: reject)" in caplog.text

    # a stopped file was never registered: the source may re-deliver it fixed, same name
    land(tmp_path, "chats", "part-00000.jsonl", CHATS.replace(b', "n": 1', b""))
    assert run_ingest(spark, job_argv, conf_dir) == 0
    lake = Lake(str(tmp_path / "lake"), spark)
    bronze = lake.read("bronze/chats").orderBy("_line").collect()
    assert [(r.session_id, r.channel, r.tags, r._line) for r in bronze] == [
        ("s1", "app", '["a","b"]', 1),
        ("s3", None, None, 4),
    ]
    quarantine = lake.read("quarantine/chats").orderBy("_line").collect()
    assert [(r._line, r.reason_code) for r in quarantine] == [
        (2, "BROKEN_JSON"),
        (3, "NOT_AN_OBJECT"),
    ]


def test_line_numbers_are_exact_across_file_splits(spark, tmp_path):
    lines = [f"line-{i:05d}" for i in range(1, 3001)]
    land(tmp_path, "big", "a.txt", ("\n".join(lines) + "\n").encode())
    land(tmp_path, "big", "b.txt", b"first\nsecond\n")
    landing = Landing(str(tmp_path / "landing"))
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # ~9 splits for a.txt
    try:
        read = landing.read_lines(spark, [f"big/{DAY}/a.txt", f"big/{DAY}/b.txt"])
        assert read.select("_block").distinct().count() > 5
        blocks = spark.createDataFrame(line_blocks(read).collect(), BLOCKS_SCHEMA)
        numbered = number_lines(read, blocks).select("_file", "_line", "value").collect()
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    got = sorted((r._file, r._line, r.value) for r in numbered)
    want = sorted(
        [(f"big/{DAY}/a.txt", i, text) for i, text in enumerate(lines, 1)]
        + [(f"big/{DAY}/b.txt", 1, "first"), (f"big/{DAY}/b.txt", 2, "second")]
    )
    assert got == want


def test_unknown_source_in_config_is_an_error(spark, job_argv, conf_dir, caplog):
    argv = job_argv(DAY, "--conf-dir", str(conf_dir), overrides=("ingest.sources=[nope]",))
    assert ingest.main(argv, spark=spark) == 1
    assert "unknown sources ['nope']" in caplog.text


def test_filter_is_lazy_friendly(spark):
    # parse transforms never trigger Spark jobs themselves
    from contactlake.ingest.parse import parse_delimited

    df = spark.createDataFrame([("a,b",)], "value string")
    out = parse_delimited(df, ["x", "y"])
    assert out.where(F.col("_reason").isNull()).select("x", "y").collect()[0].asDict() == {
        "x": "a",
        "y": "b",
    }


def test_a_json_line_is_one_document_or_broken(spark):
    from contactlake.ingest.parse import parse_json_lines

    lines = [
        ('  {"a": "x", "b": [1, 2]}  ', None, "x"),
        ('{"a": "x"}{"a": "y"}', "BROKEN_JSON", None),  # two records, no newline between
        ('{"a": "x"} tail', "BROKEN_JSON", None),
        ('{"a": "x"}] [{"a": "y"}', "BROKEN_JSON", None),  # closes a wrapping array early
        ('1, {"a": "y"}', "BROKEN_JSON", None),
        ('{"a": "x",}', "BROKEN_JSON", None),
        ("{'a': 'x'}", None, "x"),  # single quotes: Spark's JSON functions read them whole
        ('{"a": "x"', "BROKEN_JSON", None),
        ("[1, 2]", "NOT_AN_OBJECT", None),
        ('"text"', "NOT_AN_OBJECT", None),
        ("   ", "EMPTY_LINE", None),
    ]
    df = spark.createDataFrame([(i, v) for i, (v, _, _) in enumerate(lines)], "n int, value string")
    got = parse_json_lines(df, ["a"]).orderBy("n").select("_reason", "a").collect()
    assert [tuple(r) for r in got] == [(reason, a) for _, reason, a in lines]


def test_lookback_picks_up_late_files_in_earlier_folders(spark, tmp_path, job_argv, conf_dir):
    land(tmp_path, "calls", "a.csv", b"call_id,ani,note,secs\nc1,1,x,1\n", day="2026-01-01")
    land(
        tmp_path, "calls", "a.csv", b"call_id,ani,note,secs\nc2,2,y,2\n", day="2025-12-01"
    )  # too old
    land(
        tmp_path, "calls", "a.csv", b"call_id,ani,note,secs\nc3,3,z,3\n", day="2026-01-09"
    )  # future
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-05") == 0  # lookback 7 days
    lake = Lake(str(tmp_path / "lake"), spark)
    rows = lake.read("bronze/calls").collect()
    assert [(r.call_id, str(r._landing_date)) for r in rows] == [("c1", "2026-01-01")]
    # the late file lands in an earlier folder; the next day's run still sees it
    land(tmp_path, "calls", "b.csv", b"call_id,ani,note,secs\nc4,4,w,4\n", day="2026-01-02")
    assert run_ingest(spark, job_argv, conf_dir, day="2026-01-06") == 0
    got = sorted((r.call_id, str(r._landing_date)) for r in lake.read("bronze/calls").collect())
    assert got == [("c1", "2026-01-01"), ("c4", "2026-01-02")]


def test_a_batch_committed_but_not_registered_is_registered_on_rerun(
    spark, tmp_path, job_argv, conf_dir
):
    # a run that stopped after its commits but before registering its files: the re-run
    # commits nothing again and registers the files with their counts from the tables
    land(tmp_path, "calls", "part-00000.csv", CALLS)
    assert run_ingest(spark, job_argv, conf_dir) == 0
    lake = Lake(str(tmp_path / "lake"), spark)
    versions = {t: lake.version(t) for t in ("bronze/calls", "quarantine/calls")}
    shutil.rmtree(tmp_path / "lake" / "ops" / "ingested_files")

    assert run_ingest(spark, job_argv, conf_dir) == 0
    assert {t: lake.version(t) for t in versions} == versions
    [registered] = lake.read("ops/ingested_files").collect()
    assert (registered.rows_landed, registered.rows_bronze, registered.rows_quarantined) == (
        7,
        3,
        4,
    )


def test_files_of_two_layouts_in_one_batch_keep_their_line_numbers(
    spark, tmp_path, job_argv, conf_dir
):
    # each layout is read on its own, its files split in parts whose size depends on the
    # read's total (no open cost: the split size is the total over the cores): every line
    # keeps its number within its file, and is counted once
    old = [f"o{i},{i},n{i},{i}" for i in range(300)]
    new = [f"n{i},{i},Q{i},n{i},{i}" for i in range(200)]
    land(tmp_path, "calls", "a.csv", ("call_id,ani,note,secs\n" + "\n".join(old)).encode())
    land(tmp_path, "calls", "b.csv", ("call_id,ani,queue,note,secs\n" + "\n".join(new)).encode())
    spark.conf.set("spark.sql.files.openCostInBytes", "1")
    try:
        assert run_ingest(spark, job_argv, conf_dir) == 0
    finally:
        spark.conf.unset("spark.sql.files.openCostInBytes")
    lake = Lake(str(tmp_path / "lake"), spark)
    rows = lake.read("bronze/calls").collect()
    got = sorted((r._file.rsplit("/", 1)[1], r._line, r.call_id, r.queue) for r in rows)
    want = sorted(
        [("a.csv", i + 2, f"o{i}", None) for i in range(300)]
        + [("b.csv", i + 2, f"n{i}", f"Q{i}") for i in range(200)]
    )
    assert got == want
    registered = {
        r.path.rsplit("/", 1)[1]: r.rows_landed for r in lake.read("ops/ingested_files").collect()
    }
    assert registered == {"a.csv": 300, "b.csv": 200}


def test_lines_in_neither_bronze_nor_quarantine_are_an_error():
    ingest._check_counts({"a.csv": 3, "b.csv": 1}, {"a.csv": 3}, {"b.csv": 1})  # adds up
    with pytest.raises(ingest.IngestError, match=r"b.csv: 2 lines landed, 0 in bronze \+ 1"):
        ingest._check_counts({"a.csv": 3, "b.csv": 2}, {"a.csv": 3}, {"b.csv": 1})
    with pytest.raises(ingest.IngestError, match="c.csv"):  # rows of a file never landed
        ingest._check_counts({"a.csv": 3}, {"a.csv": 3, "c.csv": 1}, {})
