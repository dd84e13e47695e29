"""Benchmark the whole pipeline at a scale: per job seconds, rows in/out, rows per second and
peak memory (driver Python + JVM + Python workers), with the machine facts that give the
numbers meaning.

    .venv/bin/python -m benchmarks.bench_pipeline --scale tiny [--workdir DIR] [--lake-from DIR]

In a work dir (default: a new temp dir) it generates the scale's preset (jobs.generate) and
runs every job of conf ``pipeline.jobs`` in order in ONE Spark session, as jobs.pipeline
does, with every path (lake, landing, truth, MLflow, quality docs, report, exports) in the
work dir. ``--lake-from DIR`` reuses the landing (``DIR/landing``) and truth of an earlier
generation instead of generating; the generate job is then skipped.

The run date and the feature snapshots the training jobs need follow from the generated
date range (see :func:`plan_run`). Rows in/out are each job's row of ``ops/job_runs``.
Results: benchmarks/results/pipeline-<scale>.{json,md}.
"""

from __future__ import annotations

import argparse
import calendar
import importlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession

from benchmarks.common import MEMORY_SAMPLE_S, PeakMemory, load_average, machine, save, spark_facts
from contactlake.lake.commit import open_table

log = logging.getLogger("contactlake.bench")
SCALES = ("tiny", "demo", "large")


def _month_ends(first: date, last: date) -> list[date]:
    ends, d = [], first
    while True:
        end = d.replace(day=calendar.monthrange(d.year, d.month)[1])
        if end > last:
            return ends
        ends.append(end)
        d = end + timedelta(days=1)


def _latest(days: list[date], on_or_before: date) -> date | None:
    earlier = [d for d in days if d <= on_or_before]
    return max(earlier) if earlier else None


@dataclass(frozen=True)
class RunPlan:
    """What the pipeline needs to know about the generated data to run on it."""

    start: date
    days: int
    customers: int
    run_date: date
    extra_snapshots: list[date]
    ingest_lookback_days: int

    def overrides(self) -> list[str]:
        snapshots = ",".join(d.isoformat() for d in self.extra_snapshots)
        return [
            f"features.extra_snapshots=[{snapshots}]",
            f"ingest.lookback_days={self.ingest_lookback_days}",
        ]


def plan_run(
    start: date,
    days: int,
    customers: int,
    late_max_days: int,
    campaigns: int,
    churn_horizon_days: int,
) -> RunPlan:
    """Run date and feature snapshots for data generated from ``start`` over ``days`` days.

    * run date: the last generated day + ``late_max_days`` (the last late file has landed);
    * ingest looks back over the whole range;
    * ``features.extra_snapshots``: month ends inside the range (the generator's churn
      snapshot calendar) that the training jobs use: churn validation (the latest month end
      whose ``churn_horizon_days`` outcome is known by the run date) and training (the
      latest month end <= validation - horizon), as ``ml.data.churn_snapshots`` picks them;
      and for uplift the latest month end before each campaign's launch day, which the
      generator puts at ``days * (c + 1) / (campaigns + 1)`` (generate.business).

    For the 365-day demo and large presets this is conf/local.yaml's run date (2026-01-03)
    and snapshot list.
    """
    last = start + timedelta(days=days - 1)
    run_date = last + timedelta(days=late_max_days)
    ends = _month_ends(start, last)
    wanted: set[date] = set()
    validation = _latest(ends, run_date - timedelta(days=churn_horizon_days))
    if validation:
        wanted.add(validation)
        train = _latest(ends, validation - timedelta(days=churn_horizon_days))
        if train:
            wanted.add(train)
    for c in range(campaigns):
        launch = start + timedelta(days=int(days * (c + 1) / (campaigns + 1)))
        before = _latest(ends, launch - timedelta(days=1))
        if before:
            wanted.add(before)
    return RunPlan(
        start=start,
        days=days,
        customers=customers,
        run_date=run_date,
        extra_snapshots=sorted(wanted),
        ingest_lookback_days=days + late_max_days,
    )


def plan_from_params(params_json: Path, churn_horizon_days: int) -> RunPlan:
    """The plan for a landing generated earlier, from its ``truth/params.json``."""
    p = json.loads(params_json.read_text())
    return plan_run(
        date.fromisoformat(p["start"]),
        p["days"],
        p["customers"],
        p["config"]["late_max_days"],
        p["config"]["campaigns"]["count"],
        churn_horizon_days,
    )


def freeze_conf(source: Path, target: Path) -> Path:
    """A copy of the config folder (unless ``source`` is already ``target``)."""
    source, target = source.resolve(), target.resolve()
    if source != target:
        shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def path_overrides(work: Path, landing: Path, truth: Path) -> list[str]:
    """Every path key of conf/base.yaml pointed into the work dir."""
    return [
        f"lake.root={work / 'lake'}",
        f"landing.root={landing}",
        f"truth.root={truth}",
        f"mlflow.tracking_uri=sqlite:///{work / 'mlflow.db'}",
        f"mlflow.artifact_location={work / 'mlruns'}",
        f"quality.docs_dir={work / 'quality'}",
        f"report.dir={work / 'reports'}",
        f"publish.export_dir={work / 'exports'}",
    ]


def job_runs(lake_root: str) -> list[dict]:
    """Every row of ``ops/job_runs`` (read with delta-rs: no Spark work between jobs)."""
    table = open_table(f"{lake_root.rstrip('/')}/ops/job_runs")
    if table is None:
        return []
    return pa.table(table.to_pyarrow_table()).to_pylist()


def _run_row(rows: list[dict], job: str, since: float) -> dict | None:
    """The job's ops/job_runs row started at or after ``since`` (epoch seconds)."""
    mine = [
        r
        for r in rows
        if r["job"] == job and r["started_at"] and r["started_at"].timestamp() >= since - 1
    ]
    return max(mine, key=lambda r: r["started_at"]) if mine else None


def _table_rows(lake_root: str, tables: list[str]) -> dict[str, int]:
    """Rows of the current snapshot of each table, from the Delta log's statistics."""
    out = {}
    for name in tables:
        table = open_table(f"{lake_root.rstrip('/')}/{name}")
        if table is not None:
            actions = pa.table(table.get_add_actions(flatten=True))
            out[name] = int(pc.sum(actions["num_records"]).as_py() or 0)
    return out


def run(
    scale: str,
    *,
    env: str = "local",
    workdir: str | None = None,
    lake_from: str | None = None,
    overrides: list[str] | None = None,
    jobs: list[str] | None = None,
    keep_going: bool = False,
    conf_dir: str | None = None,
    spark=None,
) -> dict:
    """Run the pipeline at ``scale`` and return the result (see the module docstring).

    Like jobs.pipeline, the first failed job stops the run (later jobs "not run") unless
    ``keep_going``. The config folder (default ``./conf``) is copied into the work dir first
    and every job reads the copy: a run takes minutes to hours, and config edited meanwhile
    must not reach jobs whose code was imported before the edit.
    """
    from contactlake.config import default_conf_dir, load_config
    from contactlake.runner import configure_logging
    from contactlake.spark import build_session

    configure_logging()
    work = Path(workdir or tempfile.mkdtemp(prefix=f"bench-pipeline-{scale}-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    conf = freeze_conf(Path(conf_dir) if conf_dir else default_conf_dir(), work / "conf")
    source = Path(lake_from).resolve() if lake_from else work
    landing, truth = source / "landing", source / "truth"
    if lake_from and not (truth / "params.json").is_file():
        raise SystemExit(f"--lake-from {lake_from}: no truth/params.json (not a generated landing)")
    sets = [*path_overrides(work, landing, truth), f"generate.preset={scale}"]
    cfg = load_config(env, [*sets, *(overrides or [])], conf)
    horizon = cfg.ml.churn.horizon_days
    if lake_from:
        plan = plan_from_params(truth / "params.json", horizon)
    else:
        g = cfg.generate
        scale_cfg = g.resolved_scale()
        plan = plan_run(
            g.start_date,
            scale_cfg.days,
            scale_cfg.customers,
            g.late_max_days,
            g.campaigns.count,
            horizon,
        )
    sets += plan.overrides()
    sets += overrides or []  # the caller's --set last: they win
    cfg = load_config(env, sets, conf)
    names = list(jobs or cfg.pipeline.jobs)
    argv = ["--env", env, "--conf-dir", str(conf), "--run-date", plan.run_date.isoformat()]
    for s in sets:
        argv += ["--set", s]
    # jobs.publish pseudonymises with an HMAC key from the environment: a throwaway one here
    os.environ.setdefault(cfg.publish.pseudonym_key_env, secrets.token_hex(32))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    machine_start = machine()
    started_wall = time.perf_counter()
    if spark is None and SparkSession.getActiveSession() is not None:
        spark = build_session(cfg.spark)  # an earlier benchmark's session: not timed again
    if spark is None:
        started = time.perf_counter()
        with PeakMemory() as memory:
            spark = build_session(cfg.spark)
        spark_start = {
            "seconds": round(time.perf_counter() - started, 1),
            "peak_memory_mib": memory.peak_mib,
        }
    else:
        spark_start = {"seconds": None, "peak_memory_mib": None, "note": "session already running"}
    log.info(
        "bench pipeline %s: %d customers x %d days, run date %s, jobs %s, work dir %s",
        scale,
        plan.customers,
        plan.days,
        plan.run_date,
        ",".join(names),
        work,
    )
    results = []
    failed: list[str] = []
    for name in names:
        if failed and not keep_going:
            results.append({"job": name, "status": "not run"})
            continue
        if name == "generate" and lake_from:
            results.append({"job": name, "status": f"skipped: landing from {source}"})
            continue
        module = importlib.import_module(f"jobs.{name}")
        began = time.time()
        t0 = time.perf_counter()
        with PeakMemory() as memory:
            code = module.main(argv, spark=spark)
        seconds = time.perf_counter() - t0
        results.append(
            {
                "job": name,
                "status": "succeeded" if code == 0 else f"failed (exit {code})",
                "seconds": round(seconds, 1),
                "peak_memory_mib": memory.peak_mib,
                "load_average_after": load_average()[0],
                "_began": began,
            }
        )
        log.info("bench pipeline: %s %s in %.1f s", name, results[-1]["status"], seconds)
        if code != 0:
            failed.append(name)

    rows = job_runs(cfg.lake.root)
    for r in results:
        began = r.pop("_began", None)
        if began is None:
            continue
        row = _run_row(rows, r["job"], began)
        if row is None:
            continue
        r.update(
            rows_in=row["rows_in"],
            rows_out=row["rows_out"],
            rows_rejected=row["rows_rejected"],
            job_duration_s=row["duration_s"],
            stages=json.loads(row["stages"] or "[]"),
        )
        processed = row["rows_in"] or row["rows_out"] or 0
        r["rows_per_second"] = round(processed / r["seconds"]) if processed else None
    ran = [r for r in results if "seconds" in r]
    total_seconds = sum(r["seconds"] for r in ran)
    result = {
        "scale": scale,
        "env": env,
        "status": f"failed: {', '.join(failed)}" if failed else "succeeded",
        "customers": plan.customers,
        "days": plan.days,
        "start_date": plan.start.isoformat(),
        "run_date": plan.run_date.isoformat(),
        "extra_snapshots": [d.isoformat() for d in plan.extra_snapshots],
        "workdir": str(work),
        "conf_dir": str(conf),
        "lake_from": str(source) if lake_from else None,
        "jobs": results,
        "totals": {
            "jobs_seconds": round(total_seconds, 1),
            "wall_seconds": round(time.perf_counter() - started_wall, 1),
            "rows_in": sum(r.get("rows_in") or 0 for r in ran),
            "rows_out": sum(r.get("rows_out") or 0 for r in ran),
            "peak_memory_mib": max((r["peak_memory_mib"] for r in ran), default=None),
        },
        "spark_start": spark_start,
        "table_rows": _table_rows(
            cfg.lake.root, ["silver/contacts", "silver/customers", "gold/customer_features"]
        ),
        "engine": spark_facts(spark),
        "machine_at_start": machine_start,
        "load_average_start": machine_start["load_average"],
        "load_average_end": load_average(),
    }
    return result


def _n(value) -> str:
    return "" if value is None else f"{value:,}"


def markdown(result: dict) -> str:
    """The pipeline results as a markdown table per job plus totals."""
    m, e, t = result["machine_at_start"], result["engine"], result["totals"]
    lines = [
        f"### Pipeline at scale `{result['scale']}`: {result['customers']:,} customers x "
        f"{result['days']} days, run date {result['run_date']} ({result['status']})",
        "",
        "| job | status | seconds | rows in | rows out | rows/s | peak memory MiB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["jobs"]:
        lines.append(
            f"| {r['job']} | {r['status']} | {r.get('seconds', '')} | {_n(r.get('rows_in'))} | "
            f"{_n(r.get('rows_out'))} | {_n(r.get('rows_per_second'))} | "
            f"{_n(r.get('peak_memory_mib'))} |"
        )
    lines.append(
        f"| **total** | | **{t['jobs_seconds']}** | {_n(t['rows_in'])} | {_n(t['rows_out'])} | "
        f"| **{_n(t['peak_memory_mib'])}** (max) |"
    )
    start = result["spark_start"]
    started = (
        f"Spark start-up {start['seconds']} s"
        if start.get("seconds") is not None
        else "Spark session started by an earlier benchmark"
    )
    lines += [
        "",
        f"{started}; wall time with start-up {t['wall_seconds']} s. "
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB "
        f"({m['memory_available_gib']} GiB available at start); load average (1 min) "
        f"{result['load_average_start'][0]} at start, {result['load_average_end'][0]} at end. "
        f"Spark {e['spark']} (pyspark {e['pyspark']}, Java {e['java']}), master {e['master']}, "
        f"{e['shuffle_partitions']} shuffle partitions, driver memory {e['driver_memory']}.",
        "",
        "rows/s = rows in / seconds (rows out for jobs that count no rows in, e.g. generate; "
        "empty when a job counts neither). "
        "Rows are the job's own counts in ops/job_runs (rows in = rows read from its main "
        "input). Peak memory = proportional set size (PSS) of driver Python + JVM + Python "
        "workers, so pages the forked workers share are counted once; sampled every "
        f"{MEMORY_SAMPLE_S:g} s "
        "during the job; the JVM returns memory to the OS slowly, so a peak can include heap that "
        "earlier jobs left.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None, spark=None) -> dict:
    parser = argparse.ArgumentParser(prog="benchmarks.bench_pipeline")
    parser.add_argument("--scale", choices=SCALES, default="large")
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf-dir", default=None, help="config folder (default ./conf)")
    parser.add_argument("--workdir", default=None, help="lake, MLflow, ... go here (default: temp)")
    parser.add_argument(
        "--lake-from", default=None, help="reuse DIR/landing and DIR/truth instead of generating"
    )
    parser.add_argument("--jobs", default=None, help="comma-separated (default: pipeline.jobs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--keep-going", action="store_true", help="run the jobs after a failure")
    parser.add_argument("--name", default=None, help="results name (default: the scale)")
    args = parser.parse_args(argv)
    result = run(
        args.scale,
        env=args.env,
        workdir=args.workdir,
        lake_from=args.lake_from,
        overrides=args.overrides,
        jobs=args.jobs.split(",") if args.jobs else None,
        keep_going=args.keep_going,
        conf_dir=args.conf_dir,
        spark=spark,
    )
    md = markdown(result)
    path = save(f"pipeline-{args.name or args.scale}", result, md)
    print(md)
    log.info("wrote %s", path)
    return result


if __name__ == "__main__":
    result = main()
    raise SystemExit(0 if result["status"] == "succeeded" else 1)
