"""Shared fixtures: one local Spark session for the whole run, lakes in tmp_path."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# pytest-xdist workers run with a bare __main__ (no __file__, no __spec__): importing
# pyspark.sql.connect (MLflow and Great Expectations do) takes that for a doctest run and
# exits the worker. A spec named "__main__" ends that, and spawned children (which
# re-import a main module by its file or spec name) skip it, as they should.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)


@pytest.fixture(scope="session")
def spark():
    from contactlake.config import load_config
    from contactlake.spark import build_session

    cfg = load_config("test", conf_dir=REPO / "conf")
    session = build_session(cfg.spark)
    yield session
    session.stop()


@pytest.fixture
def lake(spark, tmp_path):
    from contactlake.lake import Lake

    return Lake(str(tmp_path / "lake"), spark, lock_timeout_s=60)


@pytest.fixture
def test_overrides(tmp_path) -> list[str]:
    """--set arguments that point a job's lake, landing and truth into tmp_path."""
    return [
        f"lake.root={tmp_path / 'lake'}",
        f"landing.root={tmp_path / 'landing'}",
        f"truth.root={tmp_path / 'truth'}",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"mlflow.artifact_location={tmp_path / 'mlruns'}",
        f"quality.docs_dir={tmp_path / 'quality'}",
        f"report.dir={tmp_path / 'reports'}",
    ]


@pytest.fixture
def job_argv(test_overrides):
    """Build a job's argv: --env test, a run date, the tmp_path overrides, then extras."""

    def build(run_date: str, *extra: str, overrides: tuple[str, ...] = ()) -> list[str]:
        sets = [arg for o in (*test_overrides, *overrides) for arg in ("--set", o)]
        return ["--env", "test", "--run-date", run_date, *sets, *extra]

    return build


# Two small sources for ingest tests: CSV with the "add" drift policy, JSON lines with "reject".
CALLS_SPEC = """
description: test calls
format: csv
columns: [call_id, ani, note, secs]
required: [call_id, ani]
drift: add
"""
CHATS_SPEC = """
description: test chats
format: jsonl
columns: [session_id, channel, tags]
required: [session_id]
drift: reject
"""


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    """A copy of conf/ whose sources are the two test sources above."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf, ignore=shutil.ignore_patterns("sources", "quality"))
    (conf / "sources").mkdir()
    (conf / "sources" / "calls.yaml").write_text(CALLS_SPEC)
    (conf / "sources" / "chats.yaml").write_text(CHATS_SPEC)
    return conf
