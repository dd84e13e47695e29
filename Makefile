# contactlake: `make run` builds the demo lake, `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.setup-stamp
ENV ?= local
RUN_DATE ?=
SCALE ?= large
BENCH_ARGS ?=
PYTEST_ARGS ?=
export MLFLOW_DISABLE_TELEMETRY := true
export PYSPARK_PYTHON := $(abspath $(PY))
# jobs.publish pseudonymises customers with an HMAC key from $CONTACTLAKE_PSEUDONYM_KEY;
# locally, a random key made once per checkout (git-ignored) keeps pseudonyms stable.
KEY_FILE := .pseudonym-key

.PHONY: setup check-java browser native-lapack run test test-fast test-e2e lint bench bench-scaling package mlflow-ui clean

setup: check-java $(STAMP) $(AIRFLOW_STAMP) browser native-lapack

check-java:
	@v=$$(java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1); \
	if [ -z "$$v" ]; then \
	  echo "Java not found: Spark needs Java 17 or newer. Install it, e.g. 'apt-get install openjdk-17-jre-headless', or set JAVA_HOME."; exit 1; \
	elif [ "$$v" -lt 17 ]; then \
	  echo "Java $$v found: Spark needs Java 17 or newer (apt-get install openjdk-17-jre-headless)."; exit 1; \
	fi

# The run report's browser test (tests/test_report.py) draws the report in headless Chromium:
# Debian's package, installed here when missing (as root with apt); else the test is skipped.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (apt-get) for the report's browser test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
	  echo "note: no $(CHROMIUM) and no root apt-get to install it: the report's browser test will be skipped"; \
	fi

# MLlib's linear algebra (breeze, dev.ludovic.netlib) calls the system's BLAS and LAPACK when
# libblas.so.3 and liblapack.so.3 load, else a Java translation (f2j). A GaussianMixture test
# fit hung three times in full test runs, twice seen with jstack looping in the translation's
# dlascl under dsyev; its eigen-decompositions now run in Debian's LAPACK 3.11. Installed
# when missing (as root with apt); else MLlib warns and falls back to Java.
native-lapack:
	@if /sbin/ldconfig -p 2>/dev/null | grep -q 'liblapack\.so\.3 '; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing BLAS and LAPACK (apt-get) for MLlib"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libblas3 liblapack3; \
	else \
	  echo "note: no liblapack.so.3 and no root apt-get to install it: MLlib will use its Java LAPACK"; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || \
	  { echo "contactlake needs Python 3.11 (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

# Airflow lives in its own environment (its pins clash with MLflow's); tests load the DAGs with it.
$(AIRFLOW_STAMP): deploy/airflow/requirements.txt
	@[ -x $(AIRFLOW_VENV)/bin/python ] || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q --no-deps -r deploy/airflow/requirements.txt
	@touch $(AIRFLOW_STAMP)

$(KEY_FILE):
	@umask 077; $(PY) -c 'import secrets; print(secrets.token_hex(32))' > $@

run: setup $(KEY_FILE)
	CONTACTLAKE_PSEUDONYM_KEY=$${CONTACTLAKE_PSEUDONYM_KEY:-$$(cat $(KEY_FILE))} \
	$(PY) -m jobs.pipeline --env $(ENV) $(if $(RUN_DATE),--run-date $(RUN_DATE))

# Two workers, one Spark session each: much of a Spark test is driver-side (planning, Delta
# commits, MLflow), so two overlap well on two cores. A file's tests stay on one worker.
TEST_WORKERS ?= 2

test: setup
	$(PY) -m pytest -m "not e2e" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test-e2e: setup
	$(PY) -m pytest -m e2e --timeout 3600 $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not e2e" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check libs jobs tests benchmarks
	$(VENV)/bin/ruff format --check libs jobs tests benchmarks

# make bench SCALE=tiny|demo|large [BENCH_ARGS="--only pipeline,duckdb --keep"]
# The large preset's ingest ran out of conf's 8g driver heap (writing IVR); 14g on 24 GiB.
BENCH_DRIVER_MEMORY ?= 14g
bench: setup
	$(PY) -m benchmarks.run --scale $(SCALE) --set spark.driver_memory=$(BENCH_DRIVER_MEMORY) $(BENCH_ARGS)

# How time grows with rows: generate, ingest, unify at several sizes, fitted and extrapolated
# to the large preset (SCALING_ARGS="--customers 25000,100000 --jobs generate --reuse")
SCALING_ARGS ?=
bench-scaling: setup
	$(PY) -m benchmarks.bench_scaling $(SCALING_ARGS)

package: setup
	rm -rf dist && mkdir -p dist
	$(PY) -m pip wheel -q --no-deps -w dist .
	$(PY) deploy/build_zip.py dist/contactlake.zip
	@echo "built dist/*.whl and dist/contactlake.zip (for spark-submit --py-files)"

mlflow-ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port 5000

clean:
	rm -rf lake landing truth mlruns mlflow.db exports reports dist build spark-warehouse .pytest_cache
