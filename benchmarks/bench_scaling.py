"""How time grows with data: ``jobs.pipeline`` (default: generate, ingest, unify) at several
customer counts over the same days, each scale in a fresh process (its own JVM) and its own
work dir. Per job: seconds, rows, rows per second and peak memory (PSS); then per job a
straight line ``seconds = fixed + rows / marginal_rate`` through the measured scales, and what
it predicts for the ``large`` preset on this machine and how many cores the issue targets
would need.

    .venv/bin/python -m benchmarks.bench_scaling --customers 25000,100000,400000 \\
        [--jobs generate,ingest,unify] [--workdir /tmp/scaling] [--reuse]

``--reuse`` keeps a scale whose work dir already holds a succeeded run of every job (its
``ops/job_runs``), e.g. after adding a larger scale. Results:
``benchmarks/results/scaling-<jobs>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
from deltalake import DeltaTable

from benchmarks.common import PeakMemory, load_average, save
from contactlake.generate.config import PRESETS

# The issues' targets on 2 cores, in seconds, for the large preset (2M customers).
TARGETS = {
    "generate": ("generate", 600),  # issue 3: 30M contact records in under 10 minutes
    "ingest+unify": ("ingest,unify", 1200),  # issue 4: under 20 minutes
    "kpis+features+tags": ("kpis,features,tags", 900),  # issue 5: under 15 minutes
}


def run_scale(customers: int, jobs: list[str], env: str, workdir: Path) -> dict:
    """Run the jobs at one scale in a child process; returns its peak memory (PSS, MiB)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sets = {
        "lake.root": workdir / "lake",
        "landing.root": workdir / "landing",
        "truth.root": workdir / "truth",
        "quality.docs_dir": workdir / "quality",
        "mlflow.tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
        "mlflow.artifact_location": workdir / "mlruns",
        "report.dir": workdir / "report",
        "generate.scale.customers": customers,
    }
    cmd = [sys.executable, "-m", "jobs.pipeline", "--env", env, "--jobs", ",".join(jobs)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    with (workdir / "log").open("w") as log, PeakMemory() as peak:
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise RuntimeError(
            f"{customers:,} customers: jobs.pipeline exited {code}; see {workdir}/log"
        )
    facts = {"peak_memory_mib": peak.peak_mib, "measured": "PSS of driver + JVM + workers (psutil)"}
    (workdir / "peak_memory.json").write_text(json.dumps(facts))
    return facts


def job_runs(workdir: Path, jobs: list[str]) -> dict[str, dict] | None:
    """The latest succeeded run of each job in the work dir's ops/job_runs, or None if a
    job has none."""
    path = workdir / "lake" / "ops" / "job_runs"
    if not path.exists():
        return None
    runs = DeltaTable(str(path)).to_pandas()
    runs = runs[runs["status"] == "succeeded"].sort_values("started_at")
    found = {}
    for job in jobs:
        rows = runs[runs["job"] == job]
        if rows.empty:
            return None
        last = rows.iloc[-1]
        # generate reads nothing: its size is what it wrote
        rows_measured = int(last["rows_out"] if job == "generate" else last["rows_in"])
        found[job] = {"seconds": float(last["duration_s"]), "rows": rows_measured}
    return found


def fit_line(rows: list[float], seconds: list[float]) -> dict:
    """Least-squares ``seconds = fixed + rows / marginal_rate`` (rates in rows per second)."""
    slope, intercept = np.polyfit(np.asarray(rows, float), np.asarray(seconds, float), 1)
    return {
        "fixed_s": float(intercept),
        "marginal_rows_per_s": float(1.0 / slope) if slope > 0 else None,
    }


def predict(line: dict, rows: float) -> float | None:
    rate = line["marginal_rows_per_s"]
    return None if rate is None else line["fixed_s"] + rows / rate


def analyse(scales: list[dict], jobs: list[str], large_customers: int, cores: int) -> dict:
    """Per job and per target group: the fitted line and its large-preset prediction."""
    biggest = max(scales, key=lambda s: s["customers"])
    per_job = {}
    for job in jobs:
        rows = [s["jobs"][job]["rows"] for s in scales]
        secs = [s["jobs"][job]["seconds"] for s in scales]
        line = fit_line(rows, secs)
        large_rows = biggest["jobs"][job]["rows"] * large_customers / biggest["customers"]
        per_job[job] = {
            **line,
            "large_rows": round(large_rows),
            "large_seconds": predict(line, large_rows),
        }
    groups = {}
    for name, (members, target) in TARGETS.items():
        members = members.split(",")
        if not all(m in per_job for m in members):
            continue
        fixed = sum(per_job[m]["fixed_s"] for m in members)
        large = [per_job[m]["large_seconds"] for m in members]
        marginal = None if None in large else sum(large) - fixed
        # cores for the target if the marginal part spreads over them and the fixed part
        # does not shrink: a floor, not a promise (shuffles and skew cost more)
        groups[name] = {
            "target_s": target,
            "large_seconds": None if marginal is None else fixed + marginal,
            "fixed_s": fixed,
            "cores_for_target": None
            if marginal is None or target <= fixed
            else cores * marginal / (target - fixed),
        }
    return {"jobs": per_job, "targets": groups}


def markdown(result: dict) -> str:
    scales, jobs = result["scales"], result["job_names"]
    head = "| customers | " + " | ".join(f"{j} s (rows/s)" for j in jobs) + " | peak memory MiB |"
    lines = [
        f"### Scaling on {result['cores']} cores: {', '.join(jobs)}",
        head,
        "|---" * (len(jobs) + 2) + "|",
    ]
    for s in scales:
        cells = [
            f"{s['jobs'][j]['seconds']:.0f} ({s['jobs'][j]['rows'] / s['jobs'][j]['seconds']:,.0f})"
            for j in jobs
        ]
        lines.append(
            f"| {s['customers']:,} | " + " | ".join(cells) + f" | {s['peak_memory_mib'] or '-'} |"
        )
    a = result["analysis"]
    lines += [
        "",
        f"Fitted per job (seconds = fixed + rows / marginal rate), predicted for the large "
        f"preset ({result['large_customers']:,} customers) on this machine:",
        "",
        "| job | fixed s | marginal rows/s | per core | large rows | large predicted |",
        "|---|---|---|---|---|---|",
    ]
    for job, f in a["jobs"].items():
        rate = f["marginal_rows_per_s"]
        large = f["large_seconds"]
        lines.append(
            f"| {job} | {f['fixed_s']:.0f} | {rate:,.0f} | {rate / result['cores']:,.0f} | "
            f"{f['large_rows']:,} | {large / 60:.0f} min |"
            if rate
            else f"| {job} | {f['fixed_s']:.0f} | - | - | {f['large_rows']:,} | - |"
        )
    if a["targets"]:
        lines += ["", "| target | limit | large predicted here | cores to meet it (floor) |"]
        lines.append("|---|---|---|---|")
        for name, t in a["targets"].items():
            cores = t["cores_for_target"]
            lines.append(
                f"| {name} | {t['target_s'] / 60:.0f} min | {t['large_seconds'] / 60:.0f} min | "
                + (f"{cores:.0f}" if cores else "fixed part alone exceeds it")
                + " |"
            )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(prog="benchmarks.bench_scaling")
    parser.add_argument("--customers", default="25000,100000,400000")
    parser.add_argument("--jobs", default="generate,ingest,unify")
    parser.add_argument("--env", default="local")
    parser.add_argument("--workdir", default="/tmp/contactlake-scaling")
    parser.add_argument("--reuse", action="store_true", help="keep scales already run")
    args = parser.parse_args(argv)
    jobs = args.jobs.split(",")
    cores = psutil.cpu_count()
    started_load = load_average()
    scales = []
    for customers in sorted(int(c) for c in args.customers.split(",")):
        workdir = Path(args.workdir) / str(customers)
        runs = job_runs(workdir, jobs) if args.reuse else None
        if runs is None:
            facts = run_scale(customers, jobs, args.env, workdir)
            runs = job_runs(workdir, jobs)
        else:
            memory_file = workdir / "peak_memory.json"
            facts = (
                json.loads(memory_file.read_text())
                if memory_file.exists()
                else {"peak_memory_mib": None}
            )
        scales.append({"customers": customers, "jobs": runs, **facts})
        print(f"{customers:,} customers: {runs}", flush=True)
    result = {
        "job_names": jobs,
        "scales": scales,
        "cores": cores,
        "large_customers": PRESETS["large"].customers,
        "load_average_start": started_load,
        "load_average_end": load_average(),
    }
    result["analysis"] = analyse(scales, jobs, result["large_customers"], cores)
    md = markdown(result)
    save(f"scaling-{'-'.join(jobs)}", result, md)
    print(md)
    return result


if __name__ == "__main__":
    main()
