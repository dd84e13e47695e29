"""Deploy files: the Airflow DAGs load in a real Airflow (its own venv, from `make setup`) with
the jobs' real dependencies; spark-submit scripts and SparkApplication manifests name
existing jobs and config overlays."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_PYTHON = REPO / ".venv-airflow" / "bin" / "python"

LOAD_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
for dag in bag.dags.values():
    out["dags"][dag.dag_id] = {
        t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries,
                    "command": t.bash_command}
        for t in dag.tasks
    }
print("DAGS=" + json.dumps(out))
"""


def _job_exists(name: str) -> bool:
    return importlib.util.find_spec(f"jobs.{name}") is not None


@pytest.fixture(scope="module")
def dags(tmp_path_factory) -> dict:
    assert AIRFLOW_PYTHON.exists(), "no .venv-airflow: run `make setup`"
    home = tmp_path_factory.mktemp("airflow_home")
    done = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", LOAD_DAGS, str(REPO / "deploy" / "airflow")],
        capture_output=True,
        text=True,
        timeout=300,
        env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("DAGS=")), None)
    assert line, done.stderr[-3000:]
    return json.loads(line[len("DAGS=") :])


def test_dags_load_without_errors_and_run_existing_jobs(dags):
    assert dags["errors"] == {}
    assert set(dags["dags"]) == {"contactlake_daily", "contactlake_weekly_training"}
    for tasks in dags["dags"].values():
        for job, task in tasks.items():
            assert _job_exists(job), job
            assert task["retries"] >= 1
            # the run date is the DAG's logical date, passed to the job
            assert f"deploy/jobs/{job}.sh" in task["command"]
            assert "--run-date {{ ds }}" in task["command"]


def test_daily_dag_follows_the_data(dags):
    daily = {job: set(t["upstream"]) for job, t in dags["dags"]["contactlake_daily"].items()}
    assert daily["ingest"] == set()
    assert daily["unify"] == {"ingest"}
    assert {"unify"} <= daily["kpis"] and {"unify"} <= daily["features"]
    assert "features" in daily["score"]
    assert {"features", "score"} <= daily["tags"]
    assert "tags" in daily["publish"]
    assert {"kpis", "publish"} <= daily["report"]  # the run report of what they wrote


def test_submit_scripts_and_manifests_name_existing_jobs_and_confs():
    scripts = sorted((REPO / "deploy" / "jobs").glob("*.sh"))
    manifests = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
    assert scripts and [p.stem for p in scripts] == [p.stem for p in manifests]
    for script in scripts:
        assert _job_exists(script.stem), script
        assert f'spark-submit.sh" {script.stem} ' in script.read_text()
    for path in manifests:
        app = yaml.safe_load(path.read_text())
        assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
        assert app["kind"] == "SparkApplication"
        spec = app["spec"]
        job = Path(spec["mainApplicationFile"]).stem
        assert job == path.stem and _job_exists(job)
        args = spec["arguments"]
        env = args[args.index("--env") + 1]
        assert (REPO / "conf" / f"{env}.yaml").exists()
        assert spec["deps"]["pyFiles"] == ["local:///opt/contactlake/dist/contactlake.zip"]
        assert spec["executor"]["instances"] >= 1
        assert spec["sparkConf"]["spark.driver.extraJavaOptions"] == " ".join(_jvm_options())


def _jvm_options() -> list[str]:
    return yaml.safe_load((REPO / "conf" / "base.yaml").read_text())["spark"]["jvm_options"]


def test_submit_script_gives_the_driver_the_configured_jvm_options():
    """spark-submit starts the driver's JVM before the job reads its config."""
    script = (REPO / "deploy" / "spark-submit.sh").read_text()
    assert f'--driver-java-options "{" ".join(_jvm_options())}"' in script
