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


def test_lines_sorted_under_their_header_and_side_lines_beside(spark, tmp_path):
    side_to = tmp_path / "side" / "src.jsonl"
    written = _write(spark, tmp_path, ROWS, side=F.col("note"), side_to=str(side_to))
    out = tmp_path / "landing" / "src"
    files = {str(f.relative_to(out)): f.read_text() for f in sorted(out.rglob("*")) if f.is_file()}
    # 2025-01-01 is a header date without rows: no file
    assert files == {
        "2025-01-02/part-00000.csv": "h1,h2\na-line\nb-line\n",
        "2025-01-03/part-00000.csv": "h1,h2\nc-line\n",
    }
    assert written == writers.Written(files=2, rows=3, side=side_to)
    assert side_to.read_text() == "side of a\n"
    assert not (tmp_path / "landing" / "_staging").exists()


def test_no_side_lines_and_a_row_outside_the_header_dates(spark, tmp_path):
    written = _write(spark, tmp_path, ROWS[:1], side=F.col("note"), side_to=str(tmp_path / "s"))
    assert written == writers.Written(files=1, rows=1, side=None)
    late = [("2025-01-09", "z", "z-line", None)]
    with pytest.raises(RuntimeError, match="src: rows dated 2025-01-09 are outside header_dates"):
        _write(spark, tmp_path, late)
