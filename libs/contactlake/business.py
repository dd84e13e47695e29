"""Bronze -> silver transforms of the business sources: billing (subscriptions, bills),
complaints, surveys and outbound campaigns. Pure DataFrame functions (no I/O).

Each ``*_records`` function types and trims one bronze table and sets ``_reason`` on the
rows to quarantine. Each table builder takes the valid records (subscriptions and bills
take them marked by :func:`mark_periods` and :func:`mark_bills`) and returns
``(table rows, outcomes)``: ``outcomes`` has one row per valid record with ``_batch_id``
and ``_merged`` (true when the record was folded into another record's silver row: a
payment into its bill, a cancellation into its period, a repeated key), so every bronze
row is accounted for as silver, quarantined or merged.

Future timestamps are judged against the row's landing date (the ``<source>/<date>/``
folder of ``_file``), not the run date, so a row's verdict never changes between runs.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from contactlake.cleaning import local_to_utc
from contactlake.unify import LINEAGE, _blank_to_null, _bool, _business_date, _reasons

BILLING_TYPES = ("subscription", "plan_change", "cancellation", "bill", "payment")
OPENING_TYPES = ("subscription", "plan_change")
PERIOD_TYPES = (*OPENING_TYPES, "cancellation")
GROUPS = ("treatment", "control")
OUTCOME_COLUMNS = ["_file", "_line", "_batch_id", "_merged"]


def _landed_horizon(slack_days: int = 2) -> Column:
    """Timestamps after the landing date plus ``slack_days`` (the folder of ``_file``,
    ``<source>/<YYYY-MM-DD>/<name>``) cannot be true: a source exports what happened."""
    landed = F.to_date(F.element_at(F.split("_file", "/"), 2))
    return F.date_add(landed, slack_days).cast("timestamp")


def _try_number(c: str, kind: str) -> Column:
    return F.expr(f"try_cast(nullif(trim(`{c}`), '') as {kind})")


def _date(c: str) -> Column:
    return F.expr(f"try_cast(nullif(trim(`{c}`), '') as date)")


def _bad_text(c: str, typed: Column) -> Column:
    """Text was given but did not parse."""
    return _blank_to_null(c).isNotNull() & typed.isNull()


def _latest_landed() -> list[Column]:
    return [F.col("_file").desc(), F.col("_line").desc()]


def _keep_latest(df: DataFrame, key: str, prefer: list[Column] | None = None) -> DataFrame:
    """Mark all but one row per ``key`` as ``_merged``: the ``prefer`` order, then the
    latest landed (a re-export corrects the earlier one; an exact repeat is merged)."""
    order = Window.partitionBy(key).orderBy(*(prefer or []), *_latest_landed())
    return df.withColumn("_merged", F.row_number().over(order) > 1)


def _crm_key(df: DataFrame, keys: DataFrame) -> DataFrame:
    """``df`` plus ``customer_key`` of its ``customer_id`` (null when the CRM does not know
    it). ``keys``: ``customer_id, customer_key``."""
    return df.join(keys.select("customer_id", "customer_key"), "customer_id", "left")


# ----------------------------------------------------------------------------- billing
def billing_records(bronze: DataFrame, timezone: str) -> DataFrame:
    """Typed billing records.

    Args:
        bronze: ``bronze/billing`` columns (strings: record_id, record_type, customer_id,
            account_id, plan, monthly_fee, start_date, end_date, bill_month, amount,
            due_date, paid_at, payment_method, event_ts) with lineage
            ``_file, _line, _raw, _batch_id``.
        timezone: the billing system's zone (event_ts and paid_at are local).

    Returns:
        Those columns typed (fees and amounts double, dates date, times UTC timestamps,
        record_type lower case) plus ``event_date`` (local), lineage and ``_reason``:
        MISSING_ID (record, customer or account id), UNKNOWN_RECORD_TYPE, BAD_TIMESTAMP
        (event_ts; paid_at of a payment), FUTURE_TIMESTAMP, BAD_DATE (start_date of a
        period record, end_date of a cancellation or before its start, bill_month of a
        bill or payment), BAD_AMOUNT (unparseable fee, a bill without amount),
        NEGATIVE_AMOUNT.
    """
    event_ts = local_to_utc(_blank_to_null("event_ts"), timezone)
    paid_at = local_to_utc(_blank_to_null("paid_at"), timezone)
    df = bronze.select(
        _blank_to_null("record_id").alias("record_id"),
        F.lower(_blank_to_null("record_type")).alias("record_type"),
        _blank_to_null("customer_id").alias("customer_id"),
        _blank_to_null("account_id").alias("account_id"),
        _blank_to_null("plan").alias("plan"),
        _try_number("monthly_fee", "double").alias("monthly_fee"),
        _date("start_date").alias("start_date"),
        _date("end_date").alias("end_date"),
        _blank_to_null("bill_month").alias("bill_month"),
        _try_number("amount", "double").alias("amount"),
        _date("due_date").alias("due_date"),
        paid_at.alias("paid_at"),
        _blank_to_null("payment_method").alias("payment_method"),
        event_ts.alias("event_ts"),
        _business_date(event_ts, timezone).alias("event_date"),
        _bad_text("monthly_fee", _try_number("monthly_fee", "double")).alias("_bad_fee"),
        _bad_text("paid_at", paid_at).alias("_bad_paid"),
        *LINEAGE,
    )
    kind = F.col("record_type")
    period = kind.isin(*PERIOD_TYPES)
    billed = kind.isin("bill", "payment")
    horizon = _landed_horizon()
    month_ok = F.col("bill_month").rlike(r"^\d{4}-(0[1-9]|1[0-2])$")
    reason = _reasons(
        [
            (
                F.col("record_id").isNull()
                | F.col("customer_id").isNull()
                | F.col("account_id").isNull(),
                "MISSING_ID",
            ),
            (~F.coalesce(kind.isin(*BILLING_TYPES), F.lit(False)), "UNKNOWN_RECORD_TYPE"),
            (
                F.col("event_ts").isNull()
                | F.col("_bad_paid")
                | ((kind == "payment") & F.col("paid_at").isNull()),
                "BAD_TIMESTAMP",
            ),
            ((F.col("event_ts") > horizon) | (F.col("paid_at") > horizon), "FUTURE_TIMESTAMP"),
            (
                (period & F.col("start_date").isNull())
                | (
                    (kind == "cancellation")
                    & (F.col("end_date").isNull() | (F.col("end_date") < F.col("start_date")))
                )
                | (billed & ~F.coalesce(month_ok, F.lit(False))),
                "BAD_DATE",
            ),
            (F.col("_bad_fee") | (billed & F.col("amount").isNull()), "BAD_AMOUNT"),
            ((F.col("amount") < 0) | (F.col("monthly_fee") < 0), "NEGATIVE_AMOUNT"),
        ]
    )
    return df.withColumn("_reason", reason).drop("_bad_fee", "_bad_paid")


def _outcome_marks(group: WindowSpec, pick: WindowSpec) -> list[str | Column]:
    """The outcome columns of rows marked per ``group`` (the first landed row of a group is
    its silver row, the others are ``_merged``), and ``_pick``: the row number by ``pick``."""
    merged = F.row_number().over(group.orderBy("_file", "_line")) > 1
    return [
        "_file",
        "_line",
        "_batch_id",
        merged.alias("_merged"),
        F.row_number().over(pick).alias("_pick"),
    ]


def mark_periods(records: DataFrame) -> DataFrame:
    """The period records of ``records``, marked per period (customer_id, start_date).

    Args:
        records: valid rows of :func:`billing_records` (other record types are dropped).

    Returns:
        ``customer_id, account_id, plan, monthly_fee, start_date, record_id``, the outcome
        columns (``_file, _line, _batch_id, _merged``), ``_pick`` (1 on the record the
        period takes its values from), ``_cancelled_on`` (the effective date of the
        period's cancellation, if any) and ``_updated_at`` (its latest ``event_ts``).
    """
    rows = records.where(F.col("record_type").isin(*PERIOD_TYPES))
    group = Window.partitionBy("customer_id", "start_date")
    opening = F.col("record_type").isin(*OPENING_TYPES)
    pick = group.orderBy(
        opening.desc(), F.col("event_ts").desc(), F.col("record_id").desc(), *_latest_landed()
    )
    cancelled_on = F.when(F.col("record_type") == "cancellation", F.col("end_date"))
    return rows.select(
        "customer_id",
        "account_id",
        "plan",
        "monthly_fee",
        "start_date",
        "record_id",
        *_outcome_marks(group, pick),
        F.max(cancelled_on).over(group).alias("_cancelled_on"),
        F.max("event_ts").over(group).alias("_updated_at"),
    )


def subscriptions(marked: DataFrame, keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Subscription periods from subscription, plan_change and cancellation records.

    A period is (customer_id, start_date): opened by a subscription or plan_change record,
    ended by the next period's start (end_date = the day before) or by a cancellation of
    that period (its end_date is the effective date, the first day without service, so the
    period's last day is the day before; a same-day cancellation keeps a one-day period).
    A cancellation whose opening record is missing still gives its period (it carries
    plan, fee and start). Values come from the opening record (the latest by event_ts).

    Args:
        marked: :func:`mark_periods` of the valid billing records (the job computes it
            once and reads it here and for the outcomes).
        keys: ``customer_id, customer_key``.

    Returns:
        (``contactlake.schemas.SUBSCRIPTIONS`` columns, outcomes ``_file, _line,
        _batch_id, _merged``: per period the first landed record is the silver row, the
        others, cancellations and repeats, are merged).
    """
    periods = marked.where("_pick = 1")
    following = Window.partitionBy("customer_id").orderBy("start_date")
    # greatest() skips nulls: only a cancelled period takes its cancellation's end
    end_date = F.coalesce(
        F.when(
            F.col("_cancelled_on").isNotNull(),
            F.greatest(F.col("start_date"), F.date_sub("_cancelled_on", 1)),
        ),
        F.date_sub(F.lead("start_date").over(following), 1),
    )
    table = _crm_key(periods, keys).select(
        "customer_key",
        "customer_id",
        "account_id",
        "plan",
        "monthly_fee",
        "start_date",
        end_date.alias("end_date"),
        F.col("_cancelled_on").isNotNull().alias("cancelled"),
        "record_id",
        F.col("_updated_at").alias("updated_at"),
    )
    return table, marked.select(*OUTCOME_COLUMNS)


def mark_bills(records: DataFrame) -> DataFrame:
    """The bill and payment records of ``records``, marked per bill (customer_id, bill_month).

    Args:
        records: valid rows of :func:`billing_records` (other record types are dropped).

    Returns:
        ``customer_id, account_id, plan, bill_month, event_date, event_ts, amount,
        due_date, paid_at, payment_method, record_type, record_id``, the outcome columns
        (``_file, _line, _batch_id, _merged``), ``_pick`` (1 on the record the bill takes
        its values from) and ``_has_bill`` (a bill record exists).
    """
    rows = records.where(F.col("record_type").isin("bill", "payment"))
    group = Window.partitionBy("customer_id", "bill_month")
    is_bill = F.col("record_type") == "bill"
    pick = group.orderBy(
        is_bill.desc(), F.col("event_ts").desc(), F.col("record_id").desc(), *_latest_landed()
    )
    return rows.select(
        "customer_id",
        "account_id",
        "plan",
        "bill_month",
        "event_date",
        "event_ts",
        "amount",
        "due_date",
        "paid_at",
        "payment_method",
        "record_type",
        "record_id",
        *_outcome_marks(group, pick),
        F.max(is_bill).over(group).alias("_has_bill"),
    )


def bills(marked: DataFrame, keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per bill (customer_id, bill_month) with its payment.

    Bill values come from the bill record (the latest by event_ts), or from the payment
    when the bill record is missing (a payment repeats its bill's columns); bill_date is
    the bill record's local event date, else the last day of bill_month. paid_at and
    payment_method come from the latest payment, null while unpaid.

    Args:
        marked: :func:`mark_bills` of the valid billing records (the job computes it once
            and reads it here and for the outcomes).
        keys: ``customer_id, customer_key``.

    Returns:
        (``contactlake.schemas.BILLS`` columns, outcomes ``_file, _line, _batch_id,
        _merged``: per bill the first landed record is the silver row, the others merged).
    """
    last_payment = Window.partitionBy("customer_id", "bill_month").orderBy(
        F.col("event_ts").desc(), F.col("paid_at").desc(), *_latest_landed()
    )
    payments = (
        marked.where(F.col("record_type") == "payment")
        .withColumn("_n", F.row_number().over(last_payment))
        .where("_n = 1")
        .select(
            "customer_id",
            "bill_month",
            F.col("paid_at").alias("_paid_at"),
            F.col("payment_method").alias("_payment_method"),
        )
    )
    month_end = F.last_day(F.to_date(F.concat(F.col("bill_month"), F.lit("-01"))))
    chosen = marked.where("_pick = 1").join(payments, ["customer_id", "bill_month"], "left")
    table = _crm_key(chosen, keys).select(
        "customer_key",
        "customer_id",
        "account_id",
        "plan",
        "bill_month",
        F.when(F.col("_has_bill"), F.col("event_date")).otherwise(month_end).alias("bill_date"),
        "amount",
        "due_date",
        F.col("_paid_at").alias("paid_at"),
        F.col("_payment_method").alias("payment_method"),
        "record_id",
    )
    return table, marked.select(*OUTCOME_COLUMNS)


# -------------------------------------------------------------------------- complaints
def complaint_records(bronze: DataFrame, timezone: str) -> DataFrame:
    """Typed complaint tickets.

    Args:
        bronze: ``bronze/complaints`` columns (ticket_id, customer_id, account_id,
            contact_id, source_channel, category, severity, region, city, brand, business,
            open_ts, close_ts) with lineage.

    Returns:
        ``contactlake.schemas.COMPLAINTS`` columns but customer_key (codes trimmed,
        source_channel lower case, times UTC, open_date local) plus lineage and
        ``_reason``: MISSING_ID (ticket or customer), BAD_TIMESTAMP (open_ts missing or
        either time unparseable), FUTURE_TIMESTAMP, NEGATIVE_DURATION (closed before opened).
    """
    open_ts = local_to_utc(_blank_to_null("open_ts"), timezone)
    close_ts = local_to_utc(_blank_to_null("close_ts"), timezone)
    df = bronze.select(
        _blank_to_null("ticket_id").alias("ticket_id"),
        _blank_to_null("customer_id").alias("customer_id"),
        _blank_to_null("account_id").alias("account_id"),
        _blank_to_null("contact_id").alias("contact_id"),
        F.lower(_blank_to_null("source_channel")).alias("source_channel"),
        _blank_to_null("category").alias("category"),
        _blank_to_null("severity").alias("severity"),
        _blank_to_null("region").alias("region"),
        _blank_to_null("city").alias("city"),
        _blank_to_null("brand").alias("brand"),
        _blank_to_null("business").alias("business"),
        open_ts.alias("open_ts"),
        close_ts.alias("close_ts"),
        _business_date(open_ts, timezone).alias("open_date"),
        _bad_text("close_ts", close_ts).alias("_bad_close"),
        *LINEAGE,
    )
    horizon = _landed_horizon()
    reason = _reasons(
        [
            (F.col("ticket_id").isNull() | F.col("customer_id").isNull(), "MISSING_ID"),
            (F.col("open_ts").isNull() | F.col("_bad_close"), "BAD_TIMESTAMP"),
            ((F.col("open_ts") > horizon) | (F.col("close_ts") > horizon), "FUTURE_TIMESTAMP"),
            (F.col("close_ts") < F.col("open_ts"), "NEGATIVE_DURATION"),
        ]
    )
    return df.withColumn("_reason", reason).drop("_bad_close")


def complaints(records: DataFrame, keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per ticket: a closed record wins over an open one, then the latest landed
    (a later export of the ticket updates it).

    Args:
        records: valid rows of :func:`complaint_records`.
        keys: ``customer_id, customer_key``.

    Returns:
        (``contactlake.schemas.COMPLAINTS`` columns plus ``_merged``; outcomes).
        Keep the rows where ``_merged`` is false.
    """
    marked = _keep_latest(records, "ticket_id", [F.col("close_ts").isNull().asc()])
    table = _crm_key(marked, keys).select(
        "ticket_id",
        "customer_key",
        "customer_id",
        "account_id",
        "contact_id",
        "source_channel",
        "category",
        "severity",
        "region",
        "city",
        "brand",
        "business",
        "open_ts",
        "close_ts",
        "open_date",
        "_merged",
    )
    return table, marked.select(*OUTCOME_COLUMNS)


# ----------------------------------------------------------------------------- surveys
def survey_records(bronze: DataFrame, timezone: str) -> DataFrame:
    """Typed survey answers.

    Args:
        bronze: ``bronze/surveys`` columns (survey_id, contact_id, channel, nps, csat,
            answered_ts) with lineage.

    Returns:
        ``survey_id, contact_id, channel`` (lower case), ``nps, csat`` (int),
        ``answered_ts`` (UTC), ``answered_date`` (local) plus lineage and ``_reason``:
        MISSING_ID (survey or contact), BAD_TIMESTAMP, FUTURE_TIMESTAMP, BAD_SCORE (a score
        that is not an integer, or no score at all), SCORE_OUT_OF_RANGE (NPS 0-10, CSAT 1-5).
    """
    answered = local_to_utc(_blank_to_null("answered_ts"), timezone)
    nps, csat = _try_number("nps", "int"), _try_number("csat", "int")
    df = bronze.select(
        _blank_to_null("survey_id").alias("survey_id"),
        _blank_to_null("contact_id").alias("contact_id"),
        F.lower(_blank_to_null("channel")).alias("channel"),
        nps.alias("nps"),
        csat.alias("csat"),
        answered.alias("answered_ts"),
        _business_date(answered, timezone).alias("answered_date"),
        (_bad_text("nps", nps) | _bad_text("csat", csat)).alias("_bad_score"),
        *LINEAGE,
    )
    reason = _reasons(
        [
            (F.col("survey_id").isNull() | F.col("contact_id").isNull(), "MISSING_ID"),
            (F.col("answered_ts").isNull(), "BAD_TIMESTAMP"),
            (F.col("answered_ts") > _landed_horizon(), "FUTURE_TIMESTAMP"),
            (
                F.col("_bad_score") | (F.col("nps").isNull() & F.col("csat").isNull()),
                "BAD_SCORE",
            ),
            (
                ~F.col("nps").between(0, 10) | ~F.col("csat").between(1, 5),
                "SCORE_OUT_OF_RANGE",
            ),
        ]
    )
    return df.withColumn("_reason", reason).drop("_bad_score")


def surveys(records: DataFrame, contact_keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per survey (the latest landed), keyed by the surveyed contact's customer.

    Args:
        records: valid rows of :func:`survey_records`.
        contact_keys: ``contact_id, customer_key`` of ``silver/contacts``. A survey of an
            unknown contact keeps a null customer_key.

    Returns:
        (``contactlake.schemas.SURVEYS`` columns plus ``_merged``; outcomes).
    """
    marked = _keep_latest(records, "survey_id")
    known = contact_keys.select("contact_id", "customer_key").dropDuplicates(["contact_id"])
    table = marked.join(known, "contact_id", "left").select(
        "survey_id",
        "contact_id",
        "customer_key",
        "channel",
        "nps",
        "csat",
        "answered_ts",
        "answered_date",
        "_merged",
    )
    return table, marked.select(*OUTCOME_COLUMNS)


# ---------------------------------------------------------------------------- campaign
def campaign_records(bronze: DataFrame, timezone: str) -> DataFrame:
    """Typed campaign attempts and holdout rows.

    Args:
        bronze: ``bronze/campaign`` columns (attempt_id, campaign_id, offer, channel,
            customer_id, account_id, phone, group, attempt_no, attempt_ts, connected,
            result, responded) with lineage.

    Returns:
        ``attempt_id, campaign_id, offer, channel, customer_id, group, attempt_no,
        attempt_ts, attempt_date`` (null for holdouts), ``connected`` (false for holdouts),
        ``result, responded`` plus lineage and ``_reason``: MISSING_ID (attempt, campaign
        or customer), UNKNOWN_GROUP, BAD_ATTEMPT (attempt_no not a number, a holdout that is
        not in the control group), BAD_TIMESTAMP (an attempt without a valid time, a time
        that does not parse), FUTURE_TIMESTAMP.
    """
    attempt_ts = local_to_utc(_blank_to_null("attempt_ts"), timezone)
    attempt_no = _try_number("attempt_no", "int")
    holdout = attempt_no == 0
    df = bronze.select(
        _blank_to_null("attempt_id").alias("attempt_id"),
        _blank_to_null("campaign_id").alias("campaign_id"),
        _blank_to_null("offer").alias("offer"),
        F.lower(_blank_to_null("channel")).alias("channel"),
        _blank_to_null("customer_id").alias("customer_id"),
        F.lower(_blank_to_null("group")).alias("group"),
        attempt_no.alias("attempt_no"),
        attempt_ts.alias("attempt_ts"),
        _business_date(attempt_ts, timezone).alias("attempt_date"),
        F.when(holdout, F.coalesce(_bool("connected"), F.lit(False)))
        .otherwise(_bool("connected"))
        .alias("connected"),
        F.lower(_blank_to_null("result")).alias("result"),
        _bool("responded").alias("responded"),
        _bad_text("attempt_ts", attempt_ts).alias("_bad_ts"),
        *LINEAGE,
    )
    reason = _reasons(
        [
            (
                F.col("attempt_id").isNull()
                | F.col("campaign_id").isNull()
                | F.col("customer_id").isNull(),
                "MISSING_ID",
            ),
            (~F.coalesce(F.col("group").isin(*GROUPS), F.lit(False)), "UNKNOWN_GROUP"),
            (
                F.col("attempt_no").isNull()
                | (F.col("attempt_no") < 0)
                | ((F.col("attempt_no") == 0) & (F.col("group") != "control")),
                "BAD_ATTEMPT",
            ),
            (
                F.col("_bad_ts") | ((F.col("attempt_no") > 0) & F.col("attempt_ts").isNull()),
                "BAD_TIMESTAMP",
            ),
            (F.col("attempt_ts") > _landed_horizon(), "FUTURE_TIMESTAMP"),
        ]
    )
    return df.withColumn("_reason", reason).drop("_bad_ts")


def campaign_contacts(records: DataFrame, keys: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per attempt (the latest landed). A holdout row has no attempt time: its
    attempt_date is the campaign's launch date, the local date of the campaign's earliest
    attempt among ``records`` (null until an attempt of the campaign is known).

    Args:
        records: valid rows of :func:`campaign_records` (all of them: the launch date is
            taken over every attempt of the campaign).
        keys: ``customer_id, customer_key``.

    Returns:
        (``contactlake.schemas.CAMPAIGN_CONTACTS`` columns plus ``_merged``; outcomes).
    """
    marked = _keep_latest(records, "attempt_id")
    launch = F.min(F.when(~F.col("_merged"), F.col("attempt_date"))).over(
        Window.partitionBy("campaign_id")
    )
    dated = marked.withColumn("attempt_date", F.coalesce("attempt_date", launch))
    table = _crm_key(dated, keys).select(
        "attempt_id",
        "campaign_id",
        "offer",
        "channel",
        "customer_key",
        "customer_id",
        "group",
        "attempt_no",
        "attempt_ts",
        "attempt_date",
        "connected",
        "result",
        "responded",
        "_merged",
    )
    return table, marked.select(*OUTCOME_COLUMNS)


def outcome_counts(cleaned: DataFrame, outcomes: DataFrame, batches: list[str]) -> DataFrame:
    """Rows per batch and outcome, for the "nothing lost" accounting.

    Args:
        cleaned: a ``*_records`` result (``_batch_id, _reason``).
        outcomes: the outcomes of the table builders fed with its valid rows.
        batches: the batch ids to count.

    Returns:
        ``_batch_id, label`` (quarantined, silver, merged), ``n``.
    """
    quarantined = cleaned.where(F.col("_reason").isNotNull()).select(
        "_batch_id", F.lit("quarantined").alias("label")
    )
    kept = outcomes.select(
        "_batch_id",
        F.when(F.col("_merged"), F.lit("merged")).otherwise(F.lit("silver")).alias("label"),
    )
    return (
        quarantined.unionByName(kept)
        .where(F.col("_batch_id").isin(batches))
        .groupBy("_batch_id", "label")
        .agg(F.count(F.lit(1)).alias("n"))
    )
