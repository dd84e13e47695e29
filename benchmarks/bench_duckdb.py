"""Spark (the project's own KPI and feature transforms) against DuckDB (SQL written here for
the same definitions) over the same Parquet files, in the same run: seconds per engine, the
ratio, and whether the two agree.

    .venv/bin/python -m benchmarks.bench_duckdb --env local [--set lake.root=...] \
        [--run-date 2026-01-03] [--name demo] [--repeats 3] [--kpi-days 90]

Inputs: the data files of the current Delta snapshot of ``silver/contacts`` (only the
``contact_date`` partitions a computation needs, as the jobs read them) and
``silver/customers``, listed through the lake layer (delta-rs ``file_uris``). Spark reads
them with ``Lake.read`` at that same version (its file list is checked to be the same);
DuckDB reads the same paths with ``read_parquet``. Nothing is written to the lake.

Computations (``kpis``/``features`` settings from the config; the KPI catalog from
``conf/kpis``):

* ``kpi_handling``: ``handling_facts`` -> ``customer_attributes`` -> ``aggregate_facts``:
  daily contacts per channel (channel mix), average handle time, average speed of answer,
  abandon rate (short abandons out), service level, transfer rate, agent-handled share, by
  every dimension the catalog gives them (all, channel, queue, region, customer type);
* ``kpi_repeat``: ``repeat_facts`` -> the same aggregation: 7-day repeat contact rate and
  first contact resolution (unknown resolution per ``kpis.fcr_unknown_resolved``);
* ``kpi_concentration``: ``concentration`` of hotline contacts over the trailing 30 days:
  top 5/14/20% share and the Lorenz curve;
* ``features_contacts``: ``contact_features`` at the run date: per customer contacts,
  durations per channel over 7/30/90 days, repeats, unresolved, top channel, days since
  the last contact, mean wait, abandons, transfers, digital share, app and WeChat use.

KPIs cover the ``--kpi-days`` dates ending on the run date (default 90, the run report's
trend window). Timed: Spark ``df.write.format("noop").mode("overwrite").save()`` (every row
and column computed, nothing written; facts persisted as the job does; the DataFrame is
built before the clock starts, as DuckDB's views over the file lists are), DuckDB ``CREATE
TEMP TABLE ... AS`` (every row materialised in memory). Each engine runs each computation
``--repeats`` times; the median is reported and the ratio is Spark / DuckDB (above 1: DuckDB
faster). Values agree when equal, both null, or within 1e-9 relative; otherwise the
differing rows are reported. Results: benchmarks/results/duckdb-<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import psutil
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from benchmarks.common import PeakMemory, load_average, save, spark_facts
from contactlake import kpis
from contactlake.features import contact_features
from contactlake.lake import Lake
from contactlake.lake.commit import open_table, table_schema_json

log = logging.getLogger("contactlake.bench")
TOLERANCE = 1e-9
HANDLING_KPIS = [
    "channel_mix",
    "average_handle_time",
    "average_speed_of_answer",
    "abandon_rate",
    "service_level",
    "transfer_rate",
    "agent_handled_share",
]
REPEAT_KPIS = ["repeat_contact_rate", "first_contact_resolution"]
KPI_KEYS = ["kpi_id", "kpi_date", "dimension", "dimension_value"]
KPI_VALUES = ["numerator", "denominator", "value"]
DAY_US = 86_400_000_000
# Delta partition column types (the lake layer allows these) as DuckDB types
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "integer": "INTEGER",
    "long": "BIGINT",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "boolean": "BOOLEAN",
}


# ------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Snapshot:
    """The data files of one table version (optionally some partitions only)."""

    table: str
    version: int
    files: list[str]
    partition_types: dict[str, str]  # partition column -> DuckDB type (from the Delta schema)
    partitions: list[tuple[str, str, str]] | None

    @property
    def bytes(self) -> int:
        return sum(os.path.getsize(f) for f in self.files)


def snapshot(lake: Lake, table: str, partitions=None, version: int | None = None) -> Snapshot:
    dt = open_table(lake.uri(table), version=version)
    if dt is None:
        raise SystemExit(f"{table}: no Delta table at {lake.uri(table)}")
    files = [f.removeprefix("file://") for f in dt.file_uris(partitions)]
    types = {f["name"]: f["type"] for f in table_schema_json(dt)["fields"]}
    partition_types = {
        c: DUCKDB_TYPES.get(str(types[c]), "VARCHAR") for c in dt.metadata().partition_columns
    }
    return Snapshot(table, dt.version(), files, partition_types, partitions)


def spark_frame(lake: Lake, snap: Snapshot) -> DataFrame:
    """``Lake.read`` of the same version and partitions; checks it reads the same files."""
    df = lake.read(snap.table, version=snap.version, partitions=snap.partitions)
    read = {f.removeprefix("file://") for f in df.inputFiles()}
    if read != set(snap.files):
        raise RuntimeError(
            f"{snap.table}: Spark reads {len(read)} files, the snapshot lists {len(snap.files)}"
        )
    return df


def _sql_in(items) -> str:
    """SQL string literals, comma separated."""
    return ", ".join("'" + str(i).replace("'", "''") + "'" for i in items)


def _sql_list(items) -> str:
    return f"[{_sql_in(items)}]"


def duck_source(snap: Snapshot) -> str:
    """``read_parquet`` of the snapshot's files (partition values from the hive paths,
    typed by the Delta schema, as Spark's reader takes them)."""
    if not snap.files:
        raise RuntimeError(f"{snap.table}: no data files in the selected partitions")
    if snap.partition_types:
        types = ", ".join(f"'{c}': '{t}'" for c, t in snap.partition_types.items())
        hive = f", hive_partitioning = true, hive_types = {{{types}}}"
    else:
        hive = ", hive_partitioning = false"
    return f"read_parquet({_sql_list(snap.files)}{hive}, union_by_name = true)"


def _d(day: date) -> str:
    return f"DATE '{day.isoformat()}'"


def _ts(day: date) -> str:
    """00:00 UTC of ``day`` (the sessions run in UTC, like the Spark session)."""
    return f"TIMESTAMPTZ '{day.isoformat()} 00:00:00+00'"


def _f(x: float) -> str:
    return f"CAST({x!r} AS DOUBLE)"


def _count(condition: str) -> str:
    """Rows where ``condition`` is true, as an INTEGER (DuckDB's count_if is NULL when the
    condition is NULL on every row; Spark's is 0)."""
    return f"CAST(count(*) FILTER (WHERE {condition}) AS INTEGER)"


def _flag(condition: str) -> str:
    """1.0 when true, 0.0 when false or null (as kpis._flag)."""
    return f"CASE WHEN {condition} THEN 1.0 ELSE 0.0 END"


# ------------------------------------------------------------------------- DuckDB SQL
def _aggregate_sql(facts_sql: str, customers: str, catalog: dict, region_attribute: str) -> str:
    """``aggregate_facts`` with ``customer_attributes``: sum facts per KPI, day and every
    dimension the catalog asks for; region and customer type are those of the customer's
    SCD2 version valid at the end of the day (midnight UTC), else the current version."""
    dims = {
        "all": "'all'",
        "channel": "channel",
        "queue": "queue",
        "region": "coalesce(region, 'unknown')",
        "customer_type": "coalesce(customer_type, 'unknown')",
    }
    ids = [k for k in catalog if k != "contact_concentration"]
    stacked = []
    for dim, value in dims.items():
        with_dim = [k for k in ids if dim in catalog[k].dimensions]
        if with_dim:
            stacked.append(
                f"SELECT kpi_id, kpi_date, '{dim}' AS dimension, {value} AS dimension_value, "
                f"numerator, denominator FROM fa WHERE kpi_id IN ({_sql_in(with_dim)}) "
                f"AND {value} IS NOT NULL"
            )
    return f"""
WITH facts AS ({facts_sql}),
days AS (SELECT DISTINCT customer_key, kpi_date FROM facts WHERE customer_key IS NOT NULL),
versions AS (
  SELECT d.customer_key, d.kpi_date, v.valid_from,
         CAST(v.{region_attribute} AS VARCHAR) AS region,
         CAST(v.customer_type AS VARCHAR) AS customer_type,
         CASE WHEN v.valid_from < CAST(d.kpi_date + 1 AS TIMESTAMPTZ)
                   AND (v.valid_to IS NULL OR v.valid_to >= CAST(d.kpi_date + 1 AS TIMESTAMPTZ))
              THEN 0 WHEN v.is_current THEN 1 END AS as_of_rank
  FROM days d JOIN {customers} v ON v.customer_key = d.customer_key
),
attrs AS (
  SELECT customer_key, kpi_date, region, customer_type FROM (
    SELECT *, row_number() OVER (PARTITION BY customer_key, kpi_date
                                 ORDER BY as_of_rank ASC, valid_from DESC NULLS LAST) AS n
    FROM versions WHERE as_of_rank IS NOT NULL)
  WHERE n = 1
),
fa AS (
  SELECT f.*, a.region, a.customer_type
  FROM facts f LEFT JOIN attrs a ON a.customer_key = f.customer_key AND a.kpi_date = f.kpi_date
  WHERE f.kpi_id IN ({_sql_in(ids)})
),
sums AS (
  SELECT kpi_id, kpi_date, dimension, dimension_value,
         sum(numerator) AS numerator, sum(denominator) AS denominator
  FROM ({" UNION ALL ".join(stacked)})
  GROUP BY ALL
),
mixed AS (
  SELECT kpi_id, kpi_date, dimension, dimension_value, numerator,
         CASE WHEN kpi_id = 'channel_mix'
              THEN sum(numerator) OVER (PARTITION BY kpi_id, kpi_date, dimension)
              ELSE denominator END AS denominator
  FROM sums
)
SELECT *, CASE WHEN denominator <> 0 THEN numerator / denominator END AS value FROM mixed
"""


def _fact_row(kpi_id: str, numerator: str, denominator: str = "1.0", queue: str = "queue") -> str:
    return (
        f"SELECT '{kpi_id}' AS kpi_id, kpi_date, customer_key, channel, {queue} AS queue, "
        f"CAST({numerator} AS DOUBLE) AS numerator, CAST({denominator} AS DOUBLE) AS denominator"
    )


def handling_sql(contacts: str, customers: str, first: date, last: date, cfg, catalog) -> str:
    """Operational KPIs of inbound contacts dated ``first`` .. ``last`` (see
    ``kpis.handling_facts``: offered = queued and not a short abandon)."""
    c = f"""
    SELECT contact_date AS kpi_date, customer_key, channel, queue, wait_s, talk_s, hold_s,
           wrapup_s, transferred,
           coalesce(handled_by_agent, false) AS agent,
           answer_ts IS NOT NULL AS answered,
           coalesce(abandoned, false) AS abandoned,
           queue_ts IS NOT NULL
             AND NOT (coalesce(abandoned, false)
                      AND coalesce(wait_s, 0.0) < {_f(cfg.short_abandon_s)}) AS offered
    FROM {contacts}
    WHERE direction = 'inbound' AND contact_date BETWEEN {_d(first)} AND {_d(last)}"""
    within = f"answered AND wait_s <= {_f(cfg.service_level_s)}"
    facts = " UNION ALL ".join(
        [
            _fact_row(
                "average_handle_time", "talk_s + coalesce(hold_s, 0.0) + coalesce(wrapup_s, 0.0)"
            )
            + " FROM c WHERE agent AND talk_s IS NOT NULL",
            _fact_row("average_speed_of_answer", "wait_s")
            + " FROM c WHERE answered AND wait_s IS NOT NULL",
            _fact_row("abandon_rate", _flag("abandoned")) + " FROM c WHERE offered",
            _fact_row("service_level", _flag(within)) + " FROM c WHERE offered",
            _fact_row("transfer_rate", _flag("transferred")) + " FROM c WHERE agent",
            _fact_row("agent_handled_share", _flag("agent")) + " FROM c",
            _fact_row("channel_mix", "1.0", "0.0", queue="CAST(NULL AS VARCHAR)") + " FROM c",
        ]
    )
    return _aggregate_sql(
        f"WITH c AS ({c}) {facts}", customers, _subset(catalog, HANDLING_KPIS), cfg.region_attribute
    )


def _base_sql(customers: str, cfg) -> str:
    """The contacts of the KPI base (``kpis.customer_base``, see ``kpis.followed_contacts``)."""
    if cfg.customer_base == "crm":
        return f"customer_key IN (SELECT customer_key FROM {customers})"
    return "customer_key IS NOT NULL"


def repeat_sql(contacts: str, customers: str, first: date, last: date, cfg, catalog) -> str:
    """Repeat contact rate and FCR (see ``kpis.repeat_facts``): a contact is repeated when
    the customer's next contact (by start, then contact id) starts at most N x 24 h later."""
    resolved = {
        "resolved": "coalesce(resolved, true)",
        "unresolved": "coalesce(resolved, false)",
        "excluded": "resolved",
    }[cfg.fcr_unknown_resolved]
    window = cfg.repeat_window_days * DAY_US
    r = f"""
    SELECT contact_date AS kpi_date, customer_key, channel, queue, {resolved} AS res,
           coalesce(epoch_us(lead(start_ts) OVER (
                      PARTITION BY customer_key
                      ORDER BY start_ts ASC NULLS FIRST, contact_id ASC NULLS FIRST))
                    - epoch_us(start_ts) <= {window}, false) AS repeated
    FROM {contacts}
    WHERE direction = 'inbound' AND contact_date BETWEEN {_d(first)} AND {_d(last)}
      AND {_base_sql(customers, cfg)}"""
    facts = (
        _fact_row("repeat_contact_rate", _flag("repeated"))
        + " FROM r UNION ALL "
        + _fact_row("first_contact_resolution", _flag("res AND NOT repeated"))
        + " FROM r WHERE res IS NOT NULL"
    )
    return _aggregate_sql(
        f"WITH r AS ({r}) {facts}", customers, _subset(catalog, REPEAT_KPIS), cfg.region_attribute
    )


def concentration_sql(contacts: str, customers: str, first: date, last: date, cfg) -> str:
    """Share of hotline contacts made by the top x of customers over the trailing window
    ending on each day, and the Lorenz curve (see ``kpis.concentration``: the customer at
    rank r covers clamp(x * n - (r - 1), 0, 1) of its contacts)."""
    w = cfg.concentration_window_days
    k = cfg.lorenz_points

    def top(x: float) -> str:
        covered = f"least(greatest({_f(x)} * customers - (r - 1), 0.0), 1.0)"
        return f"sum(n * {covered})"

    points = [i / k for i in range(1, k + 1)]
    aggs = ["sum(n) AS total"]
    aggs += [f"{top(x)} AS top{i}" for i, x in enumerate(cfg.concentration_top_shares)]
    aggs += [f"{top(1.0 - p)} AS low{i}" for i, p in enumerate(points)]
    rows = [
        f"SELECT kpi_date, 'top_share' AS dimension, '{x:g}' AS dimension_value, "
        f"top{i} AS numerator, total FROM per_date"
        for i, x in enumerate(cfg.concentration_top_shares)
    ] + [
        f"SELECT kpi_date, 'lorenz', '{p:g}', total - low{i}, total FROM per_date"
        for i, p in enumerate(points)
    ]
    return f"""
WITH days AS (
  SELECT customer_key, CAST(contact_date + CAST(o AS INTEGER) AS DATE) AS kpi_date
  FROM {contacts}, range(0, {w}) AS t(o)
  WHERE direction = 'inbound' AND {_base_sql(customers, cfg)}
    AND channel IN ({_sql_in(cfg.concentration_channels)})
    AND contact_date BETWEEN {_d(first - timedelta(days=w - 1))} AND {_d(last)}
),
counts AS (
  SELECT kpi_date, customer_key, CAST(count(*) AS DOUBLE) AS n FROM days
  WHERE kpi_date BETWEEN {_d(first)} AND {_d(last)} GROUP BY ALL
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY kpi_date ORDER BY n DESC, customer_key ASC) AS r,
         count(*) OVER (PARTITION BY kpi_date) AS customers
  FROM counts
),
per_date AS (SELECT kpi_date, {", ".join(aggs)} FROM ranked GROUP BY kpi_date)
SELECT 'contact_concentration' AS kpi_id, kpi_date, dimension, dimension_value, numerator,
       total AS denominator, numerator / total AS value
FROM ({" UNION ALL ".join(rows)})
"""


def features_sql(contacts: str, snapshot_date: date, cfg) -> str:
    """``contact_features`` at ``snapshot_date``: contacts that started before the cutoff
    (the next day, 00:00 UTC) and within ``lookback_days``; windows end with the snapshot
    date. A repeat is an inbound contact whose customer's next inbound contact starts at most
    N x 24 h later."""
    cutoff = _ts(snapshot_date + timedelta(days=1))

    def since(days: int) -> str:
        return _ts(snapshot_date + timedelta(days=1 - days))

    aggs = []
    for days in cfg.windows_days:
        in_w = f"start_ts >= {since(days)}"
        aggs += [
            f"{_count(in_w)} AS contacts_{days}d",
            f"{_count(f'{in_w} AND inbound')} AS inbound_contacts_{days}d",
            f"sum(CASE WHEN {in_w} THEN duration END) AS duration_{days}d",
        ]
        for ch in cfg.channels:
            on_ch = f"{in_w} AND channel = '{ch}'"
            aggs += [
                f"{_count(on_ch)} AS contacts_{ch}_{days}d",
                f"sum(CASE WHEN {on_ch} THEN duration END) AS duration_{ch}_{days}d",
            ]
        aggs += [
            f"{_count(f'{in_w} AND is_repeat')} AS repeat_contacts_{days}d",
            f"{_count(f'{in_w} AND unresolved')} AS unresolved_contacts_{days}d",
        ]
    e = cfg.experience_days
    in_e = f"start_ts >= {since(e)}"
    aggs += [
        f"CAST(date_diff('day', CAST(max(start_ts) AS DATE), {_d(snapshot_date)}) AS INTEGER)"
        " AS days_since_last_contact",
        f"avg(CASE WHEN {in_e} THEN wait_s END) AS mean_wait_s_{e}d",
        f"{_count(f'{in_e} AND abandoned')} AS abandons_{e}d",
        f"{_count(f'{in_e} AND transferred')} AS transfers_{e}d",
        f"{_count(f'{in_e} AND channel IN ({_sql_in(cfg.digital_channels)})')}"
        f" / nullif({_count(in_e)}, 0) AS digital_share_{e}d",
        f"CAST(max({in_e} AND channel = 'app') AS INTEGER) AS uses_app",
        f"CAST(max({in_e} AND channel = 'wechat') AS INTEGER) AS uses_wechat",
    ]
    longest = max(cfg.windows_days)
    counts = [f"contacts_{ch}_{longest}d" for ch in cfg.channels]
    best = f"greatest({', '.join(counts)})"
    # the most used channel; ties go to the channel listed first
    first_best = " ".join(
        f"WHEN {col} = {best} THEN '{ch}'" for col, ch in zip(counts, cfg.channels, strict=True)
    )
    return f"""
WITH known AS (
  SELECT customer_key, contact_id, channel, start_ts, wait_s, abandoned, transferred, resolved,
         direction = 'inbound' AS inbound, coalesce(handle_s, 0.0) AS duration
  FROM {contacts}
  WHERE customer_key IS NOT NULL AND start_ts < {cutoff}
    AND start_ts >= {since(cfg.lookback_days)}
),
flagged AS (
  SELECT *,
         inbound AND coalesce(lead(inbound) OVER w, false)
           AND coalesce(epoch_us(lead(start_ts) OVER w) - epoch_us(start_ts)
                        <= {cfg.repeat_window_days * DAY_US}, false) AS is_repeat,
         inbound AND (resolved = false OR abandoned) AS unresolved
  FROM known
  WINDOW w AS (PARTITION BY customer_key
               ORDER BY inbound ASC NULLS FIRST, start_ts ASC NULLS FIRST,
                        contact_id ASC NULLS FIRST)
),
per_customer AS (SELECT customer_key, {", ".join(aggs)} FROM flagged GROUP BY customer_key)
SELECT *, CASE WHEN {best} > 0 THEN CASE {first_best} END END AS top_channel_{longest}d
FROM per_customer
"""


def _subset(catalog: dict, ids: list[str]) -> dict:
    return {k: v for k, v in catalog.items() if k in ids}


# ------------------------------------------------------------------------ computations
@dataclass
class Computation:
    name: str
    description: str
    keys: list[str]
    inputs: list[Snapshot]
    spark: Callable[[], DataFrame]  # builds the DataFrame (lazily: no action)
    persist: Callable[[], list[DataFrame]] | None  # what the job persists, to unpersist after
    sql: str


def computations(spark, lake: Lake, cfg, catalog, run_date: date, kpi_days: int):
    """The computations compared, each with its Spark plan and its DuckDB SQL."""
    k, fc = cfg.kpis, cfg.features
    first, last = run_date - timedelta(days=kpi_days - 1), run_date

    def days(a: date, b: date) -> list[tuple[str, str, str]]:
        return [("contact_date", ">=", a.isoformat()), ("contact_date", "<=", b.isoformat())]

    customers = snapshot(lake, "silver/customers")
    kpi_contacts = snapshot(lake, "silver/contacts", days(first, last))
    conc_from = first - timedelta(days=k.concentration_window_days - 1)
    conc_contacts = snapshot(lake, "silver/contacts", days(conc_from, last), kpi_contacts.version)
    # as jobs/features.py: a day of slack each side of the UTC window (local business dates)
    feat_contacts = snapshot(
        lake,
        "silver/contacts",
        days(run_date - timedelta(days=fc.lookback_days + 1), run_date + timedelta(days=1)),
        kpi_contacts.version,
    )
    persisted: dict[str, list[DataFrame]] = {}

    def in_range(snap: Snapshot) -> DataFrame:
        return kpis.inbound(spark_frame(lake, snap)).where(
            F.col("contact_date").between(F.lit(first), F.lit(last))
        )

    def aggregated(name: str, facts: DataFrame, ids: list[str]) -> DataFrame:
        # as jobs/kpis.py: facts persisted (read by the attributes and the aggregation)
        facts = facts.persist(StorageLevel.MEMORY_AND_DISK)
        persisted[name] = [facts]
        attributes = kpis.customer_attributes(
            spark_frame(lake, customers),
            facts.select("customer_key", "kpi_date"),
            k.region_attribute,
        )
        return kpis.aggregate_facts(facts, attributes, _subset(catalog, ids)).select(
            *KPI_KEYS, *KPI_VALUES
        )

    def spark_handling() -> DataFrame:
        facts = kpis.handling_facts(in_range(kpi_contacts), k.short_abandon_s, k.service_level_s)
        return aggregated("kpi_handling", facts, HANDLING_KPIS)

    def spark_repeat() -> DataFrame:
        followed = kpis.followed_contacts(
            in_range(kpi_contacts), spark_frame(lake, customers), k.customer_base
        )
        facts = kpis.repeat_facts(followed, k.repeat_window_days, k.fcr_unknown_resolved)
        return aggregated("kpi_repeat", facts, REPEAT_KPIS)

    def spark_concentration() -> DataFrame:
        contacts = kpis.inbound(spark_frame(lake, conc_contacts)).where(
            F.col("contact_date").between(F.lit(conc_from), F.lit(last))
        )
        followed = kpis.followed_contacts(contacts, spark_frame(lake, customers), k.customer_base)
        return kpis.concentration(
            followed.where(F.col("channel").isin(k.concentration_channels)),
            first,
            last,
            k.concentration_window_days,
            k.concentration_top_shares,
            k.lorenz_points,
        ).select(*KPI_KEYS, *KPI_VALUES)

    def spark_features() -> DataFrame:
        # as customer_features calls it: each keyword is the features setting of that name
        # (read from the signature, so a new setting is passed without editing this)
        settings = {
            name: getattr(fc, name)
            for name in inspect.signature(contact_features).parameters
            if name not in ("contacts", "snapshot_date")
        }
        return contact_features(spark_frame(lake, feat_contacts), run_date, **settings)

    span = f"{first} .. {last}"
    cust = "customers"
    return [
        Computation(
            "kpi_handling",
            f"daily contacts per channel, AHT, ASA, abandon rate, service level, transfer "
            f"rate, agent share by all/channel/queue/region/customer type, {span}",
            KPI_KEYS,
            [kpi_contacts, customers],
            spark_handling,
            lambda: persisted.pop("kpi_handling", []),
            handling_sql("contacts_kpi", cust, first, last, k, catalog),
        ),
        Computation(
            "kpi_repeat",
            f"{k.repeat_window_days}-day repeat contact rate and FCR "
            f"(unknown = {k.fcr_unknown_resolved}) by the same dimensions, {span}",
            KPI_KEYS,
            [kpi_contacts, customers],
            spark_repeat,
            lambda: persisted.pop("kpi_repeat", []),
            repeat_sql("contacts_kpi", cust, first, last, k, catalog),
        ),
        Computation(
            "kpi_concentration",
            f"top {'/'.join(f'{x:.0%}' for x in k.concentration_top_shares)} share and Lorenz "
            f"curve of {'+'.join(k.concentration_channels)} contacts over "
            f"{k.concentration_window_days} days, {span}",
            KPI_KEYS,
            [conc_contacts, customers],
            spark_concentration,
            None,
            concentration_sql("contacts_conc", cust, first, last, k),
        ),
        Computation(
            "features_contacts",
            f"contact_features per customer at {run_date}: counts and durations per channel "
            f"over {'/'.join(str(d) for d in fc.windows_days)} days, repeats, unresolved, top "
            f"channel, recency, {fc.experience_days}-day waits, abandons, transfers, digital "
            "share, app/WeChat use",
            ["customer_key"],
            [feat_contacts],
            spark_features,
            None,
            features_sql("contacts_feat", run_date, fc),
        ),
    ], {
        "contacts_kpi": kpi_contacts,
        "contacts_conc": conc_contacts,
        "contacts_feat": feat_contacts,
        "customers": customers,
    }


# ---------------------------------------------------------------------------- compare
def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compare(con, left: str, right: str, keys: list[str], limit: int = 5) -> dict:
    """Rows of ``left`` (Spark) and ``right`` (DuckDB) matched on ``keys``: rows only on
    one side, values differing per column (equal, both null, or within TOLERANCE relative),
    the largest relative difference per numeric column, and a few differing rows."""
    left_types = {r[0]: r[1] for r in con.execute(f"DESCRIBE {left}").fetchall()}
    right_cols = [r[0] for r in con.execute(f"DESCRIBE {right}").fetchall()]
    values = [c for c in left_types if c not in keys and c in right_cols]
    numeric = {
        c
        for c in values
        if left_types[c].split("(")[0]
        in ("DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "INTEGER", "SMALLINT", "HUGEINT")
    }
    on = " AND ".join(f"s.{_q(k)} IS NOT DISTINCT FROM d.{_q(k)}" for k in keys)

    def same(c: str) -> str:
        a, b = f"s.{_q(c)}", f"d.{_q(c)}"
        if c in numeric:
            return (
                f"(({a} IS NULL AND {b} IS NULL) OR coalesce({a} = {b} OR "
                f"abs({a} - {b}) <= {TOLERANCE} * greatest(abs({a}), abs({b})), false))"
            )
        return f"({a} IS NOT DISTINCT FROM {b})"

    cols = [f"coalesce(s.{_q(k)}, d.{_q(k)}) AS {_q(k)}" for k in keys]
    cols += ["coalesce(s._present, false) AS in_s", "coalesce(d._present, false) AS in_d"]
    for i, c in enumerate(values):
        cols += [
            f"s.{_q(c)} AS {_q(f's_{c}')}",
            f"d.{_q(c)} AS {_q(f'd_{c}')}",
            f"{same(c)} AS ok_{i}",
        ]
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cmp AS SELECT {', '.join(cols)} "
        f"FROM (SELECT *, true AS _present FROM {left}) s "
        f"FULL OUTER JOIN (SELECT *, true AS _present FROM {right}) d ON {on}"
    )
    stats = [
        "count(*) FILTER (WHERE in_s)",
        "count(*) FILTER (WHERE in_d)",
        "count(*) FILTER (WHERE in_s AND NOT in_d)",
        "count(*) FILTER (WHERE in_d AND NOT in_s)",
    ]
    stats += [f"count(*) FILTER (WHERE in_s AND in_d AND NOT ok_{i})" for i in range(len(values))]
    ordered_numeric = [c for c in values if c in numeric]
    for c in ordered_numeric:
        a, b = _q(f"s_{c}"), _q(f"d_{c}")
        stats.append(
            f"max(abs({a} - {b}) / nullif(greatest(abs({a}), abs({b})), 0))"
            " FILTER (WHERE in_s AND in_d)"
        )
    got = con.execute(f"SELECT {', '.join(stats)} FROM _cmp").fetchall()[0]
    rows_spark, rows_duckdb, only_spark, only_duckdb = got[:4]
    diffs = got[4 : 4 + len(values)]
    rels = got[4 + len(values) :]
    differing = {c: n for c, n in zip(values, diffs, strict=True) if n}
    any_bad = " OR ".join([f"NOT ok_{i}" for i in range(len(values))] or ["false"])
    bad = con.execute(
        f"SELECT * FROM _cmp WHERE NOT (in_s AND in_d) OR {any_bad} "
        f"ORDER BY {', '.join(_q(k) for k in keys)} LIMIT {limit}"
    )
    names = [d[0] for d in bad.description]
    examples = []
    for r in bad.fetchall():
        d = dict(zip(names, r, strict=True))
        ex = {k: str(d[k]) for k in keys}
        ex["side"] = "both" if d["in_s"] and d["in_d"] else ("spark" if d["in_s"] else "duckdb")
        for i, c in enumerate(values):
            if not d[f"ok_{i}"]:
                ex[c] = {"spark": d[f"s_{c}"], "duckdb": d[f"d_{c}"]}
        examples.append(ex)
    missing = sorted(set(left_types) ^ set(right_cols))
    return {
        "rows_spark": rows_spark,
        "rows_duckdb": rows_duckdb,
        "only_spark": only_spark,
        "only_duckdb": only_duckdb,
        "differing_values": differing,
        "columns_compared": len(values),
        "columns_on_one_side": missing,
        "max_relative_diff": {
            c: rel for c, rel in zip(ordered_numeric, rels, strict=True) if rel is not None
        },
        "examples": examples,
        "agree": not (only_spark or only_duckdb or differing or missing),
    }


# -------------------------------------------------------------------------------- run
def duck_connect(sources: dict[str, Snapshot], threads: int | None = None):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for view, snap in sources.items():
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {duck_source(snap)}")
    return con


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _ratio(spark_s: float | None, duckdb_s: float | None) -> float | None:
    return round(spark_s / duckdb_s, 1) if spark_s and duckdb_s else None


def _unpersist(comp: Computation) -> None:
    for df in comp.persist() if comp.persist else []:
        df.unpersist()


def run(
    spark,
    cfg,
    *,
    run_date: date,
    name: str,
    repeats: int = 3,
    kpi_days: int = 90,
    workdir: str | None = None,
    duckdb_threads: int | None = None,
) -> dict:
    """Time and compare every computation; returns the result (not saved).

    ``repeats=0`` only checks that the engines agree (no timing, no ratio).
    """
    lake = Lake.from_config(cfg.lake, spark)
    catalog = kpis.load_catalog(Path(cfg.conf_dir) / "kpis")
    comps, sources = computations(spark, lake, cfg, catalog, run_date, kpi_days)
    con = duck_connect(sources, duckdb_threads)
    scratch = Path(workdir or tempfile.mkdtemp(prefix="bench-duckdb-"))
    load_start = load_average()
    results = []
    with PeakMemory() as memory:
        for comp in comps:
            log.info("bench duckdb: %s", comp.name)
            create = f"CREATE OR REPLACE TEMP TABLE duck_{comp.name} AS {comp.sql}"
            spark_s, duck_s = [], []
            for i in range(repeats):
                # alternate which engine goes first, so neither always meets a warmer cache
                for engine in ("spark", "duckdb") if i % 2 == 0 else ("duckdb", "spark"):
                    if engine == "spark":
                        # the DataFrame (Delta log read, files listed) is built untimed, as
                        # DuckDB's views are; timed: planning, scheduling, execution
                        df = comp.spark()
                        t0 = time.perf_counter()
                        df.write.format("noop").mode("overwrite").save()
                        spark_s.append(time.perf_counter() - t0)
                        _unpersist(comp)
                    else:
                        t0 = time.perf_counter()
                        con.execute(create)
                        duck_s.append(time.perf_counter() - t0)
            if not repeats:
                con.execute(create)
            # Spark's result to Parquet (not timed), compared inside DuckDB
            out = scratch / f"spark_{comp.name}"
            comp.spark().write.mode("overwrite").parquet(f"file://{out}")
            _unpersist(comp)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE spark_{comp.name} AS "
                f"SELECT * FROM read_parquet('{out}/*.parquet')"
            )
            check = compare(con, f"spark_{comp.name}", f"duck_{comp.name}", comp.keys)
            count = "SELECT count(*) FROM read_parquet({})"
            rows_read = sum(
                con.execute(count.format(_sql_list(s.files))).fetchall()[0][0] for s in comp.inputs
            )
            spark_med, duck_med = _median(spark_s), _median(duck_s)
            results.append(
                {
                    "name": comp.name,
                    "description": comp.description,
                    "inputs": [
                        {
                            "table": s.table,
                            "version": s.version,
                            "files": len(s.files),
                            "bytes": s.bytes,
                            "partitions": s.partitions,
                        }
                        for s in comp.inputs
                    ],
                    "rows_read": rows_read,
                    "spark_seconds": [round(x, 3) for x in spark_s],
                    "duckdb_seconds": [round(x, 3) for x in duck_s],
                    "spark_median_s": spark_med,
                    "duckdb_median_s": duck_med,
                    "ratio": _ratio(spark_med, duck_med),
                    **check,
                }
            )
            log.info(
                "bench duckdb: %s spark %s s duckdb %s s ratio %s agree=%s",
                comp.name,
                spark_med,
                duck_med,
                results[-1]["ratio"],
                check["agree"],
            )
    if not workdir:
        shutil.rmtree(scratch, ignore_errors=True)
    threads, memory_limit = con.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchall()[0]
    con.close()
    spark_total = round(sum(r["spark_median_s"] for r in results), 3) if repeats else None
    duck_total = round(sum(r["duckdb_median_s"] for r in results), 3) if repeats else None
    return {
        "name": name,
        "lake": cfg.lake.root,
        "run_date": run_date.isoformat(),
        "kpi_days": kpi_days,
        "repeats": repeats,
        "tolerance": TOLERANCE,
        "spark_action": 'df.write.format("noop").mode("overwrite").save(): every row and '
        "column computed, nothing written (KPI facts persisted as jobs/kpis.py does; the "
        "DataFrame built before the clock starts)",
        "duckdb_action": "CREATE TEMP TABLE ... AS <sql>: every row materialised in memory",
        "computations": results,
        "totals": {
            "spark_s": spark_total,
            "duckdb_s": duck_total,
            "ratio": _ratio(spark_total, duck_total),
            "agree": all(r["agree"] for r in results),
        },
        "engines": {
            "spark": spark_facts(spark),
            "duckdb": {
                "version": duckdb.__version__,
                "threads": int(threads),
                "memory_limit": memory_limit,
            },
        },
        "peak_memory_mib": memory.peak_mib,
        "cores": psutil.cpu_count(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def _sec(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x}x"


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def markdown(result: dict) -> str:
    """The comparison as a markdown table (seconds per engine, ratio, agreement) + notes."""
    lines = [
        f"### Spark vs DuckDB over the same Parquet files (`{result['name']}`, run date "
        f"{result['run_date']})",
        "",
        "| computation | rows read | result rows | Spark s | DuckDB s | Spark / DuckDB | agree |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["computations"]:
        if r["agree"]:
            agree = "yes"
        else:
            parts = []
            if r["only_spark"] or r["only_duckdb"]:
                parts.append(f"rows only in Spark {r['only_spark']}, DuckDB {r['only_duckdb']}")
            parts += [f"{c}: {n} differ" for c, n in r["differing_values"].items()]
            if r["columns_on_one_side"]:
                parts.append(f"columns on one side: {', '.join(r['columns_on_one_side'])}")
            agree = "**no**: " + "; ".join(parts)
        lines.append(
            f"| `{r['name']}`: {r['description']} | {r['rows_read']:,} | {r['rows_spark']:,} | "
            f"{_sec(r['spark_median_s'], 2)} | {_sec(r['duckdb_median_s'], 3)} | "
            f"{_times(r['ratio'])} | {agree} |"
        )
    t = result["totals"]
    lines.append(
        f"| **total** | | | **{_sec(t['spark_s'], 2)}** | **{_sec(t['duckdb_s'], 3)}** | "
        f"**{_times(t['ratio'])}** | {'yes' if t['agree'] else '**no**'} |"
    )
    inputs = {}
    for r in result["computations"]:
        for i in r["inputs"]:
            dates = " .. ".join(str(v) for _, _, v in i.get("partitions") or [])
            inputs.setdefault((i["table"], i["version"], dates), i)
    spark, duck = result["engines"]["spark"], result["engines"]["duckdb"]
    lines += [
        "",
        "Inputs (Delta snapshot files, the same paths for both engines): "
        + "; ".join(
            f"{t} v{v}{f' ({dates})' if dates else ''}: {i['files']} files, {_mb(i['bytes'])}"
            for (t, v, dates), i in inputs.items()
        )
        + ".",
        "",
        f"Seconds are the median of {result['repeats']} runs per engine (order alternated). "
        f"Spark: {result['spark_action']}; Spark {spark['spark']}, {spark['master']}, "
        f"{spark['shuffle_partitions']} shuffle partitions. DuckDB {duck['version']}: "
        f"{result['duckdb_action']}; {duck['threads']} threads. "
        "Spark / DuckDB above 1 means DuckDB was that many times faster on the same files; "
        "Spark's time includes query planning and task scheduling, which dominate on small "
        f"inputs. {result['cores']} cores; load average (1 min) "
        f"{result['load_average_start'][0]} at start, {result['load_average_end'][0]} at end "
        "(other work on the machine slows both engines).",
        f"Agreement: equal, both null, or within {result['tolerance']:g} relative, per value "
        "column, rows matched on their keys.",
    ]
    for r in result["computations"]:
        for ex in r["examples"] if not r["agree"] else []:
            lines.append(f"- `{r['name']}` differs: {ex}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, spark=None) -> dict:
    from contactlake.config import load_config
    from contactlake.runner import configure_logging
    from contactlake.spark import build_session

    parser = argparse.ArgumentParser(prog="benchmarks.bench_duckdb")
    parser.add_argument("--env", default="local")
    parser.add_argument("--conf-dir", default=None, help="config folder (default ./conf)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--run-date", type=date.fromisoformat, default=None)
    parser.add_argument("--name", default="demo", help="results: duckdb-<name>.{json,md}")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per engine; 0: check agreement only"
    )
    parser.add_argument("--kpi-days", type=int, default=90)
    parser.add_argument("--duckdb-threads", type=int, default=None)
    parser.add_argument("--workdir", default=None, help="scratch for Spark's results (temp)")
    args = parser.parse_args(argv)
    configure_logging()
    cfg = load_config(args.env, args.overrides, args.conf_dir)
    run_date = args.run_date or cfg.pipeline.default_run_date
    if run_date is None:
        parser.error("--run-date is required (the config has no pipeline.default_run_date)")
    spark = spark or build_session(cfg.spark)
    result = run(
        spark,
        cfg,
        run_date=run_date,
        name=args.name,
        repeats=args.repeats,
        kpi_days=args.kpi_days,
        workdir=args.workdir,
        duckdb_threads=args.duckdb_threads,
    )
    md = markdown(result)
    path = save(f"duckdb-{args.name}", result, md)
    print(md)
    log.info("wrote %s", path)
    return result


if __name__ == "__main__":
    main()
