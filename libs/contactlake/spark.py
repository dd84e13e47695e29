"""SparkSession from configuration, with the settings the Delta layer relies on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from contactlake.config import SparkConfig

# Settings the lake layer depends on for correctness; conf.spark.conf cannot override them.
REQUIRED_CONF = {
    # Delta readers (delta-rs, delta-spark) expect INT64 microsecond timestamps; Spark's
    # default INT96 is refused at commit (DESIGN pitfall 1).
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
    # Proleptic Gregorian on disk, so dates before 1582 read the same everywhere.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # No _SUCCESS marker files in staged writes.
    "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
}

# Spark compiles each stage of a query into one class (whole-stage code generation) and
# falls back to code per operator (small methods, but a row materialised after each
# operator) when a generated method is over spark.sql.codegen.hugeMethodLimit bytes.
# HotSpot runs a method over 8000 bytecode bytes interpreted, many times slower, unless the
# JVM has -XX:-DontCompileHugeMethods (spark.jvm_options): without it the limit is 8000.
# With it, whole stages up to 24000 bytes cut the task CPU of the generator by a third and
# of unify by 5% (mid preset); a 28000-byte method (the generator's voice export) ran 2.5x
# slower compiled than per operator, and Spark's default limit (65535) made unify slower.
HUGE_METHOD_LIMIT = {False: 8000, True: 24000}


def build_session(conf: SparkConfig) -> SparkSession:
    """Create (or return the running) SparkSession configured from ``conf``.

    The master is set only when configured: under spark-submit it is left to the launcher.
    ``spark.sql.codegen.hugeMethodLimit`` follows the driver's JVM (see HUGE_METHOD_LIMIT)
    unless ``conf.conf`` sets it.
    """
    builder = SparkSession.builder.appName(conf.app_name)
    jvm_options = " ".join(conf.jvm_options)
    if conf.master:
        builder = builder.master(conf.master)
        # Local mode: Python workers use this interpreter (the project's venv).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.driver.memory", conf.driver_memory)
        # Quiet JVM logging from the first line (setLogLevel only applies after start-up).
        log4j = Path(__file__).with_name("log4j2.properties")
        builder = builder.config(
            "spark.driver.extraJavaOptions",
            f"-Dlog4j2.configurationFile=file:{log4j} {jvm_options}".strip(),
        )
    settings = {
        "spark.sql.shuffle.partitions": str(conf.shuffle_partitions),
        "spark.ui.showConsoleProgress": "false",
        # executors start after the session: a cluster's get the options from here
        **({"spark.executor.extraJavaOptions": jvm_options} if jvm_options else {}),
        **conf.conf,
        **REQUIRED_CONF,
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    limit = HUGE_METHOD_LIMIT[compiles_huge_methods(spark)]
    settings = {"spark.sql.codegen.hugeMethodLimit": str(limit), **settings}
    # getOrCreate may return a session started elsewhere: enforce the runtime SQL settings.
    for key, value in settings.items():
        if key.startswith("spark.sql.") and not key.startswith("spark.sql.catalogImplementation"):
            spark.conf.set(key, value)
    spark.sparkContext.setLogLevel(conf.log_level)
    return spark


def compiles_huge_methods(spark: SparkSession) -> bool:
    """Whether the driver's JVM JIT-compiles methods over 8000 bytecode bytes.

    HotSpot runs such methods interpreted unless started with -XX:-DontCompileHugeMethods.
    In local mode the driver's JVM runs the tasks too.
    """
    jvm = spark.sparkContext._jvm
    bean_class = jvm.java.lang.Class.forName("com.sun.management.HotSpotDiagnosticMXBean")
    bean = jvm.java.lang.management.ManagementFactory.getPlatformMXBean(bean_class)
    return bean.getVMOption("DontCompileHugeMethods").getValue() == "false"


@contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the body of a ``with`` block; the earlier values come back
    afterwards (unset keys are unset again), even when the body fails."""
    saved = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
