"""The behavioural model as Column expressions: customer base, issues and contacts.

A customer (``cust_idx``) has ``m`` issues over the date range; issue ``j`` starts at a
stratified time and runs a chain of ``k`` follow-up contacts (each within the repeat
window) while it stays unresolved. Every attribute is a hash of (seed, keys), so the same
row is recomputed identically wherever it is needed (churn aggregation, contacts, truth).

Plans are built as a few wide ``withColumns`` steps rather than long ``withColumn`` chains:
each step is one analysis on the driver, a value used several times is computed once in an
earlier step, and each step becomes its own small generated method (the JIT compiles
methods under 8 KB only; one deep expression per row would run interpreted).
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contactlake.generate import catalog as cat
from contactlake.generate.calibrate import (
    CALLBACK_SHARE,
    GAP_MIN_H,
    GAP_SPAN_H,
    GIVE_UP_BAD,
    MAX_BAD,
    MAX_FOLLOWUPS,
    MAX_ISSUES,
    REFERENCE_FEE,
)
from contactlake.generate.params import Params
from contactlake.generate.rand import (
    array_sql,
    categorical,
    categorical_by,
    normal,
    pick,
    u,
    u_sql,
    uint,
)

DAY_S = 86_400
NO_CHURN = 1_000_000
LONG_WAIT_S = 120.0
_P = cat.PERSONAS


def pp(persona: Column | str, attr: str) -> Column:
    """Persona attribute ``attr`` for the persona index column."""
    return pick(persona, [getattr(x, attr) for x in _P])


def with_base(df: DataFrame, p: Params) -> DataFrame:
    """Customer-level draws from ``cust_idx``.

    Returns the input plus: persona, activity, m (issues in range), plan, fee, is_b,
    has_app, has_wechat, tenure_days (at start).
    """
    s, i = p.seed, "cust_idx"
    df = df.withColumns({"persona": categorical(u_sql(s, "persona", i), p.weights)})
    per = "persona"
    c = p.calib
    tenure_mean = pp(per, "tenure_months") * F.lit(30.0)
    spread = p.cfg.tenure_spread
    df = df.withColumns(
        {
            "activity": pp(per, "activity") * F.exp(F.lit(c.sigma) * normal(s, "act", i)),
            "plan": categorical_by(u_sql(s, "plan", i), per, [x.plan for x in _P]),
            "is_b": u(s, "isb", i) < pp(per, "business"),
            "has_app": u(s, "app", i) < pp(per, "app"),
            "has_wechat": u(s, "wx", i) < pp(per, "wechat"),
            # log-normal around the persona's mean: tenure is part of who a persona is
            "tenure_days": (
                F.lit(30)
                + F.floor(
                    tenure_mean * F.exp(F.lit(spread) * normal(s, "ten", i) - F.lit(spread**2 / 2))
                )
            ).cast("int"),
        }
    )
    lam = F.lit(c.issues_per_month * p.months / c.mean_weight) * F.col("activity")
    return df.withColumns(
        {
            "m": F.least(F.floor(lam + u(s, "m", i)), F.lit(MAX_ISSUES)).cast("int"),
            "fee": pick("plan", [f for _, f in cat.PLANS]),
        }
    )


def voice_share(p: Params, persona: Column, day: Column) -> Column:
    """Probability that a contact on ``day`` is by phone (drifts towards digital)."""
    shift = F.lit(p.cfg.digital_shift) * (F.lit(0.5) - day / F.lit(float(p.days)))
    return F.least(
        F.greatest(pp(persona, "voice") * (F.lit(1.0) + shift), F.lit(0.02)), F.lit(0.98)
    )


def is_voice(p: Params, i, j, kk, persona: Column, day: Column) -> Column:
    return u(p.seed, "ch", i, j, kk) < voice_share(p, persona, day)


def _norm(profile) -> list[float]:
    mean = sum(profile) / len(profile)
    return [round((x / mean) ** 0.8, 4) for x in profile]


_PEAK = _norm(cat.VOICE_HOURS)


def voice_queue() -> Column:
    """Queue index: business desk for B, VIP for high plans, else by category."""
    by_category = f"element_at({array_sql(cat.CATEGORY_QUEUE)}, category + 1)"
    return F.expr(f"CASE WHEN is_b THEN 6 WHEN plan >= 3 THEN 5 ELSE {by_category} END")


def with_voice_experience(
    df: DataFrame,
    p: Params,
    i: str,
    j: str,
    kk: str | int,
    t: str,
    persona: str,
    queue: str,
    category: str,
    outbound: Column,
    prefix: str,
) -> DataFrame:
    """IVR self-service, queue wait and abandonment of a phone contact at ``t``.

    Columns are named (SQL text). Returns the input plus <prefix>selfserve, <prefix>wait_s
    (time in queue, null when not queued), <prefix>abandoned.
    """
    s = p.seed
    hour = f"CAST(FLOOR(({t} % {DAY_S}) / 3600) AS INT)"
    ss_p = pick(category, cat.SELF_SERVICE) * F.expr(f"CASE WHEN {kk} > 0 THEN 0.5D ELSE 1.0D END")
    mean_wait = pick(queue, cat.QUEUE_WAIT_S) * pick(hour, _PEAK)
    df = df.withColumns(
        {
            f"{prefix}selfserve": (~outbound) & (u(s, "ss", i, j, kk) < ss_p),
            "_wait": mean_wait * -F.log(F.lit(1.0) - u(s, "wait", i, j, kk)),
            "_pat": pp(persona, "patience_s") * -F.log(F.lit(1.0) - u(s, "pat", i, j, kk)),
        }
    )
    queued = (~F.col(f"{prefix}selfserve")) & (~outbound)
    return df.withColumns(
        {
            f"{prefix}abandoned": queued & (F.col("_wait") > F.col("_pat")),
            f"{prefix}wait_s": F.when(queued, F.round(F.least(F.col("_wait"), F.col("_pat")))).cast(
                "int"
            ),
        }
    ).drop("_wait", "_pat")


def issues(df: DataFrame, p: Params, outer: bool = False) -> DataFrame:
    """One row per issue (explode of ``m``); ``outer`` keeps customers without issues.

    Returns the input plus: j, day, category, first_voice, t0, k (follow-ups), gave_up,
    complaint, c0..c6 (cumulative follow-up offsets, s), t_end, first_abandoned,
    first_long_wait, bad (experience score of the issue).
    """
    s, i, j, m, per = p.seed, "cust_idx", "j", F.col("m"), "persona"
    seq = F.when(m > 0, F.sequence(F.lit(0), m - 1))
    df = df.withColumns({"j": (F.explode_outer if outer else F.explode)(seq)})
    # step 1: the issue's independent draws and its day
    draws = {
        "_day0": F.floor((F.col(j) + u(s, "t0", i, j)) / m * F.lit(p.days)).cast("int"),
        "_wk": u(s, "wk", i, j) < F.lit(1.0 - p.cfg.weekend_factor),
        "_uc": u(s, "cat", i, j),
        "_uh": u(s, "hr", i, j),
        "_sec": F.floor(u(s, "sec", i, j) * 3600).cast("long"),
        "gave_up": u(s, "giveup", i, j) < pp(per, "giveup"),
    }
    if p.incident_days and p.cfg.incident_share > 0:
        draws["incident"] = u(s, "inc", i, j) < F.lit(p.cfg.incident_share)
        draws["_incday"] = pick(uint(s, "incd", len(p.incident_days), i, j), list(p.incident_days))
    else:
        draws["incident"] = F.lit(False)
        draws["_incday"] = F.lit(0)
    q = p.calib.q
    if q > 0:
        k = F.least(
            F.floor(F.log(F.lit(1.0) - u(s, "k", i, j)) / F.lit(math.log(q))), F.lit(MAX_FOLLOWUPS)
        )
    else:
        k = F.lit(0)
    draws["k"] = k.cast("int")
    for n in range(1, MAX_FOLLOWUPS + 1):
        draws[f"_g{n}"] = F.floor(
            F.lit(GAP_MIN_H * 3600) + F.lit(GAP_SPAN_H * 3600) * F.pow(u(s, "gap", i, j, n), 2)
        ).cast("long")
    df = df.withColumns(draws)
    # step 2: day (weekend shift, incidents), category, channel of the first contact
    day0 = F.col("_day0")
    dow = (F.lit(p.start.weekday()) + day0) % 7
    wk = F.col("_wk")
    shift = F.when(wk & (dow == 5), F.lit(-1)).when(wk & (dow == 6), F.lit(1)).otherwise(F.lit(0))
    day1 = F.least(F.greatest(day0 + shift, F.lit(0)), F.lit(p.days - 1))
    cum = {"c0": F.lit(0).cast("long")}
    acc = None
    for n in range(1, MAX_FOLLOWUPS + 1):
        acc = F.col(f"_g{n}") if acc is None else acc + F.col(f"_g{n}")
        cum[f"c{n}"] = acc
    df = df.withColumns(
        {
            "day": F.when(F.col("incident"), F.col("_incday")).otherwise(day1).cast("int"),
            "category": F.when(F.col("incident"), F.lit(1)).otherwise(
                categorical("_uc", cat.CATEGORY_MIX)
            ),
            **cum,
        }
    )
    df = df.withColumns(
        {"first_voice": F.col("incident") | is_voice(p, i, j, 0, per, F.col("day"))}
    )
    # step 3: start time, end of the chain, complaint, queue of the first contact
    hour = F.when(F.col("first_voice"), categorical("_uh", cat.VOICE_HOURS)).otherwise(
        categorical("_uh", cat.DIGITAL_HOURS)
    )
    t0 = F.col("day").cast("long") * DAY_S + hour.cast("long") * 3600 + F.col("_sec")
    # t0 is never null, but Spark takes it for nullable (a division in _day0); the filter on
    # each contact's time in contacts() then got an inferred isnotnull(t0) pushed below its
    # explode, a second evaluation of this whole expression, a dozen hashes, for every issue
    t0 = F.coalesce(t0, F.lit(0).cast("long"))
    offsets = F.array(*[F.col(f"c{n}") for n in range(MAX_FOLLOWUPS + 1)])
    complaint = u(s, "cmp", i, j) < (
        F.lit(0.005)
        + F.lit(0.03) * F.col("k")
        + F.lit(0.12) * F.col("gave_up").cast("double")
        + F.lit(0.4) * (F.col("category") == 6).cast("double")
    )
    df = df.withColumns(
        {
            "t0": t0,
            "t_end": t0 + F.element_at(offsets, F.col("k") + 1),
            "complaint": complaint,
            "queue0": voice_queue(),
        }
    ).drop("_day0", "_wk", "_uc", "_uh", "_sec", "_incday", *[f"_g{n}" for n in range(1, 7)])
    df = with_voice_experience(
        df,
        p,
        i,
        j,
        0,
        "t0",
        per,
        "queue0",
        "category",
        F.lit(False),
        "_v0",
    )
    fv = F.col("first_voice")
    df = df.withColumns(
        {
            "first_abandoned": fv & F.col("_v0abandoned"),
            "first_long_wait": fv
            & F.coalesce(F.col("_v0wait_s") > F.lit(LONG_WAIT_S), F.lit(False)),
        }
    ).drop("_v0abandoned", "_v0wait_s", "_v0selfserve")
    bad = (
        F.col("k").cast("double")
        + F.lit(GIVE_UP_BAD) * F.col("gave_up").cast("double")
        + F.col("first_abandoned").cast("double")
        + F.lit(0.5) * F.col("first_long_wait").cast("double")
        + F.lit(2.0) * F.col("complaint").cast("double")
    )
    return df.withColumns({"bad": bad})


def contacts(df: DataFrame, p: Params) -> DataFrame:
    """One row per contact (explode of each issue's chain), cut at churn and range end.

    Returns the issue columns plus: kk (position in the chain), t (seconds from start),
    cday, voice, outbound, channel (voice or a digital channel), resolved (true outcome),
    and for phone contacts selfserve, queue, wait_s, abandoned.
    """
    s, i, j, per = p.seed, "cust_idx", "j", "persona"
    df = df.withColumns({"kk": F.explode(F.sequence(F.lit(0), F.col("k")))})
    kk = F.col("kk")
    offsets = F.array(*[F.col(f"c{n}") for n in range(MAX_FOLLOWUPS + 1)])
    df = df.withColumns({"_traw": F.col("t0") + F.element_at(offsets, kk + 1)})
    # a follow-up that would fall in the night moves to the morning
    night = (kk > 0) & (((F.col("_traw") % F.lit(DAY_S)) / F.lit(3600)) < F.lit(7))
    t = (F.col("_traw") + F.when(night, F.lit(8 * 3600)).otherwise(F.lit(0))).cast("long")
    df = df.withColumns({"t": t}).drop("_traw")
    df = df.withColumns({"cday": F.floor(F.col("t") / DAY_S).cast("int")})
    df = df.where((F.col("cday") < F.lit(p.days)) & (F.col("cday") < F.col("end_day")))
    voice = F.when(kk == 0, F.col("first_voice")).otherwise(
        is_voice(p, i, j, "kk", per, F.col("cday"))
    )
    w = [
        F.col("has_app").cast("double") * 3.0,
        F.col("has_wechat").cast("double") * 2.0,
        F.lit(1.0),
        F.lit(1.5),
        F.lit(1.0),
    ]
    total = w[0] + w[1] + w[2] + w[3] + w[4]
    df = df.withColumns(
        {
            "voice": voice,
            "_ud": u(s, "dch", i, j, "kk") * total,
            "_ucb": u(s, "cb", i, j, "kk"),
        }
    )
    ud = F.col("_ud")
    didx = F.lit(0)
    acc = F.lit(0.0)
    for wi in w[:-1]:
        acc = acc + wi
        didx = didx + (ud >= acc).cast("int")
    channel = F.when(F.col("voice"), F.lit("voice")).otherwise(pick(didx, cat.DIGITAL_CHANNELS))
    resolved = F.when(kk < F.col("k"), F.lit(False)).otherwise(~F.col("gave_up"))
    df = df.withColumns(
        {
            "outbound": F.col("voice") & (kk > 0) & (F.col("_ucb") < F.lit(CALLBACK_SHARE)),
            "channel": channel,
            "resolved": resolved,
            "queue": voice_queue(),
        }
    ).drop("_ud", "_ucb")
    df = with_voice_experience(
        df,
        p,
        i,
        j,
        "kk",
        "t",
        per,
        "queue",
        "category",
        F.col("outbound"),
        "_v",
    )
    v = F.col("voice")
    return df.withColumns(
        {
            "selfserve": v & F.col("_vselfserve"),
            "wait_s": F.when(v, F.col("_vwait_s")),
            "abandoned": v & F.col("_vabandoned"),
        }
    ).drop("_vselfserve", "_vwait_s", "_vabandoned")


def churn(df: DataFrame, p: Params) -> DataFrame:
    """Monthly churn probability per snapshot and the realised churn day.

    Expects ``bad_<s>`` (experience score in the look-back window before snapshot s) and the
    base columns. Returns the input plus: churn_probs (array, one per snapshot), churn_snap
    (index or null), churn_day (day offset or null), end_day (churn_day or a large number).
    """
    s, i, per = p.seed, "cust_idx", "persona"
    cc = p.cfg.churn
    n_snap = len(p.snapshots)
    # the part of the hazard that does not change between snapshots, computed once
    df = df.withColumns(
        {
            "_h0": pp(per, "churn")
            * F.lit(cc.scale)
            * F.exp(-F.lit(cc.value_weight) * F.log(F.col("fee") / F.lit(REFERENCE_FEE)))
        }
    )
    probs = {}
    for n, (snap, nxt) in enumerate(zip(p.snapshots, p.snapshot_next, strict=True)):
        tenure_years = (F.col("tenure_days") + F.lit(snap + 1)) / F.lit(365.0)
        hazard = F.col("_h0") * F.exp(
            F.lit(cc.experience_weight) * F.least(F.col(f"bad_{n}"), F.lit(MAX_BAD))
            - F.lit(cc.tenure_weight) * F.log(tenure_years)
        )
        probs[f"_p{n}"] = F.least(
            F.lit(0.95), F.lit(1.0) - F.exp(-hazard * F.lit((nxt - snap) / 30.0))
        )
    df = df.withColumns(probs)
    firsts = [F.when(u(s, "churn", i, n) < F.col(f"_p{n}"), F.lit(n)) for n in range(n_snap)]
    df = df.withColumns(
        {
            "churn_probs": F.array(*[F.col(f"_p{n}") for n in range(n_snap)]),
            "churn_snap": F.coalesce(*firsts),
        }
    ).drop("_h0", *[f"_p{n}" for n in range(n_snap)])
    snaps = list(p.snapshots)
    lens = [b - a for a, b in zip(p.snapshots, p.snapshot_next, strict=True)]
    cs = "churn_snap"
    churn_day = F.when(
        F.col(cs).isNotNull(),
        pick(cs, snaps) + F.lit(1) + F.floor(u(s, "churnd", i) * pick(cs, lens)).cast("int"),
    ).cast("int")
    df = df.withColumns({"churn_day": churn_day})
    return df.withColumns({"end_day": F.coalesce(F.col("churn_day"), F.lit(NO_CHURN))})


def customer_state(spark, p: Params) -> DataFrame:
    """Customers with their churn outcome, hash-partitioned by ``cust_idx``.

    Returns: cust_idx, the base columns (see :func:`with_base`), n_issues, bad_<s> per
    snapshot, churn_probs, churn_snap, churn_day, end_day.
    """
    base = spark.range(0, p.customers, 1, p.partitions).withColumnRenamed("id", "cust_idx")
    base = with_base(base.repartition(p.partitions, "cust_idx"), p)
    iss = issues(base, p, outer=True).select("cust_idx", "j", "t_end", "bad")
    end_day = F.floor(F.col("t_end") / DAY_S)
    lookback = p.cfg.churn.lookback_days
    aggs = [F.count("j").alias("n_issues")]
    for n, snap in enumerate(p.snapshots):
        inwin = (end_day <= F.lit(snap)) & (end_day > F.lit(snap - lookback))
        aggs.append(F.coalesce(F.sum(F.when(inwin, F.col("bad"))), F.lit(0.0)).alias(f"bad_{n}"))
    agg = iss.groupBy("cust_idx").agg(*aggs)
    return churn(with_base(agg, p), p)
