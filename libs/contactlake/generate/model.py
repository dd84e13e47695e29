"""The behavioural model as Column expressions: customer base, issues and contacts.

A customer (``cust_idx``) has ``m`` issues over the date range; issue ``j`` starts at a
stratified time and runs a chain of ``k`` follow-up contacts (each within the repeat
window) while it stays unresolved. Every attribute is a hash of (seed, keys), so the same
row is recomputed identically wherever it is needed (churn aggregation, contacts, truth).
"""

from __future__ import annotations

import math

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contactlake.generate import catalog as cat
from contactlake.generate.calibrate import GAP_MIN_H, GAP_SPAN_H, MAX_FOLLOWUPS, MAX_ISSUES
from contactlake.generate.params import Params
from contactlake.generate.rand import categorical, categorical_by, normal, pick, u, uint

DAY_S = 86_400
NO_CHURN = 1_000_000
LONG_WAIT_S = 120.0
_P = cat.PERSONAS


def pp(persona: Column, attr: str) -> Column:
    """Persona attribute ``attr`` for the persona index column."""
    return pick(persona, [getattr(x, attr) for x in _P])


def with_base(df: DataFrame, p: Params) -> DataFrame:
    """Customer-level draws from ``cust_idx``.

    Returns the input plus: persona, activity, m (issues in range), plan, fee, is_b,
    has_app, has_wechat, tenure_days (at start).
    """
    s, i = p.seed, F.col("cust_idx")
    df = df.withColumn("_up", u(s, "persona", i)).withColumn("_upl", u(s, "plan", i))
    df = df.withColumn("persona", categorical(F.col("_up"), p.weights))
    per = F.col("persona")
    c = p.calib
    act = pp(per, "activity") * F.exp(F.lit(c.sigma) * normal(s, "act", i))
    lam = F.lit(c.issues_per_month * p.months / c.mean_weight) * F.col("activity")
    plan_mix = [x.plan for x in _P]
    tenure_mean = pp(per, "tenure_months") * F.lit(30.0)
    return (
        df.withColumn("activity", act)
        .withColumn("m", F.least(F.floor(lam + u(s, "m", i)), F.lit(MAX_ISSUES)).cast("int"))
        .withColumn("plan", categorical_by(F.col("_upl"), per, plan_mix))
        .withColumn("fee", pick(F.col("plan"), [f for _, f in cat.PLANS]))
        .withColumn("is_b", u(s, "isb", i) < pp(per, "business"))
        .withColumn("has_app", u(s, "app", i) < pp(per, "app"))
        .withColumn("has_wechat", u(s, "wx", i) < pp(per, "wechat"))
        .withColumn(
            "tenure_days",
            (F.lit(30) + F.floor(-F.log(F.lit(1.0) - u(s, "ten", i)) * tenure_mean)).cast("int"),
        )
        .drop("_up", "_upl")
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


def voice_queue(persona: Column, plan: Column, is_b: Column, category: Column) -> Column:
    """Queue index: VIP for high plans, business desk for B, else by category."""
    vip = plan >= F.lit(3)
    return F.when(is_b, F.lit(6)).when(vip, F.lit(5)).otherwise(pick(category, cat.CATEGORY_QUEUE))


def with_voice_experience(
    df: DataFrame,
    p: Params,
    i,
    j,
    kk,
    t: Column,
    persona: Column,
    queue: Column,
    category: Column,
    outbound: Column,
    prefix: str,
) -> DataFrame:
    """IVR self-service, queue wait and abandonment of a phone contact at ``t``.

    Returns the input plus <prefix>selfserve, <prefix>wait_s (time in queue, null when not
    queued), <prefix>abandoned.
    """
    s = p.seed
    hour = F.floor((t % F.lit(DAY_S)) / F.lit(3600)).cast("int")
    ss_p = pick(category, cat.SELF_SERVICE) * F.when(kk > 0, F.lit(0.5)).otherwise(F.lit(1.0))
    mean_wait = pick(queue, cat.QUEUE_WAIT_S) * pick(hour, _PEAK)
    df = (
        df.withColumn(f"{prefix}selfserve", (~outbound) & (u(s, "ss", i, j, kk) < ss_p))
        .withColumn("_wait", mean_wait * -F.log(F.lit(1.0) - u(s, "wait", i, j, kk)))
        .withColumn("_pat", pp(persona, "patience_s") * -F.log(F.lit(1.0) - u(s, "pat", i, j, kk)))
    )
    queued = (~F.col(f"{prefix}selfserve")) & (~outbound)
    return (
        df.withColumn(f"{prefix}abandoned", queued & (F.col("_wait") > F.col("_pat")))
        .withColumn(
            f"{prefix}wait_s",
            F.when(queued, F.round(F.least(F.col("_wait"), F.col("_pat")))).cast("int"),
        )
        .drop("_wait", "_pat")
    )


def issues(df: DataFrame, p: Params, outer: bool = False) -> DataFrame:
    """One row per issue (explode of ``m``); ``outer`` keeps customers without issues.

    Returns the input plus: j, day, category, first_voice, t0, k (follow-ups), gave_up,
    complaint, c0..c6 (cumulative follow-up offsets, s), t_end, first_abandoned,
    first_long_wait, bad (experience score of the issue).
    """
    s, i, m, per = p.seed, F.col("cust_idx"), F.col("m"), F.col("persona")
    seq = F.when(m > 0, F.sequence(F.lit(0), m - 1))
    df = df.withColumn("j", (F.explode_outer if outer else F.explode)(seq))
    j = F.col("j")
    x = (j + u(s, "t0", i, j)) / m
    df = df.withColumn("_day0", F.floor(x * F.lit(p.days)).cast("int"))
    day0 = F.col("_day0")
    dow = (F.lit(p.start.weekday()) + day0) % 7
    wk = u(s, "wk", i, j) < F.lit(1.0 - p.cfg.weekend_factor)
    shift = F.when(wk & (dow == 5), F.lit(-1)).when(wk & (dow == 6), F.lit(1)).otherwise(F.lit(0))
    day1 = F.least(F.greatest(day0 + shift, F.lit(0)), F.lit(p.days - 1))
    if p.incident_days and p.cfg.incident_share > 0:
        inc = u(s, "inc", i, j) < F.lit(p.cfg.incident_share)
        inc_day = pick(uint(s, "incd", len(p.incident_days), i, j), list(p.incident_days))
    else:
        inc, inc_day = F.lit(False), F.lit(0)
    df = df.withColumn("incident", inc).withColumn(
        "day", F.when(F.col("incident"), inc_day).otherwise(day1).cast("int")
    )
    df = df.withColumn("_uc", u(s, "cat", i, j)).withColumn("_uh", u(s, "hr", i, j))
    category = F.when(F.col("incident"), F.lit(1)).otherwise(
        categorical(F.col("_uc"), cat.CATEGORY_MIX)
    )
    df = df.withColumn("category", category).withColumn(
        "first_voice", F.col("incident") | is_voice(p, i, j, F.lit(0), per, F.col("day"))
    )
    hour = F.when(F.col("first_voice"), categorical(F.col("_uh"), cat.VOICE_HOURS)).otherwise(
        categorical(F.col("_uh"), cat.DIGITAL_HOURS)
    )
    t0 = (
        F.col("day").cast("long") * DAY_S
        + hour.cast("long") * 3600
        + F.floor(u(s, "sec", i, j) * 3600).cast("long")
    )
    q = p.calib.q
    if q > 0:
        k = F.least(
            F.floor(F.log(F.lit(1.0) - u(s, "k", i, j)) / F.lit(math.log(q))), F.lit(MAX_FOLLOWUPS)
        )
    else:
        k = F.lit(0)
    df = df.withColumn("t0", t0).withColumn("k", k.cast("int"))
    cum = F.lit(0).cast("long")
    df = df.withColumn("c0", cum)
    for n in range(1, MAX_FOLLOWUPS + 1):
        gap = F.floor(
            F.lit(GAP_MIN_H * 3600)
            + F.lit(GAP_SPAN_H * 3600) * F.pow(u(s, "gap", i, j, F.lit(n)), 2)
        ).cast("long")
        df = df.withColumn(f"c{n}", F.col(f"c{n - 1}") + gap)
    offsets = F.array(*[F.col(f"c{n}") for n in range(MAX_FOLLOWUPS + 1)])
    df = df.withColumn("gave_up", u(s, "giveup", i, j) < pp(per, "giveup"))
    complaint = u(s, "cmp", i, j) < (
        F.lit(0.005)
        + F.lit(0.03) * F.col("k")
        + F.lit(0.12) * F.col("gave_up").cast("double")
        + F.lit(0.4) * (F.col("category") == 6).cast("double")
    )
    df = (
        df.withColumn("t_end", F.col("t0") + F.element_at(offsets, F.col("k") + 1))
        .withColumn("complaint", complaint)
        .withColumn("queue0", voice_queue(per, F.col("plan"), F.col("is_b"), F.col("category")))
    )
    df = with_voice_experience(
        df,
        p,
        i,
        j,
        F.lit(0),
        F.col("t0"),
        per,
        F.col("queue0"),
        F.col("category"),
        F.lit(False),
        "_v0",
    )
    fv = F.col("first_voice")
    df = (
        df.withColumn("first_abandoned", fv & F.col("_v0abandoned"))
        .withColumn(
            "first_long_wait",
            fv & F.coalesce(F.col("_v0wait_s") > F.lit(LONG_WAIT_S), F.lit(False)),
        )
        .drop("_v0abandoned", "_v0wait_s", "_v0selfserve", "_uc", "_uh", "_day0")
    )
    bad = (
        F.col("k").cast("double")
        + F.lit(2.0) * F.col("gave_up").cast("double")
        + F.col("first_abandoned").cast("double")
        + F.lit(0.5) * F.col("first_long_wait").cast("double")
        + F.lit(2.0) * F.col("complaint").cast("double")
    )
    return df.withColumn("bad", bad)


def contacts(df: DataFrame, p: Params) -> DataFrame:
    """One row per contact (explode of each issue's chain), cut at churn and range end.

    Returns the issue columns plus: kk (position in the chain), t (seconds from start),
    cday, voice, outbound, channel (voice or a digital channel), resolved (true outcome),
    and for phone contacts selfserve, queue, wait_s, abandoned.
    """
    s, i, j, per = p.seed, F.col("cust_idx"), F.col("j"), F.col("persona")
    df = df.withColumn("kk", F.explode(F.sequence(F.lit(0), F.col("k"))))
    kk = F.col("kk")
    offsets = F.array(*[F.col(f"c{n}") for n in range(MAX_FOLLOWUPS + 1)])
    t_raw = F.col("t0") + F.element_at(offsets, kk + 1)
    df = (
        df.withColumn("_traw", t_raw)
        .withColumn(
            "t",
            (
                F.col("_traw")
                + F.when(
                    (kk > 0) & (((F.col("_traw") % F.lit(DAY_S)) / F.lit(3600)) < F.lit(7)),
                    F.lit(8 * 3600),
                ).otherwise(F.lit(0))
            ).cast("long"),
        )
        .drop("_traw")
    )
    df = df.withColumn("cday", F.floor(F.col("t") / DAY_S).cast("int"))
    df = df.where((F.col("cday") < F.lit(p.days)) & (F.col("cday") < F.col("end_day")))
    voice = F.when(kk == 0, F.col("first_voice")).otherwise(
        is_voice(p, i, j, kk, per, F.col("cday"))
    )
    df = df.withColumn("voice", voice)
    outbound = F.col("voice") & (kk > 0) & (u(s, "cb", i, j, kk) < F.lit(0.08))
    w = [
        F.col("has_app").cast("double") * 3.0,
        F.col("has_wechat").cast("double") * 2.0,
        F.lit(1.0),
        F.lit(1.5),
        F.lit(1.0),
    ]
    total = w[0] + w[1] + w[2] + w[3] + w[4]
    df = df.withColumn("_ud", u(s, "dch", i, j, kk) * total)
    ud = F.col("_ud")
    didx = F.lit(0)
    acc = F.lit(0.0)
    for wi in w[:-1]:
        acc = acc + wi
        didx = didx + (ud >= acc).cast("int")
    channel = F.when(F.col("voice"), F.lit("voice")).otherwise(pick(didx, cat.DIGITAL_CHANNELS))
    resolved = F.when(kk < F.col("k"), F.lit(False)).otherwise(~F.col("gave_up"))
    df = (
        df.withColumn("outbound", outbound)
        .withColumn("channel", channel)
        .withColumn("resolved", resolved)
        .withColumn("queue", voice_queue(per, F.col("plan"), F.col("is_b"), F.col("category")))
    )
    df = with_voice_experience(
        df.drop("_ud"),
        p,
        i,
        j,
        kk,
        F.col("t"),
        per,
        F.col("queue"),
        F.col("category"),
        F.col("outbound"),
        "_v",
    )
    v = F.col("voice")
    return (
        df.withColumn("selfserve", v & F.col("_vselfserve"))
        .withColumn("wait_s", F.when(v, F.col("_vwait_s")))
        .withColumn("abandoned", v & F.col("_vabandoned"))
        .drop("_vselfserve", "_vwait_s", "_vabandoned")
    )


def churn(df: DataFrame, p: Params) -> DataFrame:
    """Monthly churn probability per snapshot and the realised churn day.

    Expects ``bad_<s>`` (experience score in the look-back window before snapshot s) and the
    base columns. Returns the input plus: churn_probs (array, one per snapshot), churn_snap
    (index or null), churn_day (day offset or null), end_day (churn_day or a large number).
    """
    s, i, per = p.seed, F.col("cust_idx"), F.col("persona")
    cc = p.cfg.churn
    probs, firsts = [], []
    for n, (snap, nxt) in enumerate(zip(p.snapshots, p.snapshot_next, strict=True)):
        tenure_years = (F.col("tenure_days") + F.lit(snap + 1)) / F.lit(365.0)
        hazard = (
            pp(per, "churn")
            * F.lit(cc.scale)
            * F.exp(
                F.lit(cc.experience_weight) * F.least(F.col(f"bad_{n}"), F.lit(8.0))
                - F.lit(cc.value_weight) * F.log(F.col("fee") / F.lit(59.0))
                - F.lit(cc.tenure_weight) * F.log(tenure_years)
            )
        )
        prob = F.least(F.lit(0.95), F.lit(1.0) - F.exp(-hazard * F.lit((nxt - snap) / 30.0)))
        df = df.withColumn(f"_p{n}", prob)
        probs.append(F.col(f"_p{n}"))
        firsts.append(F.when(u(s, "churn", i, F.lit(n)) < F.col(f"_p{n}"), F.lit(n)))
    df = df.withColumn("churn_probs", F.array(*probs)).withColumn("churn_snap", F.coalesce(*firsts))
    snaps = list(p.snapshots)
    lens = [b - a for a, b in zip(p.snapshots, p.snapshot_next, strict=True)]
    cs = F.col("churn_snap")
    churn_day = F.when(
        cs.isNotNull(),
        pick(cs, snaps) + F.lit(1) + F.floor(u(s, "churnd", i) * pick(cs, lens)).cast("int"),
    )
    return (
        df.drop(*[f"_p{n}" for n in range(len(snaps))])
        .withColumn("churn_day", churn_day.cast("int"))
        .withColumn("end_day", F.coalesce(F.col("churn_day"), F.lit(NO_CHURN)))
    )


def customer_state(spark, p: Params) -> DataFrame:
    """Customers with their churn outcome, hash-partitioned by ``cust_idx``.

    Returns: cust_idx, the base columns (see :func:`with_base`), n_issues, bad_<s> per
    snapshot, churn_probs, churn_snap, churn_day, end_day.
    """
    base = spark.range(0, p.customers, 1, p.partitions).withColumnRenamed("id", "cust_idx")
    base = with_base(base.repartition(p.partitions, "cust_idx"), p)
    iss = issues(base, p, outer=True)
    end_day = F.floor(F.col("t_end") / DAY_S)
    lookback = p.cfg.churn.lookback_days
    aggs = [F.count("j").alias("n_issues")]
    for n, snap in enumerate(p.snapshots):
        inwin = (end_day <= F.lit(snap)) & (end_day > F.lit(snap - lookback))
        aggs.append(F.coalesce(F.sum(F.when(inwin, F.col("bad"))), F.lit(0.0)).alias(f"bad_{n}"))
    agg = iss.groupBy("cust_idx").agg(*aggs)
    return churn(with_base(agg, p), p)
