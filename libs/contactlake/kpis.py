"""Contact-center KPIs: the KPI catalog (``conf/kpis/*.yaml``) and pure transforms from
silver tables to ``gold/kpi_daily`` and ``gold/kpi_alerts`` rows.

Most KPIs are built in two steps. A *facts* function turns one silver table into rows
``kpi_id, kpi_date, customer_key, channel, queue, numerator, denominator`` (one row per
contact, survey, ticket, attempt or customer-day); :func:`aggregate_facts` adds the
customer's region and type as of the day and sums numerator and denominator per KPI, day
and dimension. ``value = scale * numerator / denominator`` (scale 100 for NPS, 1000 for the
complaint rate, else 1). Concentration is computed by :func:`concentration` directly.

Conventions shared by every contact KPI (documented here once):

* Only inbound contacts count (outbound rows are marketing and callbacks, measured by the
  marketing success rate from ``silver/campaign_contacts``).
* Contacts without a ``customer_key`` (anonymous web, hub numbers) count in the operational
  KPIs but not in those that follow a customer (repeat, FCR, concentration, channel shift).
  Those KPIs count, by default, only the contacts of CRM customers (``kpis.customer_base``,
  see :func:`followed_contacts`).
* A null channel or queue (digital contacts have no queue) is left out of that dimension;
  a missing region or customer type is reported as ``"unknown"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

DIMENSIONS = ("all", "channel", "queue", "region", "customer_type", "top_share", "lorenz")
UNKNOWN = "unknown"
DAY_US = 86_400 * 1_000_000

KPI_DAILY_SCHEMA = StructType(
    [
        StructField("kpi_date", DateType()),
        StructField("kpi_id", StringType()),
        StructField("kpi_version", IntegerType()),
        StructField("dimension", StringType()),
        StructField("dimension_value", StringType()),
        StructField("value", DoubleType()),
        StructField("numerator", DoubleType()),
        StructField("denominator", DoubleType()),
        StructField("target", DoubleType()),
        StructField("breach", BooleanType()),
        # false while the KPI's look-ahead window (repeat, channel shift) is not over yet
        StructField("complete", BooleanType()),
    ]
)
KPI_ALERTS_SCHEMA = StructType(
    [
        StructField("kpi_date", DateType()),
        StructField("kpi_id", StringType()),
        StructField("kpi_version", IntegerType()),
        StructField("dimension", StringType()),
        StructField("dimension_value", StringType()),
        StructField("value", DoubleType()),
        StructField("target", DoubleType()),
        StructField("kind", StringType()),
        StructField("detail", StringType()),
    ]
)
AGG_SCHEMA = (
    "kpi_id string, kpi_date date, dimension string, dimension_value string, "
    "numerator double, denominator double, value double"
)
FACT_COLUMNS = [
    "kpi_id",
    "kpi_date",
    "customer_key",
    "channel",
    "queue",
    "numerator",
    "denominator",
]


# ---------------------------------------------------------------------------- catalog
@dataclass(frozen=True)
class KpiSpec:
    """What the code computes for a KPI id: its source table, the dimensions it can be
    broken down by, its scale, and which look-ahead window (config key) it waits for."""

    source: str
    dimensions: tuple[str, ...]
    scale: float = 1.0
    lookahead: str | None = None


_CUSTOMER_DIMS = ("all", "channel", "queue", "region", "customer_type")
IMPLEMENTED: dict[str, KpiSpec] = {
    "repeat_contact_rate": KpiSpec("silver/contacts", _CUSTOMER_DIMS, lookahead="repeat"),
    "first_contact_resolution": KpiSpec("silver/contacts", _CUSTOMER_DIMS, lookahead="repeat"),
    "contact_concentration": KpiSpec("silver/contacts", ("top_share", "lorenz")),
    "average_handle_time": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "average_speed_of_answer": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "abandon_rate": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "service_level": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "transfer_rate": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "agent_handled_share": KpiSpec("silver/contacts", _CUSTOMER_DIMS),
    "channel_mix": KpiSpec("silver/contacts", ("channel",)),
    "channel_diversion_rate": KpiSpec(
        "silver/contacts", ("all", "region", "customer_type"), lookahead="shift"
    ),
    "channel_return_rate": KpiSpec(
        "silver/contacts", ("all", "region", "customer_type"), lookahead="shift"
    ),
    "channel_retention_rate": KpiSpec(
        "silver/contacts", ("all", "region", "customer_type"), lookahead="shift"
    ),
    "nps": KpiSpec("silver/surveys", ("all", "channel", "region", "customer_type"), scale=100.0),
    "csat": KpiSpec("silver/surveys", ("all", "channel", "region", "customer_type")),
    "complaint_rate": KpiSpec(
        "silver/complaints", ("all", "region", "customer_type"), scale=1000.0
    ),
    "marketing_success_rate": KpiSpec(
        "silver/campaign_contacts", ("all", "channel", "region", "customer_type")
    ),
}


class CatalogError(ValueError):
    """A KPI definition file is invalid; the message names the file, KPI id and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KpiTarget(_Model):
    direction: Literal["higher", "lower"]  # which way is better
    threshold: float
    # rows the target applies to: "dimension" or "dimension=value"; null = every row
    scope: list[str] | None = None


class KpiDefinition(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    version: int = Field(ge=1)
    unit: str = Field(min_length=1)
    dimensions: list[Literal[DIMENSIONS]] = Field(min_length=1)  # type: ignore[valid-type]
    target: KpiTarget

    @field_validator("dimensions")
    @classmethod
    def _unique(cls, dims: list[str]) -> list[str]:
        if len(set(dims)) != len(dims):
            raise ValueError(f"dimensions listed twice: {dims}")
        return dims


def _check_definition(kpi: KpiDefinition, where: str) -> None:
    spec = IMPLEMENTED.get(kpi.id)
    if spec is None:
        raise CatalogError(f"{where}: KPI {kpi.id}: id: no such KPI (known: {sorted(IMPLEMENTED)})")
    unsupported = [d for d in kpi.dimensions if d not in spec.dimensions]
    if unsupported:
        raise CatalogError(
            f"{where}: KPI {kpi.id}: dimensions: {unsupported} not available for this KPI "
            f"(available: {list(spec.dimensions)})"
        )
    for entry in kpi.target.scope or []:
        dim = entry.partition("=")[0]
        if dim not in kpi.dimensions:
            raise CatalogError(
                f"{where}: KPI {kpi.id}: target.scope: {entry!r} names dimension {dim!r}, "
                f"not one of this KPI's dimensions {kpi.dimensions}"
            )


def load_catalog(kpi_dir: str | Path) -> dict[str, KpiDefinition]:
    """Read and validate every ``<kpi_dir>/*.yaml`` (one KPI per file, named after its id).

    Raises:
        CatalogError: naming the file, the KPI id and the bad key (unknown dimension,
            missing target field, unknown KPI id, duplicate id, ...).
    """
    kpi_dir = Path(kpi_dir)
    files = sorted(kpi_dir.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{kpi_dir}: no KPI definitions (*.yaml)")
    catalog: dict[str, KpiDefinition] = {}
    for path in files:
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise CatalogError(f"{path}: top level must be a mapping")
        kpi_id = raw.get("id", path.stem)
        try:
            kpi = KpiDefinition.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
                for e in exc.errors()
            )
            raise CatalogError(f"{path}: KPI {kpi_id}: {problems}") from None
        if kpi.id != path.stem:
            raise CatalogError(f"{path}: KPI {kpi.id}: id: must equal the file name {path.stem!r}")
        _check_definition(kpi, str(path))
        catalog[kpi.id] = kpi
    return catalog


def lookahead_days(catalog: dict[str, KpiDefinition], windows: dict[str, int]) -> dict[str, int]:
    """Days after a KPI's date that must have passed before its value is final."""
    return {
        k: windows[IMPLEMENTED[k].lookahead] if IMPLEMENTED[k].lookahead else 0 for k in catalog
    }


# ---------------------------------------------------------------------------- helpers
def _flag(condition: Column) -> Column:
    return F.coalesce(condition, F.lit(False)).cast("double")


def _fact(
    kpi_id: str,
    kpi_date: Column,
    numerator: Column,
    denominator: Column,
    channel: Column | None = None,
    queue: Column | None = None,
) -> list[Column]:
    null = F.lit(None).cast("string")
    return [
        F.lit(kpi_id).alias("kpi_id"),
        kpi_date.alias("kpi_date"),
        F.col("customer_key"),
        (null if channel is None else channel).alias("channel"),
        (null if queue is None else queue).alias("queue"),
        numerator.cast("double").alias("numerator"),
        denominator.cast("double").alias("denominator"),
    ]


def _gap_us(later: Column, earlier: Column) -> Column:
    return F.unix_micros(later) - F.unix_micros(earlier)


def inbound(contacts: DataFrame) -> DataFrame:
    """Inbound contacts only (``direction`` = inbound)."""
    return contacts.where(F.col("direction") == "inbound")


def followed_contacts(contacts: DataFrame, customers: DataFrame, base: str) -> DataFrame:
    """The contacts counted by the KPIs that follow a customer over time (repeat, FCR,
    concentration, channel shift).

    Identity resolution also gives keys to identifiers it could not tie to a CRM customer
    (an app install or WeChat follower never logged in, a number not in the CRM). Such a key
    sees one channel of a customer whose other contacts sit under their CRM key, so its
    cross-channel repeats are invisible: with ``base="any_key"`` the repeat rate falls as
    contacts move to digital channels although nothing got better.

    Args:
        contacts: needs ``customer_key``.
        customers: silver/customers (``customer_key``).
        base: ``"crm"``: contacts whose ``customer_key`` is a CRM customer's;
            ``"any_key"``: every contact with a ``customer_key``.

    Returns:
        ``contacts`` restricted to those rows.
    """
    if base == "any_key":
        return contacts.where(F.col("customer_key").isNotNull())
    if base == "crm":
        keys = customers.select("customer_key").distinct()
        return contacts.join(keys, "customer_key", "left_semi")
    raise ValueError(f"customer base {base!r}: expected 'crm' or 'any_key'")


# ---------------------------------------------------------------------------- facts
def repeat_facts(contacts: DataFrame, window_days: int, unknown_resolved: str) -> DataFrame:
    """Repeat contact rate and first contact resolution, one fact row per contact.

    A contact is *repeated* when the same ``customer_key`` starts another contact (any
    channel) less than or exactly ``window_days`` x 24 h after it. FCR: resolved and not
    repeated; ``resolved`` null is treated as ``unknown_resolved`` says ("resolved": the
    absence of a repeat is the evidence; "unresolved"; "excluded" from the FCR base).

    Args:
        contacts: inbound contacts with ``customer_key, contact_id, contact_date, start_ts,
            channel, queue, resolved``; must include ``window_days`` after the last date
            reported, or that date's rates are provisional.
        window_days: repeat window N.
        unknown_resolved: "resolved", "unresolved" or "excluded".

    Returns:
        ``FACT_COLUMNS`` for ``repeat_contact_rate`` and ``first_contact_resolution``.
    """
    if unknown_resolved not in ("resolved", "unresolved", "excluded"):
        raise ValueError(f"unknown_resolved: {unknown_resolved!r}")
    by_customer = Window.partitionBy("customer_key").orderBy("start_ts", "contact_id")
    next_start = F.lead("start_ts").over(by_customer)
    df = contacts.where(F.col("customer_key").isNotNull()).withColumn(
        "_repeated",
        F.coalesce(_gap_us(next_start, F.col("start_ts")) <= window_days * DAY_US, F.lit(False)),
    )
    resolved = F.col("resolved")
    if unknown_resolved != "excluded":
        resolved = F.coalesce(resolved, F.lit(unknown_resolved == "resolved"))
    fcr_base = resolved.isNotNull()
    day, ch, q = F.col("contact_date"), F.col("channel"), F.col("queue")
    repeat = df.select(
        *_fact("repeat_contact_rate", day, _flag(F.col("_repeated")), F.lit(1), ch, q)
    )
    fcr = df.where(fcr_base).select(
        *_fact(
            "first_contact_resolution", day, _flag(resolved & ~F.col("_repeated")), F.lit(1), ch, q
        )
    )
    return repeat.unionByName(fcr)


def handling_facts(
    contacts: DataFrame, short_abandon_s: float, service_level_s: float
) -> DataFrame:
    """Operational KPIs, one fact row per contact and KPI that applies to it.

    * ``average_handle_time``: talk + hold + wrap-up seconds of agent-handled contacts with
      a talk time (voice; digital agent sessions have no talk/hold/wrap-up split).
    * ``average_speed_of_answer``: ``wait_s`` of answered contacts.
    * ``abandon_rate``: abandoned among contacts offered to an agent queue (``queue_ts``
      set), both without short abandons (abandoned after waiting < ``short_abandon_s``).
    * ``service_level``: answered within ``service_level_s`` among the same offered base.
    * ``transfer_rate``: transferred among agent-handled contacts.
    * ``agent_handled_share``: agent-handled among all contacts (manual traffic share).
    * ``channel_mix``: numerator 1 per contact (denominator filled by :func:`aggregate_facts`).
    * ``complaint_rate`` denominator: 1 per contact.

    Args:
        contacts: inbound contacts (``CONTACT_COLUMNS`` + ``customer_key``).

    Returns:
        ``FACT_COLUMNS``.
    """
    day, ch, q = F.col("contact_date"), F.col("channel"), F.col("queue")
    agent = F.coalesce(F.col("handled_by_agent"), F.lit(False))
    answered = F.col("answer_ts").isNotNull()
    abandoned = F.coalesce(F.col("abandoned"), F.lit(False))
    short = abandoned & (F.coalesce(F.col("wait_s"), F.lit(0.0)) < short_abandon_s)
    offered = F.col("queue_ts").isNotNull() & ~short
    handle = F.col("talk_s") + F.coalesce("hold_s", F.lit(0.0)) + F.coalesce("wrapup_s", F.lit(0.0))
    within = answered & (F.col("wait_s") <= service_level_s)
    parts = [
        (agent & F.col("talk_s").isNotNull(), "average_handle_time", handle),
        (answered & F.col("wait_s").isNotNull(), "average_speed_of_answer", F.col("wait_s")),
        (offered, "abandon_rate", _flag(abandoned)),
        (offered, "service_level", _flag(within)),
        (agent, "transfer_rate", _flag(F.col("transferred"))),
        (F.lit(True), "agent_handled_share", _flag(agent)),
    ]
    out = [
        contacts.where(cond).select(*_fact(k, day, num, F.lit(1), ch, q)) for cond, k, num in parts
    ]
    out.append(contacts.select(*_fact("channel_mix", day, F.lit(1), F.lit(0), ch)))
    out.append(contacts.select(*_fact("complaint_rate", day, F.lit(0), F.lit(1), ch)))
    result = out[0]
    for df in out[1:]:
        result = result.unionByName(df)
    return result


def shift_facts(
    contacts: DataFrame, hotline: list[str], digital: list[str], window_days: int
) -> DataFrame:
    """Channel shift between the hotline and digital channels, one fact row per
    customer-day and KPI (N = ``window_days`` x 24 h, "after" = strictly later start):

    * ``channel_diversion_rate``: customers with a hotline contact on the day; numerator:
      at least one of those hotline contacts is followed by a digital contact within N.
    * ``channel_return_rate``: customers with a digital contact on the day; numerator: at
      least one of those digital contacts is followed by a hotline contact within N.
    * ``channel_retention_rate``: customers whose digital contact on the day came within N
      after a hotline contact (diverted customers); numerator: no hotline contact within N
      after their last digital contact of the day (they stayed digital).

    Args:
        contacts: inbound contacts with ``customer_key, contact_id, contact_date, start_ts,
            channel``, from N days before the first date reported (retention looks back)
            to N days after the last (or those rates are provisional).

    Returns:
        ``FACT_COLUMNS`` (channel and queue null).
    """
    is_hot = F.col("channel").isin(hotline)
    is_dig = F.col("channel").isin(digital)
    order = Window.partitionBy("customer_key").orderBy("start_ts", "contact_id")
    after = order.rowsBetween(1, Window.unboundedFollowing)
    before = order.rowsBetween(Window.unboundedPreceding, -1)
    ts = F.col("start_ts")
    within = window_days * DAY_US

    def close(later: Column, earlier: Column) -> Column:
        return F.coalesce(_gap_us(later, earlier) <= within, F.lit(False))

    df = (
        contacts.where(F.col("customer_key").isNotNull() & (is_hot | is_dig))
        .withColumn("_hot", is_hot)
        .withColumn("_next_dig", F.min(F.when(is_dig, ts)).over(after))
        .withColumn("_next_hot", F.min(F.when(is_hot, ts)).over(after))
        .withColumn("_prev_hot", F.max(F.when(is_hot, ts)).over(before))
    )
    hot_days = (
        df.where("_hot")
        .groupBy("customer_key", "contact_date")
        .agg(F.max(close(F.col("_next_dig"), ts)).alias("_diverted"))
    )
    dig_days = (
        df.where(~F.col("_hot"))
        .groupBy("customer_key", "contact_date")
        .agg(
            F.max(close(F.col("_next_hot"), ts)).alias("_returned"),
            F.max(close(ts, F.col("_prev_hot"))).alias("_arrived"),
            F.max_by(close(F.col("_next_hot"), ts), ts).alias("_back_after_last"),
        )
    )
    day = F.col("contact_date")
    return (
        hot_days.select(*_fact("channel_diversion_rate", day, _flag(F.col("_diverted")), F.lit(1)))
        .unionByName(
            dig_days.select(*_fact("channel_return_rate", day, _flag(F.col("_returned")), F.lit(1)))
        )
        .unionByName(
            dig_days.where("_arrived").select(
                *_fact("channel_retention_rate", day, _flag(~F.col("_back_after_last")), F.lit(1))
            )
        )
    )


def survey_facts(surveys: DataFrame) -> DataFrame:
    """NPS and CSAT by answer date, one fact row per answered question.

    * ``nps``: numerator +1 for a promoter (9-10), -1 for a detractor (0-6), 0 for a
      passive (7-8); value = 100 x numerator / responses (-100 .. 100).
    * ``csat``: share of responses scoring 4 or 5 on the 1-5 scale (top-2-box).

    Args:
        surveys: ``silver/surveys`` (``customer_key, channel, nps, csat, answered_date``).

    Returns:
        ``FACT_COLUMNS``.
    """
    day, ch = F.col("answered_date"), F.col("channel")
    nps = F.col("nps")
    score = F.when(nps >= 9, 1).when(nps <= 6, -1).otherwise(0)
    return (
        surveys.where(nps.isNotNull() & nps.between(0, 10))
        .select(*_fact("nps", day, score, F.lit(1), ch))
        .unionByName(
            surveys.where(F.col("csat").between(1, 5)).select(
                *_fact("csat", day, _flag(F.col("csat") >= 4), F.lit(1), ch)
            )
        )
    )


def complaint_facts(complaints: DataFrame) -> DataFrame:
    """Complaint rate numerator: one per ticket opened on the day (the denominator, one
    per inbound contact, comes from :func:`handling_facts`); value = 1000 x numerator /
    denominator, complaints per 1,000 contacts.

    Args:
        complaints: ``silver/complaints`` (``customer_key, open_date``).

    Returns:
        ``FACT_COLUMNS``.
    """
    return complaints.select(*_fact("complaint_rate", F.col("open_date"), F.lit(1), F.lit(0)))


def campaign_facts(attempts: DataFrame) -> DataFrame:
    """Outbound marketing success rate: responded among connected treatment attempts.

    Args:
        attempts: ``silver/campaign_contacts`` (``group, connected, responded,
            attempt_date, channel, customer_key``).

    Returns:
        ``FACT_COLUMNS``.
    """
    base = attempts.where((F.col("group") == "treatment") & F.coalesce("connected", F.lit(False)))
    return base.select(
        *_fact(
            "marketing_success_rate",
            F.col("attempt_date"),
            _flag(F.col("responded")),
            F.lit(1),
            F.col("channel"),
        )
    )


# ---------------------------------------------------------------------------- aggregation
def customer_attributes(
    customers: DataFrame, customer_days: DataFrame, region_attribute: str
) -> DataFrame:
    """Region and customer type of each customer on each day: the ``silver/customers``
    version valid at the end of the day (midnight UTC), else (customer created later) the
    current one.

    Args:
        customers: SCD2 rows (``customer_key, valid_from, valid_to, is_current,
            customer_type`` and ``region_attribute``).
        customer_days: ``customer_key, kpi_date``.
        region_attribute: the customers column reported as region (e.g. ``province``).

    Returns:
        ``customer_key, kpi_date, region, customer_type`` (one row per input pair that has
        a customer row).
    """
    day_end = F.to_timestamp(F.date_add(F.col("kpi_date"), 1))
    versions = customers.select(
        "customer_key",
        "valid_from",
        "valid_to",
        "is_current",
        F.col(region_attribute).cast("string").alias("region"),
        F.col("customer_type").cast("string").alias("customer_type"),
    )
    as_of = (F.col("valid_from") < day_end) & (
        F.col("valid_to").isNull() | (F.col("valid_to") >= day_end)
    )
    rank = F.when(as_of, 0).when(F.col("is_current"), 1)
    best = Window.partitionBy("customer_key", "kpi_date").orderBy(
        "_rank", F.col("valid_from").desc()
    )
    return (
        customer_days.where(F.col("customer_key").isNotNull())
        .distinct()
        .join(versions, "customer_key")
        .withColumn("_rank", rank)
        .where(F.col("_rank").isNotNull())
        .withColumn("_n", F.row_number().over(best))
        .where("_n = 1")
        .select("customer_key", "kpi_date", "region", "customer_type")
    )


def aggregate_facts(
    facts: DataFrame, attributes: DataFrame, catalog: dict[str, KpiDefinition]
) -> DataFrame:
    """Sum fact rows per KPI, day and each dimension value the catalog asks for.

    Args:
        facts: ``FACT_COLUMNS`` (KPIs missing from ``catalog`` are dropped).
        attributes: from :func:`customer_attributes`.
        catalog: KPI definitions (dimensions, ids).

    Returns:
        ``kpi_id, kpi_date, dimension, dimension_value, numerator, denominator, value``;
        ``channel_mix`` denominators are the day's total contacts.
    """
    wanted = {k: kpi.dimensions for k, kpi in catalog.items() if k != "contact_concentration"}
    if not wanted:
        return facts.sparkSession.createDataFrame([], AGG_SCHEMA)
    source = {
        "all": F.lit("all"),
        "channel": F.col("channel"),
        "queue": F.col("queue"),
        "region": F.coalesce("region", F.lit(UNKNOWN)),
        "customer_type": F.coalesce("customer_type", F.lit(UNKNOWN)),
    }
    pairs = []
    for dim, value in source.items():
        ids = [k for k, dims in wanted.items() if dim in dims]
        if ids:
            pairs.append(
                F.when(
                    F.col("kpi_id").isin(ids) & value.isNotNull(),
                    F.struct(F.lit(dim).alias("d"), value.alias("v")),
                )
            )
    stacked = (
        facts.where(F.col("kpi_id").isin(list(wanted)))
        .join(attributes, ["customer_key", "kpi_date"], "left")
        .select(
            "kpi_id",
            "kpi_date",
            "numerator",
            "denominator",
            F.explode(F.filter(F.array(*pairs), lambda p: p.isNotNull())).alias("_dim"),
        )
    )
    sums = stacked.groupBy(
        "kpi_id",
        "kpi_date",
        F.col("_dim.d").alias("dimension"),
        F.col("_dim.v").alias("dimension_value"),
    ).agg(F.sum("numerator").alias("numerator"), F.sum("denominator").alias("denominator"))
    day_total = F.sum("numerator").over(Window.partitionBy("kpi_id", "kpi_date", "dimension"))
    sums = sums.withColumn(
        "denominator",
        F.when(F.col("kpi_id") == "channel_mix", day_total).otherwise(F.col("denominator")),
    )
    return sums.withColumn("value", _scaled_value())


def _scaled_value() -> Column:
    scale = F.lit(1.0)
    for kpi_id, spec in IMPLEMENTED.items():
        if spec.scale != 1.0:
            scale = F.when(F.col("kpi_id") == kpi_id, F.lit(spec.scale)).otherwise(scale)
    return F.when(F.col("denominator") != 0, scale * F.col("numerator") / F.col("denominator"))


def _share_label(x: float) -> str:
    return f"{x:g}"


def concentration(
    contacts: DataFrame,
    start: date,
    end: date,
    window_days: int,
    top_shares: list[float],
    lorenz_points: int,
) -> DataFrame:
    """Share of contacts made by the top x of customers over a trailing window, and the
    Lorenz curve, for each day from ``start`` to ``end``.

    Customers with at least one contact in the ``window_days`` ending on the day (inclusive)
    are ranked by contacts, most first. With ``n`` customers the top share x covers
    ``x * n`` customers, fractionally: the customer at rank r contributes
    ``clamp(x * n - (r - 1), 0, 1)`` of its contacts (the continuous Lorenz curve, so ties
    and small n need no rounding rule). Lorenz point p (p = 1/k .. 1 for k =
    ``lorenz_points``) = share of contacts made by the least active p of customers
    = 1 - top share (1 - p).

    Args:
        contacts: inbound contacts with ``customer_key, contact_date`` covering
            ``start - window_days + 1`` to ``end``.

    Returns:
        ``kpi_id, kpi_date, dimension ("top_share" | "lorenz"), dimension_value (x or p as
        text, e.g. "0.14"), numerator (contacts), denominator (all contacts), value``.
    """
    days = (
        contacts.where(F.col("customer_key").isNotNull())
        .select(
            "customer_key",
            F.explode(
                F.sequence(
                    F.col("contact_date"), F.date_add(F.col("contact_date"), window_days - 1)
                )
            ).alias("kpi_date"),
        )
        .where(F.col("kpi_date").between(F.lit(start), F.lit(end)))
    )
    counts = days.groupBy("kpi_date", "customer_key").agg(
        F.count(F.lit(1)).cast("double").alias("n")
    )
    per_day = Window.partitionBy("kpi_date")
    ranked = counts.withColumn(
        "_r", F.row_number().over(per_day.orderBy(F.col("n").desc(), "customer_key"))
    ).withColumn("_customers", F.count(F.lit(1)).over(per_day))

    def top(x: float) -> Column:
        covered = F.least(
            F.greatest(F.lit(x) * F.col("_customers") - (F.col("_r") - 1), F.lit(0.0)), F.lit(1.0)
        )
        return F.sum(F.col("n") * covered)

    points = [(i / lorenz_points) for i in range(1, lorenz_points + 1)]
    aggs = [F.sum("n").alias("_total")]
    aggs += [top(x).alias(f"_top{i}") for i, x in enumerate(top_shares)]
    aggs += [top(1.0 - p).alias(f"_low{i}") for i, p in enumerate(points)]
    per_date = ranked.groupBy("kpi_date").agg(*aggs)
    rows = [
        F.struct(
            F.lit("top_share").alias("d"),
            F.lit(_share_label(x)).alias("v"),
            F.col(f"_top{i}").alias("num"),
        )
        for i, x in enumerate(top_shares)
    ] + [
        F.struct(
            F.lit("lorenz").alias("d"),
            F.lit(_share_label(p)).alias("v"),
            (F.col("_total") - F.col(f"_low{i}")).alias("num"),
        )
        for i, p in enumerate(points)
    ]
    return per_date.select("kpi_date", "_total", F.explode(F.array(*rows)).alias("_row")).select(
        F.lit("contact_concentration").alias("kpi_id"),
        "kpi_date",
        F.col("_row.d").alias("dimension"),
        F.col("_row.v").alias("dimension_value"),
        F.col("_row.num").alias("numerator"),
        F.col("_total").alias("denominator"),
        (F.col("_row.num") / F.col("_total")).alias("value"),
    )


def _in_scope(kpi: KpiDefinition) -> Column:
    if not kpi.target.scope:
        return F.lit(True)
    cond = F.lit(False)
    for entry in kpi.target.scope:
        dim, sep, value = entry.partition("=")
        match = F.col("dimension") == dim
        if sep:
            match = match & (F.col("dimension_value") == value)
        cond = cond | match
    return cond


def finalize(
    aggregated: DataFrame,
    catalog: dict[str, KpiDefinition],
    run_date: date,
    lookahead: dict[str, int],
) -> DataFrame:
    """Add version, target, breach and completeness: ``KPI_DAILY_SCHEMA`` rows.

    ``target`` is set on the rows inside the KPI's target scope; ``breach`` is true when the
    value is on the wrong side of it (below for "higher", above for "lower"), null without
    a target or a value. ``complete`` is false while ``kpi_date + lookahead > run_date``.

    Args:
        aggregated: ``kpi_id, kpi_date, dimension, dimension_value, numerator,
            denominator, value`` (from :func:`aggregate_facts` / :func:`concentration`).
        catalog: KPI definitions (only these ids are kept).
        run_date: the run's business date.
        lookahead: days per KPI id (:func:`lookahead_days`).
    """
    version = target = breach = complete = F.lit(None)
    value = F.col("value")
    for kpi_id, kpi in catalog.items():
        is_kpi = F.col("kpi_id") == kpi_id
        t = F.when(_in_scope(kpi), F.lit(kpi.target.threshold))
        worse = value < t if kpi.target.direction == "higher" else value > t
        version = F.when(is_kpi, F.lit(kpi.version)).otherwise(version)
        target = F.when(is_kpi, t).otherwise(target)
        breach = F.when(is_kpi, worse).otherwise(breach)
        ready = F.date_add(F.col("kpi_date"), lookahead.get(kpi_id, 0)) <= F.lit(run_date)
        complete = F.when(is_kpi, ready).otherwise(complete)
    return aggregated.where(F.col("kpi_id").isin(list(catalog))).select(
        F.col("kpi_date").cast("date"),
        F.col("kpi_id").cast("string"),
        version.cast("int").alias("kpi_version"),
        F.col("dimension").cast("string"),
        F.col("dimension_value").cast("string"),
        value.cast("double").alias("value"),
        F.col("numerator").cast("double"),
        F.col("denominator").cast("double"),
        target.cast("double").alias("target"),
        breach.cast("boolean").alias("breach"),
        complete.cast("boolean").alias("complete"),
    )


def alerts(
    daily: DataFrame,
    start: date,
    end: date,
    history_days: int,
    min_history: int,
    z: float,
    min_denominator: float,
) -> DataFrame:
    """Alerts for the complete KPI rows dated ``start`` .. ``end`` whose denominator is at
    least ``min_denominator`` (a region with three calls breaches any target by chance).

    * ``target_breach``: ``breach`` is true.
    * ``anomaly``: the value is more than ``z`` sample standard deviations from the mean
      of the same KPI, version and dimension value over the ``history_days`` before the
      day (complete rows only, at least ``min_history`` of them, standard deviation > 0).

    Args:
        daily: ``KPI_DAILY_SCHEMA`` rows from ``start - history_days`` to ``end``.

    Returns:
        ``KPI_ALERTS_SCHEMA`` rows.
    """
    keys = ["kpi_id", "kpi_version", "dimension", "dimension_value"]
    current = daily.where(
        F.col("kpi_date").between(F.lit(start), F.lit(end))
        & F.col("complete")
        & F.col("value").isNotNull()
        & (F.col("denominator") >= min_denominator)
    )
    fmt = "%.4g"
    breaches = current.where(F.col("breach")).select(
        "kpi_date",
        *keys,
        "value",
        "target",
        F.lit("target_breach").alias("kind"),
        F.format_string(
            f"value {fmt} is %s target {fmt}",
            "value",
            F.when(F.col("value") > F.col("target"), "above").otherwise("below"),
            "target",
        ).alias("detail"),
    )
    history = daily.where(F.col("complete") & F.col("value").isNotNull()).select(
        *keys, F.col("kpi_date").alias("_h_date"), F.col("value").alias("_h_value")
    )
    joined = current.join(history, keys).where(
        (F.col("_h_date") < F.col("kpi_date"))
        & (F.col("_h_date") >= F.date_sub(F.col("kpi_date"), history_days))
    )
    stats = joined.groupBy("kpi_date", *keys, "value", "target").agg(
        F.avg("_h_value").alias("_mean"),
        F.stddev_samp("_h_value").alias("_sd"),
        F.count(F.lit(1)).alias("_n"),
    )
    deviation = (F.col("value") - F.col("_mean")) / F.col("_sd")
    anomalies = stats.where(
        (F.col("_n") >= min_history) & (F.col("_sd") > 0) & (F.abs(deviation) > z)
    ).select(
        "kpi_date",
        *keys,
        "value",
        "target",
        F.lit("anomaly").alias("kind"),
        F.format_string(
            f"value {fmt} is %+.1f sd from the trailing %d-day mean {fmt} (sd {fmt}, n=%d)",
            "value",
            deviation,
            F.lit(history_days),
            "_mean",
            "_sd",
            "_n",
        ).alias("detail"),
    )
    return breaches.unionByName(anomalies).select(*KPI_ALERTS_SCHEMA.fieldNames())


def report_dates(run_date: date, restate_days: int) -> list[date]:
    """The run date and the ``restate_days`` before it, oldest first."""
    return [run_date - timedelta(days=i) for i in range(restate_days, -1, -1)]
