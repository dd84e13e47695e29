"""Airflow DAGs for contactlake: the daily pipeline and the weekly model training.

Copy this file to the Airflow dags folder and set the Airflow Variable (or environment
variable) CONTACTLAKE_HOME to the deployed checkout (with dist/ built by `make package`).
Each task is one spark-submit of one job (deploy/jobs/<job>.sh) for the DAG's logical date,
so a cleared task re-runs its job for that date; the jobs are idempotent per run date.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

HOME = os.environ.get("CONTACTLAKE_HOME", "/opt/contactlake")
ENV = os.environ.get("CONTACTLAKE_ENV", "cluster")
DEFAULTS = {
    "owner": "contactlake",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=3),
}

# job -> the jobs it reads the output of (the real data dependencies)
DAILY = {
    "ingest": [],
    "unify": ["ingest"],
    "kpis": ["unify"],
    "features": ["unify"],
    "score": ["features"],  # champion models from the weekly training DAG
    "tags": ["features", "score"],  # model tags (segment, churn risk) need the scores
    "publish": ["tags", "score"],
    "maintain": ["kpis", "publish"],
    "report": ["kpis", "publish"],  # the run report of the day's KPIs, models and audiences
}
WEEKLY = {
    "train_segments": [],
    "train_churn": [],
    "train_uplift": [],
}


def submit(job: str) -> BashOperator:
    # the trailing space stops Jinja from treating the .sh path as a template file
    return BashOperator(
        task_id=job,
        bash_command=f"{HOME}/deploy/jobs/{job}.sh --env {ENV} --run-date {{{{ ds }}}} ",
        env={"CONTACTLAKE_HOME": HOME},
        append_env=True,
    )


def build(dag_id: str, schedule: str, jobs: dict[str, list[str]], doc: str) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,  # runs of the same job commit to the same tables
        default_args=DEFAULTS,
        tags=["contactlake"],
        doc_md=doc,
    ) as dag:
        tasks = {job: submit(job) for job in jobs}
        for job, upstream in jobs.items():
            for name in upstream:
                tasks[name] >> tasks[job]
    return dag


daily = build(
    "contactlake_daily",
    "0 3 * * *",  # after the source systems' nightly exports have landed
    DAILY,
    "Landing -> bronze -> silver -> gold for the logical date, then publishing.",
)
weekly_training = build(
    "contactlake_weekly_training",
    "0 1 * * 1",
    WEEKLY,
    "Retrain segmentation, churn and uplift; a better model becomes champion for daily scoring.",
)
