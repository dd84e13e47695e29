"""Audiences and marketing tags for the touchpoints, under a contact policy and privacy.

An audience file in ``conf/audiences/`` holds one audience::

    id: retention_call_high_churn     # unique; the export file name
    name: Retention call for valuable customers at churn risk
    campaign_id: CMP202503
    offer: RETENTION_DISCOUNT
    channel: outbound_call            # a key of publish.channels
    purpose: marketing                # marketing | service (service skips the marketing rules)
    priority: 2                       # 1 is the highest; unique among active audiences
    size_cap: 500                     # at most this many customers, the best ranked
    expression: "churn_risk = 'high' AND value_tier IN ('high', 'medium')"  # over the portrait
    rank_by: uplift                   # none | uplift | churn_probability
    send_time: null                   # planned local HH:MM; null: the channel's send window
    status: active                    # active | paused

The contact policy, each rule a function that marks ``exclusion`` on the candidates it
excludes (the first rule to exclude a candidate names the reason):

=============================  ===========================================================
``do_not_contact:<reason>``    listed by customer id or phone (every purpose)
``no_consent``                 no profiling consent, or (marketing) no consent for the channel
``open_complaint``             (marketing) a complaint open at the cut-off
``unresolved_repeat_contact``  (marketing) 2+ inbound contacts in the recent window, the last
                               not resolved
``frequency_cap``              (marketing, capped channels) one more contact would exceed a cap
``quiet_hours``                the audience's send time / window lies inside quiet hours
``higher_priority_audience``   the customer went to a higher-priority audience
``size_cap``                   ranked beyond the audience's size cap
=============================  ===========================================================

Time model: the job publishes for run date D after D's data; the cut-off is the end of D
in ``publish.timezone``, and the audience is contacted on D + ``contact_lag_days`` inside
its send window: the audience's ``send_time`` when given (it must lie outside the
channel's quiet hours), else the channel's send window minus its quiet hours.

Pure functions apart from :func:`load_audiences` (reads YAML) and :func:`pseudonym_key`
(reads the environment).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructType

MARKETING = "marketing"
DO_NOT_CONTACT = "do_not_contact"
NO_CONSENT = "no_consent"
OPEN_COMPLAINT = "open_complaint"
UNRESOLVED_REPEAT = "unresolved_repeat_contact"
FREQUENCY_CAP = "frequency_cap"
QUIET_HOURS = "quiet_hours"
HIGHER_PRIORITY = "higher_priority_audience"
SIZE_CAP = "size_cap"

# Score tables audiences may rank by (uplift from jobs.train_uplift, churn from jobs.score).
SCORE_SOURCES = {
    "uplift": (
        "gold/uplift_scores",
        "snapshot_date date, customer_key string, campaign_id string, uplift double, "
        "model_name string, model_version string",
    ),
    "churn_probability": (
        "gold/churn_scores",
        "snapshot_date date, customer_key string, churn_probability double, "
        "model_name string, model_version string",
    ),
}
DO_NOT_CONTACT_SCHEMA = "customer_id string, phone string, reason string, added_date date"
AUDIENCES_SCHEMA = (
    "snapshot_date date, contact_date date, campaign_id string, audience_id string, "
    "offer string, channel string, purpose string, priority int, frequency_capped boolean, "
    "send_window string, pseudo_id string, customer_key string, rank int, score double, "
    "score_name string, reason string, expression string, tag_versions map<string,int>, "
    "model_name string, model_version string"
)
EXCLUSIONS_SCHEMA = (
    "snapshot_date date, campaign_id string, audience_id string, channel string, "
    "reason string, customers long, detail string"
)

# PII patterns (Java regex, Spark rlike). A match must be a whole token: digits glued to
# letters (hex hashes, ids) are not phone or id-card numbers.
_EDGE_BEFORE = r"(?<![0-9A-Za-z+])"
_EDGE_AFTER = r"(?![0-9A-Za-z])"
PII_PATTERNS = {
    "cn_mobile": _EDGE_BEFORE + r"(?:(?:\+|00)?86[ -]?)?1[3-9][0-9]{9}" + _EDGE_AFTER,
    "e164_phone": r"(?<![0-9A-Za-z])\+[1-9][0-9]{7,14}" + _EDGE_AFTER,
    "id_card": _EDGE_BEFORE + r"[1-9][0-9]{16}[0-9Xx]" + _EDGE_AFTER,
}


class AudienceError(ValueError):
    """An audience file is invalid; the message names the file and the audience id."""


class PseudonymKeyError(RuntimeError):
    """The pseudonymisation key is missing or too short."""


class AudienceSpec(BaseModel):
    """One audience definition (one file of conf/audiences/)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    name: str = Field(min_length=1)
    campaign_id: str = Field(min_length=1)
    offer: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    purpose: Literal["marketing", "service"]
    priority: int = Field(ge=1)
    size_cap: int = Field(ge=0)
    expression: str = Field(min_length=1)
    rank_by: Literal["none", "uplift", "churn_probability"]
    send_time: str | None = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    status: Literal["active", "paused"]
    owner: str = Field(min_length=1)
    description: str = Field(min_length=1)


@dataclass(frozen=True)
class Audience:
    spec: AudienceSpec
    file: str  # the file it came from (for error messages)

    @property
    def id(self) -> str:
        return self.spec.id


# ------------------------------------------------------------------ catalog
def load_audiences(folder: str | Path, channels: list[str]) -> list[Audience]:
    """Read and check every ``*.yaml`` of the folder; returns the active audiences.

    Raises:
        AudienceError: bad YAML, a field the schema rejects, an unknown channel, a
            duplicate id, or two active audiences with the same priority (the message
            names the file(s) and audience id).
    """
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise AudienceError(f"no audience files (*.yaml) in {folder}")
    found: list[Audience] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise AudienceError(f"{path}: not valid YAML: {exc}") from exc
        audience_id = data.get("id", "?") if isinstance(data, dict) else "?"
        try:
            spec = AudienceSpec.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '<audience>'}: {e['msg']}"
                for e in exc.errors()
            )
            raise AudienceError(f"audience {audience_id} ({path}): {problems}") from None
        if spec.channel not in channels:
            raise AudienceError(
                f"audience {spec.id} ({path}): channel {spec.channel!r} is not one of "
                f"publish.channels {sorted(channels)}"
            )
        for other in found:
            if other.id == spec.id:
                raise AudienceError(f"audience {spec.id} ({path}): id already used in {other.file}")
        found.append(Audience(spec, str(path)))
    active = [a for a in found if a.spec.status == "active"]
    by_priority: dict[int, Audience] = {}
    for audience in active:
        other = by_priority.setdefault(audience.spec.priority, audience)
        if other is not audience:
            raise AudienceError(
                f"audience {audience.id} ({audience.file}): priority {audience.spec.priority} "
                f"already used by {other.id} ({other.file}); priorities must be unique"
            )
    return sorted(active, key=lambda a: a.spec.priority)


def validate_audiences(spark: SparkSession, audiences: list[Audience], schema: StructType) -> None:
    """Resolve each audience's expression against the portrait schema (no Spark job).

    Raises:
        AudienceError: naming the audience id, its file and Spark's reason, or saying the
            expression is not a boolean condition.
    """
    empty = spark.createDataFrame([], schema)
    for audience in audiences:
        try:
            kind = empty.selectExpr(f"({audience.spec.expression}) AS _match").schema[0].dataType
        except AnalysisException as exc:
            reason = str(exc).strip().splitlines()[0]
            raise AudienceError(
                f"audience {audience.id} ({audience.file}): expression does not resolve "
                f"against gold/customer_portrait: {reason}"
            ) from None
        if not isinstance(kind, BooleanType):
            raise AudienceError(
                f"audience {audience.id} ({audience.file}): expression must be a condition "
                f"(boolean), it is {kind.simpleString()}"
            )


def referenced_tags(expression: str, tag_columns: list[str]) -> list[str]:
    """Portrait tag columns an expression names, in portrait order."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression))
    return [c for c in tag_columns if c in words]


# ------------------------------------------------------------------ time
def cutoff_utc(run_date: date, timezone: str) -> datetime:
    """End of the run date in the business time zone, as a naive UTC datetime."""
    local_end = datetime.combine(run_date + timedelta(days=1), datetime.min.time())
    aware = local_end.replace(tzinfo=ZoneInfo(timezone))
    return aware.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def _ts(moment: datetime) -> Column:
    # naive UTC datetime -> timestamp literal (the session time zone is UTC)
    return F.to_timestamp(F.lit(moment.isoformat(sep=" ")))


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _covered(window: list[str] | None) -> set[int]:
    """Minutes of the day in [start, end); wraps midnight; start == end is the whole day."""
    if window is None:
        return set()
    start, end = _minutes(window[0]), _minutes(window[1])
    if start == end:
        return set(range(1440))
    if start < end:
        return set(range(start, end))
    return set(range(start, 1440)) | set(range(0, end))


def send_window(
    channel_window: list[str], quiet_hours: list[str] | None, send_time: str | None
) -> str | None:
    """When an audience may be contacted: ``"HH:MM-HH:MM[,...]"``, or None if never.

    Args:
        channel_window: the channel's ``[start, end)`` local send window.
        quiet_hours: the channel's ``[start, end)`` quiet hours, or None.
        send_time: the audience's planned send time; replaces the channel window.
    """
    quiet = _covered(quiet_hours)
    if send_time is not None:
        return None if _minutes(send_time) in quiet else send_time
    allowed = sorted(_covered(channel_window) - quiet)
    if not allowed:
        return None
    if len(allowed) == 1440:
        return "00:00-24:00"
    pieces: list[list[int]] = []
    for minute in allowed:
        if pieces and pieces[-1][1] == minute:
            pieces[-1][1] = minute + 1
        else:
            pieces.append([minute, minute + 1])
    if len(pieces) > 1 and pieces[0][0] == 0 and pieces[-1][1] == 1440:  # wraps midnight
        pieces[0][0] = pieces.pop()[0]
    return ",".join(f"{_clock(s)}-{_clock(e)}" for s, e in pieces)


# ------------------------------------------------------------------ pseudonyms
def pseudonym_key(env_var: str, min_bytes: int) -> bytes:
    """The HMAC key from the environment variable ``env_var``.

    Raises:
        PseudonymKeyError: the variable is unset, empty or shorter than ``min_bytes``.
    """
    value = os.environ.get(env_var)
    if not value:
        raise PseudonymKeyError(
            f"environment variable {env_var} (publish.pseudonym_key_env) is not set: it holds "
            "the secret key of the pseudonymous ids and is never stored in files"
        )
    key = value.encode("utf-8")
    if len(key) < min_bytes:
        raise PseudonymKeyError(
            f"{env_var} holds {len(key)} bytes; publish.pseudonym_key_min_bytes is {min_bytes}"
        )
    return key


def pseudonym(column: str, key: bytes) -> Column:
    """HMAC-SHA256 of ``column`` (UTF-8) with ``key``, as 64 lower-case hex characters.

    A pandas UDF, so the key stays out of the query plan (a literal would show it in
    explain output and the Spark UI).
    """

    def digest(values: pd.Series) -> pd.Series:
        return values.map(
            lambda v: None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()
        )

    return F.pandas_udf(digest, "string")(F.col(column))


# ------------------------------------------------------------------ inputs as of a date
def customers_as_of(customers: DataFrame, as_of: datetime) -> DataFrame:
    """The customer version valid at ``as_of`` (naive UTC) from the SCD2 ``silver/customers``.

    Returns:
        The same columns, one row per customer_key (the latest valid_from wins a tie).
    """
    at = _ts(as_of)
    valid = customers.where(
        (F.col("valid_from") <= at) & (F.col("valid_to").isNull() | (F.col("valid_to") > at))
    )
    latest = Window.partitionBy("customer_key").orderBy(
        F.col("valid_from").desc(), F.col("customer_id")
    )
    return valid.withColumn("_n", F.row_number().over(latest)).where("_n = 1").drop("_n")


def latest_scores(scores: DataFrame, as_of_date: date, keys: list[str]) -> DataFrame:
    """Each key's score of the latest snapshot up to ``as_of_date``.

    Args:
        scores: ``snapshot_date``, ``keys`` and score columns.

    Returns:
        The same columns, one row per ``keys``.
    """
    order = Window.partitionBy(*keys).orderBy(F.col("snapshot_date").desc())
    return (
        scores.where(F.col("snapshot_date") <= F.lit(as_of_date))
        .withColumn("_n", F.row_number().over(order))
        .where("_n = 1")
        .drop("_n")
    )


# ------------------------------------------------------------------ candidates
def audience_candidates(
    portrait: DataFrame,
    audiences: list[Audience],
    tag_versions: dict[str, int],
    frequency_capped: dict[str, bool],
) -> DataFrame:
    """Customers whose portrait matches each audience's expression.

    Args:
        portrait: one snapshot of ``gold/customer_portrait`` (``snapshot_date,
            customer_key``, one string column per tag).
        tag_versions: tag id -> version of that snapshot (tags not listed get null).
        frequency_capped: channel -> whether its marketing contacts are capped.

    Returns:
        ``snapshot_date, campaign_id, audience_id, offer, channel, purpose, priority,
        frequency_capped, customer_key, reason`` (the values of the tags the expression
        names, ``tag=value; ...``), ``expression, tag_versions, exclusion`` (null).
    """
    tags = [c for c in portrait.columns if c not in ("snapshot_date", "customer_key")]
    parts = []
    for audience in audiences:
        spec = audience.spec
        used = referenced_tags(spec.expression, tags)
        reason = F.concat_ws(
            "; ", *[F.concat(F.lit(f"{t}="), F.coalesce(F.col(t), F.lit("null"))) for t in used]
        )
        versions = F.create_map(
            *[x for t in used for x in (F.lit(t), F.lit(tag_versions.get(t)).cast("int"))]
        )
        parts.append(
            portrait.where(F.expr(spec.expression)).select(
                "snapshot_date",
                F.lit(spec.campaign_id).alias("campaign_id"),
                F.lit(spec.id).alias("audience_id"),
                F.lit(spec.offer).alias("offer"),
                F.lit(spec.channel).alias("channel"),
                F.lit(spec.purpose).alias("purpose"),
                F.lit(spec.priority).alias("priority"),
                F.lit(frequency_capped[spec.channel]).alias("frequency_capped"),
                "customer_key",
                reason.alias("reason"),
                F.lit(spec.expression).alias("expression"),
                versions.cast("map<string,int>").alias("tag_versions"),
                F.lit(None).cast("string").alias("exclusion"),
            )
        )
    candidates = parts[0]
    for more in parts[1:]:
        candidates = candidates.unionByName(more)
    return candidates


def attach_scores(
    candidates: DataFrame,
    audiences: list[Audience],
    churn: DataFrame | None,
    uplift: DataFrame | None,
) -> DataFrame:
    """Add each candidate's ranking score per its audience's ``rank_by``.

    Args:
        churn: latest ``customer_key, churn_probability, model_name, model_version`` per
            customer, or None (table missing: churn-ranked audiences get null scores).
        uplift: latest ``customer_key, campaign_id, uplift, model_name, model_version`` per
            customer and campaign, or None.

    Returns:
        ``candidates`` plus ``score, score_name, model_name, model_version`` (null when the
        audience is not ranked or the customer has no score).
    """
    rank_by = F.create_map(*[x for a in audiences for x in (F.lit(a.id), F.lit(a.spec.rank_by))])
    df = candidates.withColumn("_rank_by", F.element_at(rank_by, F.col("audience_id")))
    empty = "customer_key string, campaign_id string, score double, name string, version string"
    spark = candidates.sparkSession
    churn_rows = (
        spark.createDataFrame([], empty).drop("campaign_id")
        if churn is None
        else churn.select(
            "customer_key",
            F.col("churn_probability").alias("score"),
            F.col("model_name").alias("name"),
            F.col("model_version").alias("version"),
        )
    ).withColumn("_rank_by", F.lit("churn_probability"))
    uplift_rows = (
        spark.createDataFrame([], empty)
        if uplift is None
        else uplift.select(
            "customer_key",
            "campaign_id",
            F.col("uplift").alias("score"),
            F.col("model_name").alias("name"),
            F.col("model_version").alias("version"),
        )
    ).withColumn("_rank_by", F.lit("uplift"))
    df = df.join(
        churn_rows.withColumnsRenamed({"score": "_c", "name": "_cn", "version": "_cv"}),
        ["customer_key", "_rank_by"],
        "left",
    )
    df = df.join(
        uplift_rows.withColumnsRenamed({"score": "_u", "name": "_un", "version": "_uv"}),
        ["customer_key", "campaign_id", "_rank_by"],
        "left",
    )
    return df.select(
        *candidates.columns,
        F.coalesce("_c", "_u").alias("score"),
        F.when(F.col("_rank_by") != "none", F.col("_rank_by")).alias("score_name"),
        F.coalesce("_cn", "_un").alias("model_name"),
        F.coalesce("_cv", "_uv").alias("model_version"),
    )


# ------------------------------------------------------------------ policy rules
def _mark(joined: DataFrame, hit: Column, reason: Column | str, columns: list[str]) -> DataFrame:
    """Set ``exclusion`` to ``reason`` where ``hit`` and no earlier rule excluded.

    Returns ``columns`` only (the candidates' columns in their order, helpers dropped).
    """
    reason = F.lit(reason) if isinstance(reason, str) else reason
    marked = F.coalesce(F.col("exclusion"), F.when(hit, reason)).alias("exclusion")
    return joined.select(*[marked if c == "exclusion" else F.col(c) for c in columns])


def _marketing() -> Column:
    return F.col("purpose") == MARKETING


def do_not_contact_rule(
    candidates: DataFrame, do_not_contact: DataFrame, customers: DataFrame, as_of_date: date
) -> DataFrame:
    """Exclude customers on the do-not-contact list (every purpose and channel).

    A list entry matches by ``customer_id`` or by ``phone`` (E.164) against the customer's
    primary or secondary phone; entries added after ``as_of_date`` do not apply yet.

    Args:
        do_not_contact: ``customer_id, phone, reason, added_date``.
        customers: ``customer_key, customer_id, primary_phone, secondary_phone`` as of the
            cut-off (:func:`customers_as_of`).

    Returns:
        ``candidates`` with ``exclusion = "do_not_contact:<reason>"`` (the alphabetically
        first reason when several entries match).
    """
    listed = do_not_contact.where(F.col("added_date") <= F.lit(as_of_date))
    phones = customers.select(
        "customer_key",
        "customer_id",
        F.explode(F.array_compact(F.array("primary_phone", "secondary_phone"))).alias("phone"),
    )
    by_id = customers.join(listed.where(F.col("customer_id").isNotNull()), "customer_id")
    by_phone = phones.join(listed.where(F.col("phone").isNotNull()).drop("customer_id"), "phone")
    reasons = (
        by_id.select("customer_key", "reason")
        .unionByName(by_phone.select("customer_key", "reason"))
        .groupBy("customer_key")
        .agg(F.min(F.coalesce("reason", F.lit("unspecified"))).alias("_dnc"))
    )
    return _mark(
        candidates.join(reasons, "customer_key", "left"),
        F.col("_dnc").isNotNull(),
        F.concat(F.lit(f"{DO_NOT_CONTACT}:"), F.col("_dnc")),
        candidates.columns,
    )


def consent_rule(
    candidates: DataFrame,
    customers: DataFrame,
    channel_consent: dict[str, str | None],
    profiling_column: str | None,
) -> DataFrame:
    """Exclude customers without the consents their audience needs (null is no consent).

    Every audience is built from profile tags, so it needs ``profiling_column`` (when set);
    a marketing audience also needs its channel's consent column. A candidate without a
    customer record (no CRM customer) has no consent.

    Args:
        customers: ``customer_key`` and the consent columns, as of the cut-off.
        channel_consent: channel -> consent column (None: the channel needs none).

    Returns:
        ``candidates`` with ``exclusion = "no_consent"``.
    """
    columns = sorted({c for c in channel_consent.values() if c} | {profiling_column} - {None})
    flags = customers.select("customer_key", *[F.col(c).alias(f"_c_{c}") for c in columns])
    df = candidates.join(flags, "customer_key", "left")
    ok = F.lit(True)
    if profiling_column:
        ok = ok & F.coalesce(F.col(f"_c_{profiling_column}"), F.lit(False))
    channel_ok = F.lit(True)
    for channel, column in channel_consent.items():
        if column:
            channel_ok = F.when(
                F.col("channel") == channel, F.coalesce(F.col(f"_c_{column}"), F.lit(False))
            ).otherwise(channel_ok)
    hit = ~(ok & (~_marketing() | channel_ok))
    return _mark(df, hit, NO_CONSENT, candidates.columns)


def open_complaint_rule(candidates: DataFrame, complaints: DataFrame, as_of: datetime) -> DataFrame:
    """Exclude marketing candidates with a complaint open at ``as_of`` (naive UTC).

    Open: ``open_ts <= as_of`` and not closed by then (``close_ts`` null or later).

    Args:
        complaints: ``customer_key, open_ts, close_ts`` (``silver/complaints``).

    Returns:
        ``candidates`` with ``exclusion = "open_complaint"``.
    """
    at = _ts(as_of)
    open_now = (
        complaints.where(
            (F.col("open_ts") <= at) & (F.col("close_ts").isNull() | (F.col("close_ts") > at))
        )
        .select("customer_key")
        .distinct()
        .withColumn("_open", F.lit(True))
    )
    df = candidates.join(open_now, "customer_key", "left")
    return _mark(df, _marketing() & F.col("_open").isNotNull(), OPEN_COMPLAINT, candidates.columns)


def unresolved_repeat_rule(
    candidates: DataFrame, contacts: DataFrame, as_of: datetime, window_days: int
) -> DataFrame:
    """Exclude marketing candidates with a recent unresolved repeat contact.

    The customer made two or more inbound contacts in the ``window_days`` before ``as_of``
    and the last of them is not known to be resolved (``resolved`` false or null: voice
    never reports it, so a repeat call counts as unresolved).

    Args:
        contacts: ``customer_key, direction, start_ts, contact_id, resolved``
            (``silver/contacts``).

    Returns:
        ``candidates`` with ``exclusion = "unresolved_repeat_contact"``.
    """
    at = _ts(as_of)
    recent = contacts.where(
        (F.col("direction") == "inbound")
        & F.col("customer_key").isNotNull()
        & (F.col("start_ts") <= at)
        & (F.col("start_ts") > at - F.expr(f"INTERVAL {int(window_days)} DAYS"))
    )
    last = Window.partitionBy("customer_key").orderBy(
        F.col("start_ts").desc(), F.col("contact_id").desc()
    )
    repeats = (
        recent.withColumn("_n", F.row_number().over(last))
        .withColumn("_count", F.count(F.lit(1)).over(Window.partitionBy("customer_key")))
        .where((F.col("_n") == 1) & (F.col("_count") >= 2))
        .where(~F.coalesce(F.col("resolved"), F.lit(False)))
        .select("customer_key", F.lit(True).alias("_repeat"))
    )
    df = candidates.join(repeats, "customer_key", "left")
    hit = _marketing() & F.col("_repeat").isNotNull()
    return _mark(df, hit, UNRESOLVED_REPEAT, candidates.columns)


def marketing_contact_history(
    attempts: DataFrame, published: DataFrame | None, as_of_date: date
) -> DataFrame:
    """Marketing contacts made or planned: the input of :func:`frequency_cap_rule`.

    Made: every campaign attempt (``attempt_ts`` set; control-group holdouts have none) up
    to ``as_of_date``. Planned: audience rows published before ``as_of_date`` for a capped
    marketing channel whose customer has no attempt of that campaign since publication.

    Args:
        attempts: ``silver/campaign_contacts``.
        published: ``gold/audiences`` or None.

    Returns:
        ``customer_key, contact_date`` (one row per contact).
    """
    made = attempts.where(
        F.col("attempt_ts").isNotNull() & (F.col("attempt_date") <= F.lit(as_of_date))
    )
    history = made.select("customer_key", F.col("attempt_date").alias("contact_date"))
    if published is None:
        return history
    pending = published.where(
        (F.col("snapshot_date") < F.lit(as_of_date))
        & (F.col("purpose") == MARKETING)
        & F.col("frequency_capped")
    ).alias("p")
    contacted = made.select("customer_key", "campaign_id", "attempt_date").alias("a")
    not_yet = pending.join(
        contacted,
        (F.col("p.customer_key") == F.col("a.customer_key"))
        & (F.col("p.campaign_id") == F.col("a.campaign_id"))
        & (F.col("a.attempt_date") >= F.col("p.snapshot_date")),
        "left_anti",
    )
    return history.unionByName(not_yet.select("customer_key", "contact_date"))


def frequency_cap_rule(
    candidates: DataFrame,
    history: DataFrame,
    contact_date: date,
    caps: list[tuple[int, int]],
) -> DataFrame:
    """Exclude marketing candidates of capped channels whose next contact would break a cap.

    A cap ``(days, max_contacts)`` allows at most ``max_contacts`` marketing contacts in
    any ``days`` days; the planned contact on ``contact_date`` is allowed when fewer than
    ``max_contacts`` contacts fall in ``[contact_date - days + 1, contact_date]``.

    Args:
        history: ``customer_key, contact_date`` (:func:`marketing_contact_history`).
        caps: ``(days, max_contacts)`` pairs.

    Returns:
        ``candidates`` with ``exclusion = "frequency_cap"``.
    """
    if not caps:
        return candidates
    counts = history.groupBy("customer_key").agg(
        *[
            F.count_if(
                F.col("contact_date").between(
                    F.lit(contact_date - timedelta(days=days - 1)), F.lit(contact_date)
                )
            ).alias(f"_cap{i}")
            for i, (days, _) in enumerate(caps)
        ]
    )
    over = F.lit(False)
    for i, (_, max_contacts) in enumerate(caps):
        over = over | (F.coalesce(F.col(f"_cap{i}"), F.lit(0)) >= max_contacts)
    df = candidates.join(counts, "customer_key", "left")
    hit = _marketing() & F.col("frequency_capped") & over
    return _mark(df, hit, FREQUENCY_CAP, candidates.columns)


def quiet_hours_rule(candidates: DataFrame, blocked_audiences: list[str]) -> DataFrame:
    """Exclude every candidate of an audience that may never be sent (see :func:`send_window`).

    Returns:
        ``candidates`` with ``exclusion = "quiet_hours"``.
    """
    hit = F.col("audience_id").isin(blocked_audiences)
    return _mark(candidates, hit, QUIET_HOURS, candidates.columns)


def assign_audiences(candidates: DataFrame, audiences: list[Audience]) -> DataFrame:
    """Priority resolution, then ranking and size caps: a customer ends in one audience.

    Of the audiences a customer is eligible for (not excluded by a policy rule), the one
    with the highest priority (1 first) keeps them; the others count them as
    ``higher_priority_audience``. Each audience then ranks its customers, highest
    ``score`` first (null last), then by ``pseudo_id`` (a keyed hash: a reproducible
    random order), and keeps the first ``size_cap``. A customer cut by a size cap is not
    offered to a lower-priority audience (one pass, no cascade).

    Args:
        candidates: with ``audience_id, customer_key, pseudo_id, score, exclusion``.

    Returns:
        ``candidates`` plus ``rank`` (1.., null when excluded), with ``exclusion`` set to
        ``"higher_priority_audience"`` or ``"size_cap"`` where they apply.
    """
    priority = F.create_map(*[x for a in audiences for x in (F.lit(a.id), F.lit(a.spec.priority))])
    size_cap = F.create_map(*[x for a in audiences for x in (F.lit(a.id), F.lit(a.spec.size_cap))])
    eligible = F.col("exclusion").isNull()
    by_priority = Window.partitionBy("customer_key", "_eligible").orderBy(
        F.element_at(priority, F.col("audience_id"))
    )
    by_rank = Window.partitionBy("audience_id", "_kept").orderBy(
        F.col("score").desc_nulls_last(), F.col("pseudo_id"), F.col("customer_key")
    )
    df = (
        candidates.withColumn("_eligible", eligible)
        .withColumn("_kept", eligible & (F.row_number().over(by_priority) == 1))
        .withColumn("_n", F.row_number().over(by_rank))
    )
    exclusion = (
        F.when(~eligible, F.col("exclusion"))
        .when(~F.col("_kept"), F.lit(HIGHER_PRIORITY))
        .when(F.col("_n") > F.element_at(size_cap, F.col("audience_id")), F.lit(SIZE_CAP))
    )
    return df.select(
        *[
            exclusion.alias("exclusion") if c == "exclusion" else F.col(c)
            for c in candidates.columns
        ],
        F.when(exclusion.isNull(), F.col("_n")).cast("int").alias("rank"),
    )


# ------------------------------------------------------------------ outputs
def audience_rows(
    assigned: DataFrame, contact_date: date, windows: dict[str, str | None]
) -> DataFrame:
    """The selected customers as ``gold/audiences`` rows (AUDIENCES_SCHEMA).

    Args:
        assigned: :func:`assign_audiences` output.
        windows: audience id -> its send window (:func:`send_window`).
    """
    window = F.create_map(*[x for a, w in windows.items() for x in (F.lit(a), F.lit(w))])
    reason = F.concat_ws(
        "; ",
        F.col("reason"),
        F.when(
            F.col("score").isNotNull(),
            F.concat(F.col("score_name"), F.lit("="), F.format_number("score", 4)),
        ),
    )
    selected = assigned.where(F.col("exclusion").isNull())
    return selected.select(
        "snapshot_date",
        F.lit(contact_date).alias("contact_date"),
        "campaign_id",
        "audience_id",
        "offer",
        "channel",
        "purpose",
        F.col("priority").cast("int").alias("priority"),
        "frequency_capped",
        F.element_at(window, F.col("audience_id")).cast("string").alias("send_window"),
        "pseudo_id",
        "customer_key",
        "rank",
        "score",
        "score_name",
        reason.alias("reason"),
        "expression",
        "tag_versions",
        "model_name",
        "model_version",
    )


def exclusion_counts(assigned: DataFrame, details: dict[str, str]) -> DataFrame:
    """Every exclusion counted by audience and reason (EXCLUSIONS_SCHEMA).

    Args:
        details: audience id -> why its audience publishes nobody (quiet hours), shown in
            ``detail`` of its ``quiet_hours`` row.
    """
    detail = F.create_map(*[x for a, d in details.items() for x in (F.lit(a), F.lit(d))])
    return (
        assigned.where(F.col("exclusion").isNotNull())
        .groupBy("snapshot_date", "campaign_id", "audience_id", "channel", "exclusion")
        .agg(F.count(F.lit(1)).alias("customers"))
        .select(
            "snapshot_date",
            "campaign_id",
            "audience_id",
            "channel",
            F.col("exclusion").alias("reason"),
            "customers",
            F.when(
                F.col("exclusion") == QUIET_HOURS, F.element_at(detail, F.col("audience_id"))
            ).alias("detail"),
        )
    )


def marketing_tags(
    portrait: DataFrame,
    tags: list[str],
    consented: DataFrame,
    churn: DataFrame | None,
    uplift: DataFrame | None,
) -> DataFrame:
    """The published wide tag table: keyed by ``pseudo_id``, no customer_key, no PII.

    Args:
        portrait: one snapshot with ``pseudo_id`` added.
        tags: the tag columns to publish.
        consented: ``customer_key`` of customers with profiling consent (others are left out).
        churn: latest ``customer_key, churn_probability, model_name, model_version`` or None.
        uplift: latest ``customer_key, campaign_id, uplift, model_name, model_version`` or None.

    Returns:
        ``snapshot_date, pseudo_id``, the tags, ``churn_probability, churn_model_version``
        (``name@version``), ``uplift`` (campaign -> uplift) and ``uplift_model_version``
        (campaign -> ``name@version``).
    """
    df = portrait.join(consented.select("customer_key").distinct(), "customer_key", "left_semi")
    spark = portrait.sparkSession
    if churn is None:
        churn = spark.createDataFrame(
            [],
            "customer_key string, churn_probability double, model_name string, "
            "model_version string",
        )
    if uplift is None:
        uplift = spark.createDataFrame(
            [],
            "customer_key string, campaign_id string, uplift double, model_name string, "
            "model_version string",
        )
    churn_cols = churn.select(
        "customer_key",
        F.col("churn_probability").cast("double").alias("churn_probability"),
        F.concat_ws("@", "model_name", "model_version").alias("churn_model_version"),
    )
    uplift_cols = uplift.groupBy("customer_key").agg(
        F.map_from_entries(
            F.collect_list(F.struct("campaign_id", F.col("uplift").cast("double")))
        ).alias("uplift"),
        F.map_from_entries(
            F.collect_list(F.struct("campaign_id", F.concat_ws("@", "model_name", "model_version")))
        ).alias("uplift_model_version"),
    )
    df = df.join(churn_cols, "customer_key", "left").join(uplift_cols, "customer_key", "left")
    return df.select(
        "snapshot_date",
        "pseudo_id",
        *tags,
        "churn_probability",
        "churn_model_version",
        "uplift",
        "uplift_model_version",
    )


def export_columns(with_phone: bool) -> list[str]:
    """Columns of a channel export (the dialer's adds ``phone``)."""
    base = [
        "contact_date",
        "send_window",
        "campaign_id",
        "audience_id",
        "offer",
        "channel",
        "rank",
        "pseudo_id",
    ]
    return [*base, "phone"] if with_phone else base


# ------------------------------------------------------------------ PII scan
def pii_scan(df: DataFrame, names: DataFrame) -> DataFrame:
    """Find raw personal data in any column: phone numbers, id-card numbers, names.

    Strings, whole numbers and (as JSON) maps, arrays and structs are scanned; a value
    matches a kind when it contains a Chinese mobile number, an E.164 number, an 18-digit
    id-card number (PII_PATTERNS), or equals a known name.

    Args:
        names: ``name`` (e.g. the distinct names of ``silver/customers``).

    Returns:
        ``column, kind, rows`` for every column and kind with at least one match.
    """
    texts = []
    for field in df.schema.fields:
        kind = field.dataType.typeName()
        if kind == "string":
            text = F.col(field.name)
        elif kind in ("integer", "long", "decimal"):
            text = F.col(field.name).cast("string")
        elif kind in ("map", "array", "struct"):
            text = F.to_json(F.col(field.name))
        else:
            continue
        texts.append(F.struct(F.lit(field.name).alias("column"), text.alias("value")))
    if not texts:
        return df.sparkSession.createDataFrame([], "column string, kind string, rows long")
    cells = df.select(F.explode(F.array(*texts)).alias("c")).select("c.column", "c.value")
    cells = cells.where(F.col("value").isNotNull())
    kinds = F.array_compact(
        F.array(
            *[F.when(F.col("value").rlike(p), F.lit(k)) for k, p in PII_PATTERNS.items()],
            F.when(F.col("_name").isNotNull(), F.lit("name")),
        )
    )
    known = names.select(F.col("name").alias("_name")).where("_name IS NOT NULL").distinct()
    cells = cells.join(F.broadcast(known), F.col("value") == F.col("_name"), "left")
    return (
        cells.select("column", F.explode(kinds).alias("kind"))
        .groupBy("column", "kind")
        .agg(F.count(F.lit(1)).alias("rows"))
    )
