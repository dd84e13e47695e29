"""The lake under real process failure and concurrency (separate OS processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from deltalake import DeltaTable

from contactlake.lake.commit import table_lock

REPO = Path(__file__).resolve().parents[1]

KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from contactlake.config import load_config
    from contactlake.spark import build_session
    import contactlake.lake.table as table_module
    from contactlake.lake import Lake

    root, marker = sys.argv[1], Path(sys.argv[2])
    spark = build_session(load_config("test").spark)

    def die_before_commit(*args, **kwargs):
        # The data files are in the table root now; the process dies before the commit.
        marker.write_text("files written")
        os.kill(os.getpid(), signal.SIGKILL)

    table_module.commit_files = die_before_commit
    lake = Lake(root, spark)
    lake.write(spark.range(1000, 2000).withColumnRenamed("id", "n"), "silver/k", mode="overwrite")
    """
)

APPENDER = textwrap.dedent(
    """
    import sys
    from pyspark.sql.types import LongType, StringType, StructField, StructType
    from contactlake.lake import Lake

    root, writer, commits = sys.argv[1], sys.argv[2], int(sys.argv[3])
    schema = StructType([StructField("writer", StringType()), StructField("seq", LongType())])
    lake = Lake(root, lock_timeout_s=120)
    for seq in range(commits):
        lake.append_rows("ops/events", [{"writer": writer, "seq": seq}], schema)
    """
)

LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from contactlake.lake.commit import table_lock
    with table_lock(sys.argv[1], "silver/t", 10):
        Path(sys.argv[2]).write_text("held")
        time.sleep(2)
    """
)


def _python(script: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "libs")}
    return subprocess.Popen([sys.executable, "-c", script, *args], cwd=REPO, env=env)


@pytest.mark.slow
def test_write_killed_before_commit_leaves_previous_version(spark, lake, tmp_path):
    lake.write(spark.range(0, 10).withColumnRenamed("id", "n"), "silver/k")
    marker = tmp_path / "marker"
    proc = _python(KILLED_WRITER, lake.root, str(marker))
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert marker.read_text() == "files written"

    assert lake.version("silver/k") == 0
    assert sorted(r.n for r in lake.read("silver/k").collect()) == list(range(10))
    table_dir = Path(lake.uri("silver/k"))
    on_disk = {p.name for p in table_dir.glob("*.parquet")}
    committed = {Path(u).name for u in DeltaTable(str(table_dir)).file_uris()}
    orphans = on_disk - committed
    assert orphans, "the killed write should have left uncommitted data files"

    deleted = lake.vacuum("silver/k", retention_hours=0, enforce_retention=False)
    assert {Path(p).name for p in deleted} >= orphans
    assert {p.name for p in table_dir.glob("*.parquet")} == committed
    assert sorted(r.n for r in lake.read("silver/k").collect()) == list(range(10))


@pytest.mark.slow
def test_concurrent_appends_from_two_processes_all_land(lake):
    commits = 15
    procs = [_python(APPENDER, lake.root, name, str(commits)) for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    table = DeltaTable(lake.uri("ops/events")).to_pyarrow_table()
    got = sorted(
        zip(table.column("writer").to_pylist(), table.column("seq").to_pylist(), strict=True)
    )
    assert got == sorted((w, s) for w in ("a", "b") for s in range(commits))
    assert DeltaTable(lake.uri("ops/events")).version() == 2 * commits - 1


def test_concurrent_merges_are_serialised_and_both_apply(spark, lake):
    """Two merges at once (threads sharing one Spark session): the table lock serialises
    them, the second reads the first's result, and neither update is lost."""
    base = spark.createDataFrame([(k, "old") for k in range(6)], "k long, v string")
    lake.write(base, "silver/m")
    updates = [
        spark.createDataFrame([(0, "a"), (1, "a"), (10, "a")], "k long, v string"),
        spark.createDataFrame([(2, "b"), (3, "b"), (11, "b")], "k long, v string"),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda df: lake.merge(df, "silver/m", keys=["k"]), updates))
    assert sorted(r.version for r in results) == [1, 2]
    got = {r.k: r.v for r in lake.read("silver/m").collect()}
    assert got == {0: "a", 1: "a", 2: "b", 3: "b", 4: "old", 5: "old", 10: "a", 11: "b"}


def test_a_second_process_waits_for_the_table_lock(tmp_path):
    marker = tmp_path / "held"
    proc = _python(LOCK_HOLDER, str(tmp_path), str(marker))
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    started = time.monotonic()
    with table_lock(str(tmp_path), "silver/t", 30):
        waited = time.monotonic() - started
    assert proc.wait(timeout=30) == 0
    assert waited > 0.5
