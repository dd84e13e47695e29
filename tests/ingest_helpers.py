"""Helpers for tests that ingest hand-built landing files (see the ingest_conf fixture)."""

from __future__ import annotations

from pathlib import Path

from jobs import ingest

DAY = "2026-01-05"


def land(tmp_path: Path, source: str, name: str, content: bytes, day: str = DAY) -> None:
    """Write one landing file at landing/<source>/<day>/<name>."""
    folder = tmp_path / "landing" / source / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)


def run_ingest(spark, job_argv, conf_dir, day: str = DAY) -> int:
    return ingest.main(job_argv(day, "--conf-dir", str(conf_dir)), spark=spark)
