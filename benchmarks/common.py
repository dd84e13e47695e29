"""Shared benchmark plumbing: timing, peak memory of the driver, its JVM and workers,
machine facts, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import threading
import time
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


# Reading a process's PSS makes the kernel walk its page tables: 115 ms for a JVM holding
# 15 GiB. Sampled every 0.2 s, that took a third of one of the machine's 2 cores from the
# job being measured (large unify, 2026-12-06).
MEMORY_SAMPLE_S = 5.0


class PeakMemory:
    """Peak memory of this process plus all its descendants (the Spark JVM and its Python
    workers), sampled every ``interval`` seconds while the block runs.

    Each process counts its proportional set size (PSS): a page shared by n processes
    counts 1/n in each. Spark forks its Python workers from one daemon, so summing their
    RSS counted the shared pages once per worker. Where PSS is not available (not Linux),
    RSS is used.

    A peak shorter than the interval can be missed; the JVM rarely returns memory to the
    OS, so in one long-lived session a later block's peak includes what earlier ones left.
    """

    def __init__(self, interval: float = MEMORY_SAMPLE_S) -> None:
        self.peak = 0  # bytes
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def now() -> int:
        """Bytes in use now by this process and its descendants."""
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with suppress(psutil.Error):  # a child may exit between listing and reading
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())

    @property
    def peak_bytes(self) -> int:
        return self.peak

    @property
    def peak_mib(self) -> int:
        return round(self.peak / 2**20)

    @property
    def peak_gib(self) -> float:
        return round(self.peak / 2**30, 2)


@contextmanager
def timed(into: list[float]):
    started = time.perf_counter()
    yield
    into.append(time.perf_counter() - started)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (runnable processes; compare with the cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    memory = psutil.virtual_memory()
    return {
        "cores": psutil.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(memory.total / 2**30, 1),
        "memory_available_gib": round(memory.available / 2**30, 1),
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def spark_facts(spark) -> dict:
    """Versions and the settings that decide Spark's speed here."""
    import pyspark

    conf = spark.sparkContext.getConf()
    return {
        "spark": spark.version,
        "pyspark": pyspark.__version__,
        "java": spark.sparkContext._jvm.System.getProperty("java.version"),
        "master": spark.sparkContext.master,
        "default_parallelism": spark.sparkContext.defaultParallelism,
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "driver_memory": conf.get("spark.driver.memory", None),
        "adaptive": spark.conf.get("spark.sql.adaptive.enabled"),
    }


def save(name: str, result: dict, markdown: str, results_dir: Path | None = None) -> Path:
    """Write ``<name>.json`` (the result plus the machine facts) and ``<name>.md``."""
    results_dir = Path(results_dir or RESULTS)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps({**result, "machine": machine()}, indent=2, default=str) + "\n")
    (results_dir / f"{name}.md").write_text(markdown + "\n")
    return path
