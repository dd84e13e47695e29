"""The generator's landing writer on tiny inline rows (jobs.generate runs it on every source)."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from contactlake.generate import writers

SCHEMA = "date string, key string, value string, note string"
ROWS = [
    ("2025-01-02", "b", "b-line", None),
    ("2025-01-02", "a", "a-line", "side of a"),
    ("2025-01-03", "c", "c-line", None),
]


def _write(spark, tmp_path, rows, **opts):
    df = spark.createDataFrame(rows, SCHEMA)
    return writers.write_lines(
        df,
        str(tmp_path / "landing"),
        "src",
        2,
        header="h1,h2",
        header_dates=["2025-01-01", "2025-01-02", "2025-01-03"],
        **opts,
    )


def _files(out):
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}


def test_lines_under_their_header_and_side_lines_beside(spark, tmp_path):
    side_to = tmp_path / "side" / "src.jsonl"
    written = _write(spark, tmp_path, ROWS, side=F.col("note"), side_to=str(side_to))
    files = _files(tmp_path / "landing" / "src")
    # 2025-01-01 is a header date without rows: no file
    assert sorted(files) == ["2025-01-02/part-00000.csv", "2025-01-03/part-00000.csv"]
    header, *lines = files["2025-01-02/part-00000.csv"].decode().splitlines()
    assert (header, sorted(lines)) == ("h1,h2", ["a-line", "b-line"])
    assert files["2025-01-03/part-00000.csv"] == b"h1,h2\nc-line\n"
    assert written == writers.Written(files=2, rows=3, side=side_to)
    assert side_to.read_text() == "side of a\n"
    assert not (tmp_path / "landing" / "_staging").exists()


def test_no_side_lines_and_a_row_outside_the_header_dates(spark, tmp_path):
    written = _write(spark, tmp_path, ROWS[:1], side=F.col("note"), side_to=str(tmp_path / "s"))
    assert written == writers.Written(files=1, rows=1, side=None)
    late = [("2025-01-09", "z", "z-line", None)]
    with pytest.raises(RuntimeError, match="src: rows dated 2025-01-09 are outside header_dates"):
        _write(spark, tmp_path, late)


def test_same_rows_give_the_same_bytes_whatever_their_order_and_partitioning(spark, tmp_path):
    rows = [(f"2025-01-0{1 + i % 3}", f"k{i:03d}", f"line {i}", None) for i in range(60)]
    _write(spark, tmp_path / "a", rows)
    shuffled = spark.createDataFrame(list(reversed(rows)), SCHEMA).repartition(7)
    writers.write_lines(
        shuffled,
        str(tmp_path / "b" / "landing"),
        "src",
        3,
        header="h1,h2",
        header_dates=["2025-01-01", "2025-01-02", "2025-01-03"],
    )
    first, second = (
        _files(tmp_path / "a" / "landing" / "src"),
        _files(tmp_path / "b" / "landing" / "src"),
    )
    assert len(first) == 3 and first == second
    # every line once, under the header
    lines = [ln for f in first.values() for ln in f.decode().splitlines()]
    assert sorted(ln for ln in lines if ln != "h1,h2") == sorted(r[2] for r in rows)
    assert all(f.startswith(b"h1,h2\n") for f in first.values())
