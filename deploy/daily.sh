#!/usr/bin/env bash
# The daily pipeline in one spark-submit (one Spark application, jobs in dependency order):
#   deploy/daily.sh --run-date 2026-01-31 [--env cluster] [--set k=v]...
# Model training runs weekly (deploy/airflow/contactlake_dags.py), not here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
DAILY_JOBS="${DAILY_JOBS:-ingest,unify,kpis,features,score,tags,publish,maintain,report}"
exec "$here/spark-submit.sh" pipeline --env cluster --jobs "$DAILY_JOBS" "$@"
