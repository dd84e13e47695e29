"""Business sources: billing, outbound campaigns, surveys and complaints, with their truth.

Built from the customer state (see :func:`contactlake.generate.model.customer_state`) and
the contacts truth. Expressions are SQL text (one JVM call each, see
:mod:`contactlake.generate.rand`); every draw is a hash of (seed, keys).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from contactlake.generate import catalog as cat
from contactlake.generate import defects as dq
from contactlake.generate import textfmt
from contactlake.generate.customers import (
    ACCOUNT_ID_SQL,
    CUSTOMER_ID_SQL,
    PRIMARY_PHONE_SQL,
    with_city,
)
from contactlake.generate.model import DAY_S, NO_CHURN
from contactlake.generate.params import Params
from contactlake.generate.rand import array_sql, u_sql

BILLING_COLUMNS = (
    "record_id",
    "record_type",
    "customer_id",
    "account_id",
    "plan",
    "monthly_fee",
    "start_date",
    "end_date",
    "bill_month",
    "amount",
    "due_date",
    "paid_at",
    "payment_method",
    "event_ts",
)
CAMPAIGN_COLUMNS = (
    "attempt_id",
    "campaign_id",
    "offer",
    "channel",
    "customer_id",
    "account_id",
    "phone",
    "group",
    "attempt_no",
    "attempt_ts",
    "connected",
    "result",
    "responded",
)
SURVEY_COLUMNS = ("survey_id", "contact_id", "channel", "nps", "csat", "answered_ts")
CONNECT_P = 0.55  # an outbound attempt reaches the customer
PLAN_CHANGE_P = 0.15  # a customer changes plan once within the date range
UNPAID_P = 0.03
# China-style brands by plan (consumer plans 0..4, business plan 5)
BRANDS = ("神州行", "动感地带", "动感地带", "全球通", "全球通", "集团客户")
BUSINESS = ("billing", "network", "plan", "account", "activation", "roaming", "service", "other")
PAY_METHODS = ("bank_debit", "alipay", "wechat_pay", "counter", "card")


def _csv(*cols: str) -> str:
    """SQL text: the columns joined as one CSV line (nulls as empty fields)."""
    return "concat_ws(',', " + ", ".join(f"coalesce(CAST({c} AS STRING), '')" for c in cols) + ")"


def _finish(df: DataFrame, p: Params, source: str, key: str, ext: str) -> DataFrame:
    """The landing rows of records with ``defect``/``_du`` (see :func:`defects.with_defect`),
    ``_day`` (event day offset), ``_line`` and ``_line_bad`` (the line of a defective record);
    late records land in a later folder.

    Returns: date, key, value, defect, record_id, file.
    """
    late = f"CASE WHEN defect = 'late' THEN 1 + CAST(FLOOR(_du * {p.cfg.late_max_days}) AS INT) ELSE 0 END"
    df = df.withColumns({"_fday": F.expr(f"_day + {late}")})
    date = F.expr(textfmt.day_sql(p, "_fday"))
    return df.select(
        date.alias("date"),
        F.col(key).alias("key"),
        F.expr("CASE WHEN defect IS NULL OR defect = 'late' THEN _line ELSE _line_bad END").alias(
            "value"
        ),
        "defect",
        F.col(key).alias("record_id"),
    ).withColumn("file", F.concat(F.lit(f"{source}/"), F.col("date"), F.lit(f"/part-00000.{ext}")))


def campaign_targets(state: DataFrame, p: Params) -> DataFrame:
    """Eligible customers per campaign with their group, response probabilities and outcome.

    Returns: cust_idx, customer_id, c (campaign index), campaign_id, offer, channel, cday
    (launch day), treatment, p_control, p_treatment, uplift, responded.
    """
    cc = p.cfg.campaigns
    s = p.seed
    n = cc.count
    days = [max(0, int(p.days * (c + 1) / (n + 1))) for c in range(n)]
    if n == 0:
        days = [0]
    offers = [cat.OFFERS[c % len(cat.OFFERS)] for c in range(max(n, 1))]
    df = state.selectExpr(
        "cust_idx", "persona", "churn_day", f"posexplode({array_sql(days)}) AS (c, cday)"
    )
    if n == 0:
        df = df.where("false")
    elig = u_sql(s, "elig", "cust_idx", "c")
    df = df.where(f"{elig} < {cc.eligible_share!r}D AND coalesce(churn_day, {NO_CHURN}) > cday")
    resp = array_sql([x.response for x in cat.PERSONAS])
    upl = array_sql([x.uplift for x in cat.PERSONAS])
    o_resp = array_sql([o[2] for o in offers])
    o_upl = array_sql([o[3] for o in offers])
    df = df.selectExpr(
        "cust_idx",
        "c",
        "cday",
        f"{CUSTOMER_ID_SQL} AS customer_id",
        f"concat('CMP{p.start.year}', lpad(CAST(c + 1 AS STRING), 2, '0')) AS campaign_id",
        f"element_at({array_sql([o[0] for o in offers])}, c + 1) AS offer",
        f"element_at({array_sql([o[1] for o in offers])}, c + 1) AS channel",
        f"{u_sql(s, 'group', 'cust_idx', 'c')} < {cc.treatment_share!r}D AS treatment",
        f"least(0.9D, element_at({resp}, persona + 1) * element_at({o_resp}, c + 1)) AS p_control",
        # individual effect: persona mean x offer multiplier x a factor with mean 1
        f"element_at({upl}, persona + 1) * element_at({o_upl}, c + 1)"
        f" * (0.25D + 1.5D * {u_sql(s, 'het', 'cust_idx', 'c')}) AS _effect",
    )
    df = df.selectExpr("*", "least(0.95D, p_control + _effect) AS p_treatment").selectExpr(
        "*",
        "p_treatment - p_control AS uplift",
        f"{u_sql(s, 'respond', 'cust_idx', 'c')} < "
        "CASE WHEN treatment THEN p_treatment ELSE p_control END AS responded",
    )
    return df.drop("_effect")


def uplift_truth(targets: DataFrame) -> DataFrame:
    """Returns: customer_id, campaign_id, offer, group, p_response_control,
    p_response_treatment, uplift, responded."""
    return targets.selectExpr(
        "customer_id",
        "campaign_id",
        "offer",
        "CASE WHEN treatment THEN 'treatment' ELSE 'control' END AS `group`",
        "p_control AS p_response_control",
        "p_treatment AS p_response_treatment",
        "uplift",
        "responded",
    )


def campaign(targets: DataFrame, p: Params) -> DataFrame:
    """Outbound attempts (treatment: until connected, at most ``max_attempts``) and one
    holdout row per control customer, all with the customer's response (CSV).

    Returns: date, key, value, defect, record_id, file.
    """
    s, mx = p.seed, p.cfg.campaigns.max_attempts
    conn = [f"{u_sql(s, 'conn', 'cust_idx', 'c', n)} < {CONNECT_P}D" for n in range(1, mx + 1)]
    tries = " ".join(f"WHEN {x} THEN {n}" for n, x in enumerate(conn[:-1], start=1))
    n_att = f"CASE {tries} ELSE {mx} END" if tries else str(mx)
    df = targets.selectExpr(
        "*",
        f"explode(CASE WHEN treatment THEN sequence(1, {n_att}) ELSE array(0) END) AS attempt_no",
    )
    hour = f"9 + CAST(FLOOR({u_sql(s, 'ahour', 'cust_idx', 'c', 'attempt_no')} * 11) AS INT)"
    secs = f"CAST(FLOOR({u_sql(s, 'asec', 'cust_idx', 'c', 'attempt_no')} * 3600) AS BIGINT)"
    df = df.selectExpr(
        "*",
        "concat(campaign_id, '-', lpad(CAST(cust_idx + 1 AS STRING), 9, '0'), '-', attempt_no)"
        " AS attempt_id",
        "cday + greatest(attempt_no - 1, 0) AS _day",
        f"CASE WHEN attempt_no > 0 THEN (CAST(cday + attempt_no - 1 AS BIGINT) * {DAY_S}"
        f" + ({hour}) * 3600 + {secs}) END AS _t",
        f"CASE WHEN attempt_no > 0 THEN {u_sql(s, 'conn', 'cust_idx', 'c', 'attempt_no')}"
        f" < {CONNECT_P}D END AS _connected",
        f"{ACCOUNT_ID_SQL} AS account_id",
        f"{PRIMARY_PHONE_SQL} AS phone",
    )
    df = dq.with_defect(df, s, "campaign", F.col("attempt_id"), p.cfg.defect_rate)
    result = (
        "CASE WHEN attempt_no = 0 THEN 'holdout' WHEN NOT _connected THEN 'no_answer'"
        " WHEN responded THEN 'accepted' ELSE 'declined' END"
    )
    fields = [
        "attempt_id",
        "campaign_id",
        "offer",
        "channel",
        "customer_id",
        "account_id",
        "phone",
        "CASE WHEN treatment THEN 'treatment' ELSE 'control' END",
        "attempt_no",
        f"CASE WHEN _t IS NOT NULL THEN {textfmt.ts_sql(p, '_t')} END",
        "CAST(_connected AS INT)",
        result,
        "CAST(responded AS INT)",
    ]
    bad = list(fields)
    bad_phone = "concat('+86 ', substring(phone, 1, 3), ' ', substring(phone, 4, 8))"
    bad[4] = "CASE WHEN defect = 'missing_id' THEN '' ELSE customer_id END"
    bad[6] = f"CASE WHEN defect = 'phone_format' THEN {bad_phone} ELSE phone END"
    df = df.selectExpr("*", f"{_csv(*fields)} AS _line", f"{_csv(*bad)} AS _line_bad")
    return _finish(df, p, "campaign", "attempt_id", "csv")


def surveys(contacts: DataFrame, p: Params) -> DataFrame:
    """Post-contact surveys (NPS 0-10, CSAT 1-5) for ``survey_rate`` of contacts; scores
    fall after unresolved, abandoned and long-wait contacts.

    Returns: survey_id, contact_id, customer_id, channel, resolved, nps, csat, t (answer
    time, seconds from start), _day.
    """
    s = p.seed
    draw = u_sql(s, "survey", "contact_id")
    df = contacts.where(f"{draw} < {p.cfg.survey_rate!r}D")
    z = f"(SQRT(-2.0D * LN(1.0D - {u_sql(s, 'nps1', 'contact_id')})) * COS(6.283185307179586D * {u_sql(s, 'nps2', 'contact_id')}))"
    latent = (
        "8.4D - 3.0D * CAST(NOT resolved AS DOUBLE) - 1.5D * CAST(coalesce(abandoned, false) AS DOUBLE)"
        " - 1.2D * CAST(coalesce(wait_s, 0) > 120 AS DOUBLE) - 0.5D * CAST(seq > 0 AS DOUBLE)"
        f" + 1.4D * {z}"
    )
    df = df.selectExpr(
        "contact_id",
        "customer_id",
        "channel",
        "resolved",
        "t",
        f"{latent} AS _latent",
        f"600 + CAST(FLOOR({u_sql(s, 'sdelay', 'contact_id')} * 172800) AS BIGINT) AS _delay",
    )
    return df.selectExpr(
        "concat('SV', substring(contact_id, 3, 64)) AS survey_id",
        "contact_id",
        "customer_id",
        "channel",
        "resolved",
        "CAST(least(10, greatest(0, round(_latent))) AS INT) AS nps",
        "CAST(least(5, greatest(1, round(1.0D + _latent * 0.42D))) AS INT) AS csat",
        "t + _delay AS t",
        f"CAST(FLOOR((t + _delay) / {DAY_S}) AS INT) AS _day",
    ).where(f"_day < {p.days}")


def survey_lines(sv: DataFrame, p: Params) -> DataFrame:
    """Survey export (CSV). Returns: date, key, value, defect, record_id, file."""
    df = dq.with_defect(sv, p.seed, "surveys", F.col("survey_id"), p.cfg.defect_rate)
    fields = ["survey_id", "contact_id", "channel", "nps", "csat", textfmt.ts_sql(p, "t")]
    bad = list(fields)
    bad[0] = "CASE WHEN defect = 'missing_id' THEN '' ELSE survey_id END"
    bad[3] = "CASE WHEN defect = 'out_of_range' THEN 11 + CAST(FLOOR(_du * 89) AS INT) ELSE nps END"
    df = df.selectExpr("*", f"{_csv(*fields)} AS _line", f"{_csv(*bad)} AS _line_bad")
    return _finish(df, p, "surveys", "survey_id", "csv")


def complaints(contacts: DataFrame, p: Params) -> DataFrame:
    """Complaint tickets: one per contact that ended in a complaint (truth ``complaint``),
    plus unlinked tickets (regulator, letters) after some unresolved issues.

    Returns: ticket_id, customer_id, account_id, contact_id (null when unlinked),
    source_channel, category, severity, province, city, brand, business, t_open, t_close,
    _day.
    """
    s = p.seed
    unlinked = f"{u_sql(s, 'cmp-ext', 'contact_id')} < 0.03D"
    df = contacts.where(f"complaint OR (gave_up AND seq = 0 AND NOT complaint AND {unlinked})")
    df = with_city(df, p)
    cat_idx = f"CAST(array_position({array_sql(cat.CATEGORIES)}, category) AS INT)"
    sev = (
        f"least(4, 1 + seq + CAST({u_sql(s, 'sev', 'contact_id')} < 0.3D AS INT)"
        " + CAST(gave_up AS INT))"
    )
    df = df.selectExpr(
        "concat('TK', substring(contact_id, 3, 64)) AS ticket_id",
        "customer_id",
        "account_id",
        "CASE WHEN complaint THEN contact_id END AS contact_id",
        "CASE WHEN complaint THEN channel WHEN "
        f"{u_sql(s, 'extch', 'contact_id')} < 0.5D THEN 'regulator' ELSE 'letter' END"
        " AS source_channel",
        "category",
        f"{sev} AS severity",
        f"element_at({array_sql([c[0] for c in cat.CITIES])}, city_idx + 1) AS province",
        f"element_at({array_sql([c[1] for c in cat.CITIES])}, city_idx + 1) AS city",
        f"element_at({array_sql(BRANDS)}, plan + 1) AS brand",
        f"element_at({array_sql(BUSINESS)}, {cat_idx}) AS business",
        # unlinked tickets arrive days after the bad experience
        f"t + CASE WHEN complaint THEN 300 ELSE 86400 END"
        f" + CAST(FLOOR({u_sql(s, 'topen', 'contact_id')} * 7200) AS BIGINT) AS t_open",
    )
    df = df.selectExpr(
        "*",
        f"t_open + 3600 + CAST(FLOOR(POW({u_sql(s, 'tclose', 'ticket_id')}, 2) * 14 * 86400)"
        " * severity / 2 AS BIGINT) AS t_close",
        f"CAST(FLOOR(t_open / {DAY_S}) AS INT) AS _day",
    )
    return df.where(f"_day < {p.days}")


def complaint_lines(tk: DataFrame, p: Params) -> DataFrame:
    """Complaint tickets as JSON lines, as the ticket system exports them each day: a ticket
    closed on the day it opened once, closed; any other ticket open on its first day (no
    ``close_ts``) and again closed on the day it closes, when that is within the range.

    Returns: date, key, value, defect, record_id, file.
    """
    closed_in_range = f"t_close < {p.days * DAY_S}"
    close_day = f"CAST(FLOOR(t_close / {DAY_S}) AS INT)"
    states = (
        f"explode(array(CASE WHEN NOT ({closed_in_range}) OR {close_day} > _day"
        " THEN named_struct('state', 'open', 'day', _day) END,"
        f" CASE WHEN {closed_in_range} THEN named_struct('state', 'closed', 'day', {close_day}) END))"
    )
    df = (
        tk.selectExpr("*", f"{states} AS _export")
        .where("_export IS NOT NULL")
        .selectExpr(
            "* EXCEPT (_day, _export)",
            "_export.state AS state",
            "_export.day AS _day",
            "concat(ticket_id, ':', _export.state) AS record_id",
        )
    )
    df = dq.with_defect(df, p.seed, "complaints", F.col("record_id"), p.cfg.defect_rate)
    rec = (
        "to_json(named_struct("
        "'ticket_id', CASE WHEN defect = 'missing_id' THEN NULL ELSE ticket_id END, "
        "'customer_id', customer_id, 'account_id', account_id, 'contact_id', contact_id, "
        "'source_channel', source_channel, 'category', category, 'severity', severity, "
        "'region', province, 'city', city, 'brand', brand, 'business', business, "
        f"'open_ts', {textfmt.ts_sql(p, 't_open', iso=True)}, "
        f"'close_ts', CASE WHEN state = 'closed' THEN {textfmt.ts_sql(p, 't_close', iso=True)} END))"
    )
    df = df.selectExpr("*", f"{rec} AS _line")
    broken = (
        "substring(_line, 1, greatest(5, CAST(FLOOR(length(_line) * (0.3D + _du * 0.5D)) AS INT)))"
    )
    df = df.selectExpr(
        "*",
        f"CASE WHEN defect = 'broken_json' THEN {broken} ELSE _line END AS _line_bad",
    )
    return _finish(df, p, "complaints", "record_id", "jsonl")


def complaints_truth(tk: DataFrame) -> DataFrame:
    """Returns: ticket_id, customer_id, contact_id, source_channel, category, severity."""
    return tk.select(
        "ticket_id", "customer_id", "contact_id", "source_channel", "category", "severity"
    )


def subscriptions(state: DataFrame, p: Params) -> DataFrame:
    """Subscription periods: the plan held at the start, a possible plan change, and the
    end at the churn date.

    Returns: cust_idx, customer_id, period (0, 1), plan, fee, start_day, end_day (day offset
    of the last day, null while active), record_type of the record that opened it.
    """
    s = p.seed
    change = f"{u_sql(s, 'planchg', 'cust_idx')} < {PLAN_CHANGE_P!r}D AND plan < 5"
    chg_day = f"1 + CAST(FLOOR({u_sql(s, 'planchgd', 'cust_idx')} * {p.days - 1}) AS INT)"
    up = f"{u_sql(s, 'planup', 'cust_idx')} < 0.6D"
    df = state.selectExpr(
        "cust_idx",
        "plan",
        "tenure_days",
        "churn_day",
        f"CASE WHEN {change} THEN {chg_day} END AS _chg",
        f"CASE WHEN (({up}) AND plan < 4) OR plan = 0 THEN plan + 1 ELSE plan - 1 END AS _plan2",
    )
    df = df.selectExpr(
        "*",
        # a change after churn never happens
        "CASE WHEN _chg < coalesce(churn_day, 1000000) THEN _chg END AS chg_day",
    )
    fees = array_sql([f for _, f in cat.PLANS])
    period = (
        "explode(CASE WHEN chg_day IS NULL THEN array(named_struct('period', 0, 'plan', plan, "
        "'start_day', -tenure_days, 'end_day', churn_day - 1)) ELSE array("
        "named_struct('period', 0, 'plan', plan, 'start_day', -tenure_days, 'end_day', chg_day - 1),"
        " named_struct('period', 1, 'plan', _plan2, 'start_day', chg_day, "
        "'end_day', churn_day - 1)) END) AS x"
    )
    df = df.selectExpr("cust_idx", "churn_day", period)
    return df.selectExpr(
        "cust_idx",
        f"{CUSTOMER_ID_SQL} AS customer_id",
        "x.period AS period",
        "x.plan AS plan",
        f"element_at({fees}, x.plan + 1) AS fee",
        "x.start_day AS start_day",
        "x.end_day AS end_day",
        "churn_day",
    )


def subscriptions_truth(subs: DataFrame, p: Params) -> DataFrame:
    """Returns: customer_id, plan, monthly_fee, start_date, end_date (null while active)."""
    return subs.selectExpr(
        "customer_id",
        f"element_at({array_sql([c for c, _ in cat.PLANS])}, plan + 1) AS plan",
        "fee AS monthly_fee",
        f"date_add(DATE'{p.start.isoformat()}', start_day) AS start_date",
        f"date_add(DATE'{p.start.isoformat()}', end_day) AS end_date",
    )


def billing(subs: DataFrame, p: Params) -> DataFrame:
    """Billing export (CSV): the subscriptions on the first date, plan changes and
    cancellations on their day, a bill per active subscription on each month end, and
    its payment (most within days, some late, a few never).

    Returns: date, key, value, defect, record_id, file.
    """
    s = p.seed
    plans = array_sql([c for c, _ in cat.PLANS])
    month_ends = [d for d in p.snapshots if 0 <= d < p.days]
    # a subscription's fields as text once, not on each of its ~20 records
    base = subs.selectExpr(
        "*",
        f"{ACCOUNT_ID_SQL} AS account_id",
        f"element_at({plans}, plan + 1) AS plan_code",
        "CAST(fee AS STRING) AS _fee_text",
        f"{textfmt.day_sql(p, 'start_day')} AS _start_date",
    )
    common = [
        "customer_id",
        "account_id",
        "plan_code AS plan",
        "_fee_text AS monthly_fee",
        "_start_date AS start_date",
    ]
    # subscription records: the snapshot on day 0, a new period on its start day
    opened = base.selectExpr(
        "cust_idx",
        "CASE WHEN period = 0 THEN 'subscription' ELSE 'plan_change' END AS record_type",
        *common,
        "CAST(NULL AS STRING) AS end_date",
        "CAST(NULL AS STRING) AS bill_month",
        "CAST(NULL AS DOUBLE) AS amount",
        "CAST(NULL AS STRING) AS amount_text",
        "CAST(NULL AS STRING) AS due_date",
        "CAST(NULL AS BIGINT) AS paid_t",
        "CAST(NULL AS STRING) AS payment_method",
        "CASE WHEN period = 0 THEN 0 ELSE start_day END AS _day",
        "CAST(greatest(start_day, 0) AS BIGINT) * 86400 + 28800 AS _t",
    )
    # cancellation: the churned customer's last period ends on the churn date
    ended = base.where("churn_day IS NOT NULL AND end_day = churn_day - 1").selectExpr(
        "cust_idx",
        "'cancellation' AS record_type",
        *common,
        f"{textfmt.day_sql(p, 'churn_day')} AS end_date",
        "CAST(NULL AS STRING) AS bill_month",
        "CAST(NULL AS DOUBLE) AS amount",
        "CAST(NULL AS STRING) AS amount_text",
        "CAST(NULL AS STRING) AS due_date",
        "CAST(NULL AS BIGINT) AS paid_t",
        "CAST(NULL AS STRING) AS payment_method",
        "churn_day AS _day",
        "CAST(churn_day AS BIGINT) * 86400 + 36000 AS _t",
    )
    # bills: month ends inside the period (the bill run covers the month just ended)
    bills = base.selectExpr("*", f"explode({array_sql(month_ends or [-1])}) AS _me").where(
        f"_me >= 0 AND _me >= start_day AND _me <= coalesce(end_day, {NO_CHURN})"
    )
    # Amounts in whole cents: round(x, 2) on a double goes through BigDecimal and
    # Double.toString (15% of the bill rows' CPU). floor(100x + 0.5) only differs from it
    # within an ulp of a half cent, and the cents over 100.0 are the double round() gives.
    # u * u is what POW(u, 2) returns (fdlibm's case for y = 2); u * u * u stands for
    # POW(u, 3), a log and an exp, and differs from it by an ulp at most.
    bills = bills.selectExpr(
        "*",
        f"{u_sql(s, 'usage', 'cust_idx', '_me')} AS _u_usage",
        f"{u_sql(s, 'paydelay', 'cust_idx', '_me')} AS _u_delay",
    )
    usage_cents = (
        "CAST(FLOOR(fee * (0.05D + 0.4D * (_u_usage * _u_usage)) * 100.0D + 0.5D) AS BIGINT)"
    )
    delay = "CAST(FLOOR(_u_delay * _u_delay * _u_delay * 30) AS INT)"
    paid = f"{u_sql(s, 'unpaid', 'cust_idx', '_me')} >= {UNPAID_P!r}D"
    bills = bills.selectExpr(
        "*",
        f"CAST(fee * 100.0D AS BIGINT) + {usage_cents} AS _cents",
        f"CASE WHEN {paid} THEN (CAST(_me + 1 + {delay} AS BIGINT) * 86400"
        f" + 28800 + CAST(FLOOR({u_sql(s, 'paysec', 'cust_idx', '_me')} * 43200) AS BIGINT)) END"
        " AS _paid_t",
    )
    # the fields a bill and its payment share, once for both
    bills = bills.selectExpr(
        "cust_idx",
        *common,
        "_me",
        "_paid_t",
        f"substring({textfmt.day_sql(p, '_me')}, 1, 7) AS bill_month",
        "_cents / 100.0D AS amount",
        f"{textfmt.money_sql('_cents / 100.0D', cents='_cents')} AS amount_text",
        f"{textfmt.day_sql(p, '_me + 15')} AS due_date",
    )
    # a bill and its payment (paid inside the period) from one row, rather than a union of
    # two branches that would each work out the bill
    bill = (
        "named_struct('record_type', 'bill', 'paid_t', CAST(NULL AS BIGINT),"
        " 'payment_method', CAST(NULL AS STRING), '_day', _me,"
        " '_t', CAST(_me AS BIGINT) * 86400 + 82800)"
    )
    method = (
        f"element_at({array_sql(PAY_METHODS)}, 1 + CAST(FLOOR({u_sql(s, 'paym', 'cust_idx')}"
        f" * {len(PAY_METHODS)}) AS INT))"
    )
    payment = (
        f"CASE WHEN _paid_t IS NOT NULL AND _paid_t < {p.days * DAY_S} THEN named_struct("
        f"'record_type', 'payment', 'paid_t', _paid_t, 'payment_method', {method},"
        f" '_day', CAST(FLOOR(_paid_t / {DAY_S}) AS INT), '_t', _paid_t) END"
    )
    bill_cols = [
        "customer_id",
        "account_id",
        "plan",
        "monthly_fee",
        "start_date",
        "CAST(NULL AS STRING) AS end_date",
        "bill_month",
        "amount",
        "amount_text",
        "due_date",
    ]
    bill_rows = (
        bills.selectExpr("*", f"explode(array({bill}, {payment})) AS _r")
        .where("_r IS NOT NULL")
        .selectExpr(
            "cust_idx",
            "_r.record_type AS record_type",
            *bill_cols,
            "_r.paid_t AS paid_t",
            "_r.payment_method AS payment_method",
            "_r._day AS _day",
            "_r._t AS _t",
        )
    )
    df = opened.unionByName(ended).unionByName(bill_rows)
    df = df.where(f"_day < {p.days}")
    rid = (
        "concat('BL', lower(hex(xxhash64("
        f"{s}, 'billing', cust_idx, record_type, _t, coalesce(bill_month, '')))))"
    )
    df = df.selectExpr("*", f"{rid} AS record_id")
    df = dq.with_defect(df, s, "billing", F.col("record_id"), p.cfg.defect_rate)
    fields = [
        "record_id",
        "record_type",
        "customer_id",
        "account_id",
        "plan",
        "monthly_fee",
        "start_date",
        "end_date",
        "bill_month",
        "amount_text",
        "due_date",
        f"CASE WHEN paid_t IS NOT NULL THEN {textfmt.ts_sql(p, 'paid_t')} END",
        "payment_method",
        textfmt.ts_sql(p, "_t"),
    ]
    bad = list(fields)
    bad[3] = "CASE WHEN defect = 'missing_id' THEN '' ELSE account_id END"
    bad[9] = (
        "CASE WHEN defect = 'negative_amount' THEN CAST(-amount - 1 AS STRING) ELSE amount_text END"
    )
    df = df.selectExpr("*", f"{_csv(*fields)} AS _line", f"{_csv(*bad)} AS _line_bad")
    return _finish(df, p, "billing", "record_id", "csv")


SMS_COLUMNS = ("msg_id", "phone", "template", "ref_id", "sent_ts", "status")
SMS_TEMPLATES = ("service_followup", "ticket_update", "survey_invite")


def sms(contacts: DataFrame, p: Params) -> DataFrame:
    """SMS gateway log (CSV): follow-up texts after some phone contacts, ticket updates after
    complaints; the gateway knows the phone only (plus the business reference).

    Returns: date, key, value, defect, record_id, file.
    """
    s = p.seed
    pick_sms = f"{u_sql(s, 'sms', 'contact_id')}"
    df = contacts.where(f"channel = 'voice' AND ({pick_sms} < 0.3D OR complaint)")
    template = (
        f"CASE WHEN complaint THEN 'ticket_update' WHEN {pick_sms} < 0.1D THEN 'survey_invite'"
        " ELSE 'service_followup' END"
    )
    phone = f"concat('+86', {PRIMARY_PHONE_SQL})"
    df = df.selectExpr(
        "contact_id",
        "concat('SM', substring(contact_id, 3, 64)) AS msg_id",
        f"{phone} AS phone",
        f"{template} AS template",
        f"t + 60 + CAST(FLOOR({u_sql(s, 'smsdelay', 'contact_id')} * 600) AS BIGINT) AS _t",
        f"element_at(array('delivered', 'failed', 'pending'), 1 + CAST({u_sql(s, 'smsst', 'contact_id')}"
        " >= 0.94D AS INT) + CAST(" + u_sql(s, "smsst", "contact_id") + " >= 0.98D AS INT))"
        " AS status",
    )
    df = df.selectExpr("*", f"CAST(FLOOR(_t / {DAY_S}) AS INT) AS _day").where(f"_day < {p.days}")
    df = dq.with_defect(df, s, "sms", F.col("msg_id"), p.cfg.defect_rate)
    fields = ["msg_id", "phone", "template", "contact_id", textfmt.ts_sql(p, "_t"), "status"]
    bad = list(fields)
    bad[0] = "CASE WHEN defect = 'missing_id' THEN '' ELSE msg_id END"
    bad[1] = "CASE WHEN defect = 'phone_format' THEN substring(phone, 4, 11) ELSE phone END"
    df = df.selectExpr("*", f"{_csv(*fields)} AS _line", f"{_csv(*bad)} AS _line_bad")
    return _finish(df, p, "sms", "msg_id", "csv")


# first page viewed by the issue category (see catalog.CATEGORIES and catalog.PAGES)
_FIRST_PAGE = (1, 7, 3, 9, 6, 2, 8, 0)


def clickstream(contacts: DataFrame, p: Params) -> DataFrame:
    """App and web page views (JSON lines) of the app/web sessions: 1-6 views each with
    dwell time, keyed by app_user_id or cookie_id (no customer id in the export).

    Returns: date, key, value, defect, record_id, file.
    """
    s = p.seed
    df = contacts.where("channel IN ('app', 'web')").selectExpr(
        "*",
        f"explode(sequence(0, CAST(FLOOR({u_sql(s, 'views', 'contact_id')} * 6) AS INT)))"
        " AS view_no",
    )
    cat_idx = f"CAST(array_position({array_sql(cat.CATEGORIES)}, category) AS INT)"
    page = (
        f"CASE WHEN view_no = 0 THEN element_at({array_sql(_FIRST_PAGE)}, {cat_idx})"
        f" ELSE CAST(FLOOR({u_sql(s, 'page', 'contact_id', 'view_no')} * {len(cat.PAGES)}) AS INT)"
        " END"
    )
    df = df.selectExpr(
        "*",
        f"element_at({array_sql(cat.PAGES)}, {page} + 1) AS page",
        f"5 + CAST(FLOOR(-LN(1.0D - {u_sql(s, 'dwell', 'contact_id', 'view_no')}) * 40) AS INT)"
        " AS dwell_s",
        "concat('PV', substring(contact_id, 3, 64), '-', view_no) AS event_id",
    )
    # views start 45 s apart within the session
    df = df.selectExpr(
        "*", "t + view_no * 45 AS _t", f"CAST(FLOOR((t + view_no * 45) / {DAY_S}) AS INT) AS _day"
    )
    df = df.where(f"_day < {p.days}")
    df = dq.with_defect(df, s, "clickstream", F.col("event_id"), p.cfg.defect_rate)
    cookie = f"concat('ck', lower(hex(xxhash64({s}, 'cookie', cust_idx))))"
    rec = (
        "to_json(named_struct("
        "'event_id', CASE WHEN defect = 'missing_id' THEN NULL ELSE event_id END, "
        "'session_id', contact_id, "
        "'platform', channel, "
        "'app_user_id', CASE WHEN channel = 'app' THEN app_user_id END, "
        f"'cookie_id', CASE WHEN channel = 'web' THEN {cookie} END, "
        f"'page', page, 'ts', {textfmt.ts_sql(p, '_t', iso=True)}, 'dwell_s', dwell_s))"
    )
    df = df.selectExpr("*", f"{rec} AS _line")
    broken = (
        "substring(_line, 1, greatest(5, CAST(FLOOR(length(_line) * (0.3D + _du * 0.5D)) AS INT)))"
    )
    df = df.selectExpr(
        "*", f"CASE WHEN defect = 'broken_json' THEN {broken} ELSE _line END AS _line_bad"
    )
    return _finish(df, p, "clickstream", "event_id", "jsonl")
