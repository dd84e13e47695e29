#!/usr/bin/env bash
# Submit one contactlake job with spark-submit, from the package built by `make package`.
#   deploy/spark-submit.sh <job> [--env cluster] [--run-date D] [--set k=v]...
# Extra spark-submit options go in SPARK_SUBMIT_OPTS_EXTRA, e.g.
#   SPARK_SUBMIT_OPTS_EXTRA="--master yarn --num-executors 8 --executor-memory 8g"
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
job="${1:?usage: deploy/spark-submit.sh <job> [job args]}"; shift
zip="${CONTACTLAKE_ZIP:-$here/dist/contactlake.zip}"  # the package (make package)
[ -f "$zip" ] || { echo "no $zip: run 'make package' first" >&2; exit 1; }
# Local default: the spark-submit shipped with the project's PySpark.
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$here/.venv/bin/python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYSPARK_PYTHON}"
if [ -z "${SPARK_HOME:-}" ]; then
  SPARK_HOME="$("$PYSPARK_DRIVER_PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
  export SPARK_HOME
fi
submit="${SPARK_SUBMIT:-$SPARK_HOME/bin/spark-submit}"
# The driver JVM starts before the job reads spark.jvm_options (conf/base.yaml), so its
# copy of them is given here; the executors get theirs from the session. Options in
# SPARK_SUBMIT_OPTS_EXTRA come later and win.
# shellcheck disable=SC2086
exec "$submit" --driver-java-options "-XX:-DontCompileHugeMethods" ${SPARK_SUBMIT_OPTS_EXTRA:-} \
  --conf spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS \
  --conf spark.sql.session.timeZone=UTC \
  --py-files "$zip" \
  "$here/jobs/$job.py" --conf-dir "$here/conf" "$@"
