"""Silver -> gold/customer_features: one row per customer per snapshot date.

Point in time: a snapshot uses only what was known by the end of the snapshot date (the
cutoff, ``snapshot_date + 1 day`` at 00:00 UTC): contacts, complaints, surveys and campaign
attempts that started before it, the customer's SCD2 version valid at it, subscription
periods started by the snapshot date (a period ending later was active then), bills dated
by the snapshot date and payments made before the cutoff. Adding later rows cannot change
an earlier snapshot.

Counts are 0 when a customer has no rows (known zero); means, latest values and "days
since" are null when unknown. Flags are ints 0/1 so every model-usable feature is numeric.
Pure DataFrame functions: no I/O, no actions.
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

DEMOGRAPHICS = [
    "gender",
    "province",
    "city",
    "city_tier",
    "occupation",
    "customer_type",
    "industry",
]


def _day_start(day: date) -> Column:
    """00:00 UTC of ``day`` as a timestamp (the session time zone is UTC)."""
    return F.lit(day).cast("timestamp")


def _cutoff(snapshot_date: date) -> Column:
    return _day_start(snapshot_date + timedelta(days=1))


def _since(snapshot_date: date, days: int) -> Column:
    """Start of the ``days``-day window ending with the snapshot date (inclusive)."""
    return _day_start(snapshot_date + timedelta(days=1 - days))


def _count(condition: Column) -> Column:
    return F.count_if(condition).cast("int")


def _days_since(snapshot_date: date, ts: Column) -> Column:
    return F.datediff(F.lit(snapshot_date), F.to_date(ts))


def customers_at(customers: DataFrame, snapshot_date: date) -> DataFrame:
    """Demographics of the customers known at the snapshot (their SCD2 version then).

    Args:
        customers: ``silver/customers`` (``customer_key, customer_id``, CUSTOMER_ATTRIBUTES,
            ``valid_from, valid_to``).

    Returns:
        ``customer_key, customer_id, age, DEMOGRAPHICS, open_date``; one row per customer_key.
    """
    cutoff = _cutoff(snapshot_date)
    valid = customers.where(
        F.col("customer_key").isNotNull()
        & (F.col("valid_from") < cutoff)
        & (F.col("valid_to").isNull() | (F.col("valid_to") >= cutoff))
    )
    latest = Window.partitionBy("customer_key").orderBy(
        F.col("valid_from").desc(), F.col("customer_id")
    )
    birth = F.col("birth_date")
    before_birthday = (F.month(birth) > snapshot_date.month) | (
        (F.month(birth) == snapshot_date.month) & (F.dayofmonth(birth) > snapshot_date.day)
    )
    age = F.lit(snapshot_date.year) - F.year(birth) - F.when(before_birthday, 1).otherwise(0)
    return (
        valid.withColumn("_n", F.row_number().over(latest))
        .where("_n = 1")
        .select(
            "customer_key",
            "customer_id",
            F.when(age >= 0, age).cast("int").alias("age"),
            *[F.col(c) for c in DEMOGRAPHICS],
            "open_date",
        )
        .withColumn("city_tier", F.col("city_tier").cast("int"))
    )


def value_features(
    subscriptions: DataFrame,
    bills: DataFrame,
    snapshot_date: date,
    *,
    revenue_months: int,
    rfm_days: int,
) -> tuple[DataFrame, DataFrame]:
    """Product holdings (subscriptions) and value (bills, payments) at the snapshot.

    Args:
        subscriptions: ``silver/subscriptions`` (schemas.SUBSCRIPTIONS).
        bills: ``silver/bills`` (schemas.BILLS).
        revenue_months: revenue sums bills of the last N months, ``revenue_prev`` the N before.
        rfm_days: RFM frequency and monetary count payments of the last N days.

    Returns:
        (holdings: ``customer_key, active, active_subscriptions, plan, monthly_fee,
        latest_monthly_fee, plan_changes, first_start_date``; value: ``customer_key, revenue_<N>m,
        revenue_prev_<N>m, unpaid_amount, overdue_bills, rfm_recency_days, rfm_frequency,
        rfm_monetary``).
    """
    snap = F.lit(snapshot_date)
    periods = subscriptions.where(F.col("customer_key").isNotNull() & (F.col("start_date") <= snap))
    active = F.col("end_date").isNull() | (F.col("end_date") >= snap)
    latest_active = F.max(F.when(active, F.struct("start_date", "record_id", "plan")))
    latest = F.max(F.struct("start_date", "record_id", "monthly_fee"))
    holdings = periods.groupBy("customer_key").agg(
        F.max(active).cast("int").alias("active"),
        _count(active).alias("active_subscriptions"),
        latest_active.getField("plan").alias("plan"),
        F.sum(F.when(active, F.col("monthly_fee"))).alias("monthly_fee"),
        # the fee of the plan held last, whether or not it still runs (value of a leaver)
        latest.getField("monthly_fee").alias("latest_monthly_fee"),
        # every period after an account's first one is a plan change
        (F.count(F.lit(1)) - F.countDistinct(F.coalesce("account_id", F.lit(""))))
        .cast("int")
        .alias("plan_changes"),
        F.min("start_date").alias("first_start_date"),
    )

    cutoff = _cutoff(snapshot_date)
    known = bills.where(F.col("customer_key").isNotNull() & (F.col("bill_date") <= snap))
    recent = F.col("bill_date") > F.add_months(snap, -revenue_months)
    previous = ~recent & (F.col("bill_date") > F.add_months(snap, -2 * revenue_months))
    paid = F.col("paid_at") < cutoff
    unpaid = F.col("paid_at").isNull() | (F.col("paid_at") >= cutoff)
    in_rfm = paid & (F.col("paid_at") >= _since(snapshot_date, rfm_days))
    value = known.groupBy("customer_key").agg(
        F.sum(F.when(recent, F.col("amount"))).alias(f"revenue_{revenue_months}m"),
        F.sum(F.when(previous, F.col("amount"))).alias(f"revenue_prev_{revenue_months}m"),
        F.sum(F.when(unpaid, F.col("amount"))).alias("unpaid_amount"),
        _count(unpaid & (F.col("due_date") < snap)).alias("overdue_bills"),
        _days_since(snapshot_date, F.max(F.when(paid, F.col("paid_at")))).alias("rfm_recency_days"),
        _count(in_rfm).alias("rfm_frequency"),
        F.sum(F.when(in_rfm, F.col("amount"))).alias("rfm_monetary"),
    )
    return holdings, value


def contact_features(
    contacts: DataFrame,
    snapshot_date: date,
    *,
    windows_days: list[int],
    channels: list[str],
    digital_channels: list[str],
    repeat_window_days: int,
    experience_days: int,
    lookback_days: int,
) -> DataFrame:
    """Contact behaviour and service experience before the cutoff.

    A repeat is an inbound contact followed by another inbound contact of the same customer
    within ``repeat_window_days`` (and before the cutoff). An unresolved contact is an
    inbound one marked not resolved, or abandoned. ``uses_app``/``uses_wechat`` look for the
    channels named ``app`` and ``wechat``.

    Args:
        contacts: ``silver/contacts`` (``customer_key`` + CONTACT_COLUMNS).
        windows_days: counts and durations over each of these windows.
        channels: one count and duration column per channel and window.
        digital_channels: channels counted as digital in ``digital_share_<E>d``.
        experience_days: window E of waits, abandons, transfers and digital adoption.
        lookback_days: older contacts are ignored (``days_since_last_contact`` is then null).

    Returns:
        ``customer_key``; per window W: ``contacts_<W>d, inbound_contacts_<W>d,
        duration_<W>d, contacts_<channel>_<W>d, duration_<channel>_<W>d,
        repeat_contacts_<W>d, unresolved_contacts_<W>d``; ``top_channel_<longest W>d,
        days_since_last_contact, mean_wait_s_<E>d, abandons_<E>d, transfers_<E>d,
        digital_share_<E>d, uses_app, uses_wechat``.
    """
    cutoff = _cutoff(snapshot_date)
    known = contacts.where(
        F.col("customer_key").isNotNull()
        & (F.col("start_ts") < cutoff)
        & (F.col("start_ts") >= _since(snapshot_date, lookback_days))
    ).select(
        "customer_key",
        "contact_id",
        "channel",
        "start_ts",
        "wait_s",
        "abandoned",
        "transferred",
        "resolved",
        (F.col("direction") == "inbound").alias("_inbound"),
        F.coalesce(F.col("handle_s"), F.lit(0.0)).alias("_duration"),
    )
    # Sorted by direction then time, the row after an inbound contact is the customer's next
    # inbound contact when it is inbound too. (Partitioned by customer_key alone, so the
    # aggregation below reuses this shuffle.)
    following = Window.partitionBy("customer_key").orderBy("_inbound", "start_ts", "contact_id")
    gap_us = F.unix_micros(F.lead("start_ts").over(following)) - F.unix_micros(F.col("start_ts"))
    next_inbound = F.coalesce(F.lead("_inbound").over(following), F.lit(False))
    known = known.withColumn(
        "_repeat",
        F.col("_inbound")
        & next_inbound
        & F.coalesce(gap_us <= repeat_window_days * 86_400_000_000, F.lit(False)),
    )
    inbound, duration, channel = F.col("_inbound"), F.col("_duration"), F.col("channel")
    unresolved = inbound & ((F.col("resolved") == F.lit(False)) | F.col("abandoned"))

    aggs: list[Column] = []
    for days in windows_days:
        in_w = F.col("start_ts") >= _since(snapshot_date, days)
        aggs += [
            _count(in_w).alias(f"contacts_{days}d"),
            _count(in_w & inbound).alias(f"inbound_contacts_{days}d"),
            F.sum(F.when(in_w, duration)).alias(f"duration_{days}d"),
        ]
        for ch in channels:
            on_ch = in_w & (channel == ch)
            aggs += [
                _count(on_ch).alias(f"contacts_{ch}_{days}d"),
                F.sum(F.when(on_ch, duration)).alias(f"duration_{ch}_{days}d"),
            ]
        aggs += [
            _count(in_w & F.col("_repeat")).alias(f"repeat_contacts_{days}d"),
            _count(in_w & unresolved).alias(f"unresolved_contacts_{days}d"),
        ]
    e = experience_days
    in_e = F.col("start_ts") >= _since(snapshot_date, e)
    aggs += [
        _days_since(snapshot_date, F.max("start_ts")).alias("days_since_last_contact"),
        F.avg(F.when(in_e, F.col("wait_s"))).alias(f"mean_wait_s_{e}d"),
        _count(in_e & F.col("abandoned")).alias(f"abandons_{e}d"),
        _count(in_e & F.col("transferred")).alias(f"transfers_{e}d"),
        (
            F.count_if(in_e & channel.isin(*digital_channels))
            / F.nullif(F.count_if(in_e), F.lit(0))
        ).alias(f"digital_share_{e}d"),
        F.max(in_e & (channel == "app")).cast("int").alias("uses_app"),
        F.max(in_e & (channel == "wechat")).cast("int").alias("uses_wechat"),
    ]
    per_customer = known.groupBy("customer_key").agg(*aggs)

    # most used channel over the longest window; ties go to the channel listed first
    longest = max(windows_days)
    ranked = F.greatest(
        *[
            F.struct(
                F.col(f"contacts_{ch}_{longest}d").alias("n"),
                F.lit(-i).alias("order"),
                F.lit(ch).alias("channel"),
            )
            for i, ch in enumerate(channels)
        ]
    )
    top = F.when(ranked.getField("n") > 0, ranked.getField("channel"))
    if len(channels) == 1:
        top = F.when(F.col(f"contacts_{channels[0]}_{longest}d") > 0, F.lit(channels[0]))
    return per_customer.withColumn(f"top_channel_{longest}d", top)


def issue_features(
    contacts: DataFrame,
    snapshot_date: date,
    *,
    repeat_window_days: int,
    experience_days: int,
    long_wait_s: float,
) -> DataFrame:
    """Issues (chains of contacts) and queue waits over the experience window.

    An issue is a chain of a customer's contacts (any channel, either direction), each
    within ``repeat_window_days`` of the one before; it ends with a contact followed by no
    other before the cutoff within that window. Point in time: an issue whose last contact
    is recent may still go on; as of the snapshot it ends there. It is unresolved when its
    last contact is an inbound one marked not resolved, or abandoned (the customer gave up,
    as far as the data tells: a phone contact's resolution is often unknown).

    Args:
        contacts: ``silver/contacts`` (``customer_key`` + CONTACT_COLUMNS).
        experience_days: window E; an issue counts when its last contact is in it.
        long_wait_s: a contact that waited longer than this in queue is a long wait.

    Returns:
        ``customer_key, issues_<E>d, unresolved_issues_<E>d, long_waits_<E>d``.
    """
    e = experience_days
    cutoff, since = _cutoff(snapshot_date), _since(snapshot_date, e)
    # an issue counts by its last contact, and whatever follows a contact of the window
    # (before the cutoff) is in the window too: older contacts are not needed
    known = contacts.where(
        F.col("customer_key").isNotNull()
        & (F.col("start_ts") < cutoff)
        & (F.col("start_ts") >= since)
    )
    following = Window.partitionBy("customer_key").orderBy("start_ts", "contact_id")
    gap_us = F.unix_micros(F.lead("start_ts").over(following)) - F.unix_micros(F.col("start_ts"))
    ends = F.coalesce(gap_us > repeat_window_days * 86_400_000_000, F.lit(True))
    unresolved = (F.col("direction") == "inbound") & (
        (F.col("resolved") == F.lit(False)) | F.coalesce(F.col("abandoned"), F.lit(False))
    )
    return (
        known.select("customer_key", "wait_s", ends.alias("_ends"), unresolved.alias("_unres"))
        .groupBy("customer_key")
        .agg(
            _count(F.col("_ends")).alias(f"issues_{e}d"),
            _count(F.col("_ends") & F.col("_unres")).alias(f"unresolved_issues_{e}d"),
            _count(F.col("wait_s") > F.lit(float(long_wait_s))).alias(f"long_waits_{e}d"),
        )
    )


def experience_features(
    complaints: DataFrame,
    surveys: DataFrame,
    campaign_contacts: DataFrame,
    snapshot_date: date,
    *,
    experience_days: int,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Complaints, survey scores and outbound campaign pressure before the cutoff.

    Args:
        complaints: ``silver/complaints`` (schemas.COMPLAINTS).
        surveys: ``silver/surveys`` (schemas.SURVEYS).
        campaign_contacts: ``silver/campaign_contacts`` (holdout rows, attempt_no 0, ignored).
        experience_days: window E of the counts and means.

    Returns:
        (``customer_key, complaints_<E>d, open_complaint, days_since_last_complaint``;
        ``customer_key, latest_nps, mean_nps_<E>d, latest_csat, mean_csat_<E>d``;
        ``customer_key, campaign_attempts_<E>d, campaign_responses_<E>d,
        days_since_last_campaign``).
    """
    e = experience_days
    cutoff, since = _cutoff(snapshot_date), _since(snapshot_date, e)
    opened = complaints.where(F.col("customer_key").isNotNull() & (F.col("open_ts") < cutoff))
    still_open = F.col("close_ts").isNull() | (F.col("close_ts") >= cutoff)
    complaint = opened.groupBy("customer_key").agg(
        _count(F.col("open_ts") >= since).alias(f"complaints_{e}d"),
        F.max(still_open).cast("int").alias("open_complaint"),
        _days_since(snapshot_date, F.max("open_ts")).alias("days_since_last_complaint"),
    )

    answered = surveys.where(F.col("customer_key").isNotNull() & (F.col("answered_ts") < cutoff))

    def latest(score: str) -> Column:
        scored = F.struct("answered_ts", "survey_id", F.col(score).alias("score"))
        return F.max(F.when(F.col(score).isNotNull(), scored)).getField("score")

    in_e = F.col("answered_ts") >= since
    survey = answered.groupBy("customer_key").agg(
        latest("nps").cast("int").alias("latest_nps"),
        F.avg(F.when(in_e, F.col("nps"))).alias(f"mean_nps_{e}d"),
        latest("csat").cast("int").alias("latest_csat"),
        F.avg(F.when(in_e, F.col("csat"))).alias(f"mean_csat_{e}d"),
    )

    attempts = campaign_contacts.where(
        F.col("customer_key").isNotNull()
        & (F.col("attempt_no") > 0)
        & (F.col("attempt_ts") < cutoff)
    )
    in_e = F.col("attempt_ts") >= since
    campaign = attempts.groupBy("customer_key").agg(
        _count(in_e).alias(f"campaign_attempts_{e}d"),
        _count(in_e & F.col("responded")).alias(f"campaign_responses_{e}d"),
        _days_since(snapshot_date, F.max("attempt_ts")).alias("days_since_last_campaign"),
    )
    return complaint, survey, campaign


def abc_tiers(df: DataFrame, revenue: str, shares: list[float]) -> DataFrame:
    """ABC value tier by cumulative revenue share (Pareto), computed with windows.

    Customers ranked by revenue (descending): a customer is A while the revenue of the
    customers strictly ahead of it is below ``shares[0]`` of the total, B below
    ``shares[0] + shares[1]``, else C. Equal revenues share a tier; zero revenue is C.

    Args:
        df: one row per customer with a non-null numeric ``revenue`` column.
        shares: revenue shares of A, B, C (sum 1).

    Returns:
        ``df`` plus ``abc_tier`` (A, B, C).
    """
    amount = F.col(revenue)
    # one ordering, three frames: a single sort (all customers in one partition, which is
    # what a cumulative share needs); range frames take in all equal revenues
    by_revenue = Window.orderBy(amount.desc())
    total = F.sum(amount).over(
        by_revenue.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    )
    equal = F.sum(amount).over(by_revenue.rangeBetween(Window.currentRow, Window.currentRow))
    through_equal = F.sum(amount).over(
        by_revenue.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    )
    ranked = df.withColumn("_total", total).withColumn(
        "_share_ahead", (through_equal - equal) / total
    )
    share_ahead = F.col("_share_ahead")
    tier = (
        F.when((amount <= 0) | (F.col("_total") <= 0), "C")
        .when(share_ahead < shares[0], "A")
        .when(share_ahead < shares[0] + shares[1], "B")
        .otherwise("C")
    )
    return ranked.withColumn("abc_tier", tier).drop("_total", "_share_ahead")


def customer_features(
    customers: DataFrame,
    contacts: DataFrame,
    subscriptions: DataFrame,
    bills: DataFrame,
    complaints: DataFrame,
    surveys: DataFrame,
    campaign_contacts: DataFrame,
    snapshot_date: date,
    *,
    windows_days: list[int],
    channels: list[str],
    digital_channels: list[str],
    repeat_window_days: int,
    experience_days: int,
    revenue_months: int,
    rfm_days: int,
    abc_shares: list[float],
    lookback_days: int,
    long_wait_s: float,
) -> DataFrame:
    """Features of every customer known at the snapshot, point in time correct.

    Args:
        customers, contacts, subscriptions, bills, complaints, surveys, campaign_contacts:
            the silver tables (any history; rows after the cutoff are ignored).
        snapshot_date: the run date; only data up to its end is used.
        Other arguments: see :func:`contact_features`, :func:`issue_features`,
            :func:`value_features`, :func:`experience_features`, :func:`abc_tiers`.

    Returns:
        ``snapshot_date, customer_key, customer_id, age, DEMOGRAPHICS, is_business``
        (customer_type B, 0/1), ``tenure_days, tenure_years, log_tenure_years`` (natural
        log, null below one day), the holdings, value, ``abc_tier``, contact, issue,
        service experience, complaint, survey and campaign columns of the functions above
        (``first_start_date``/``open_date`` dropped), and ``log_monthly_fee`` (natural log,
        null unless the fee is positive).
    """
    base = customers_at(customers, snapshot_date)
    holdings, value = value_features(
        subscriptions, bills, snapshot_date, revenue_months=revenue_months, rfm_days=rfm_days
    )
    contact = contact_features(
        contacts,
        snapshot_date,
        windows_days=windows_days,
        channels=channels,
        digital_channels=digital_channels,
        repeat_window_days=repeat_window_days,
        experience_days=experience_days,
        lookback_days=lookback_days,
    )
    issue = issue_features(
        contacts,
        snapshot_date,
        repeat_window_days=repeat_window_days,
        experience_days=experience_days,
        long_wait_s=long_wait_s,
    )
    complaint, survey, campaign = experience_features(
        complaints, surveys, campaign_contacts, snapshot_date, experience_days=experience_days
    )
    joined = base
    for part in (holdings, value, contact, issue, complaint, survey, campaign):
        joined = joined.join(part, "customer_key", "left")

    # no rows means a known zero for counts and sums (the customer did nothing)
    mean_or_latest = ("mean_", "latest_", "days_since_", "digital_share_", "age")
    zero = [
        f.name
        for f in joined.schema.fields
        if f.dataType.typeName() in ("integer", "long", "double")
        and not f.name.startswith(mean_or_latest)
        and f.name not in ("city_tier", "monthly_fee", "rfm_recency_days")
    ]
    joined = joined.fillna(0, subset=zero)
    tenure = F.datediff(F.lit(snapshot_date), F.coalesce("open_date", "first_start_date"))
    years = F.col("tenure_days") / F.lit(365.0)
    fee = F.col("monthly_fee")
    joined = joined.withColumn("tenure_days", F.when(tenure >= 0, tenure)).withColumns(
        {
            "is_business": F.when(
                F.col("customer_type").isNotNull(), (F.col("customer_type") == "B").cast("int")
            ),
            "tenure_years": years,
            "log_tenure_years": F.when(years > 0, F.log(years)),
            "log_monthly_fee": F.when(fee > 0, F.log(fee)),
        }
    )
    featured = abc_tiers(joined, f"revenue_{revenue_months}m", abc_shares)
    lead = ["customer_key", "customer_id", "age", *DEMOGRAPHICS, "is_business"]
    lead += ["tenure_days", "tenure_years", "log_tenure_years"]
    dropped = {"open_date", "first_start_date", "log_monthly_fee", *lead}
    rest = []
    for c in featured.columns:
        if c not in dropped:
            rest.append(c)
        if c == "monthly_fee":
            rest.append("log_monthly_fee")
    return featured.select(F.lit(snapshot_date).alias("snapshot_date"), *lead, *rest)
