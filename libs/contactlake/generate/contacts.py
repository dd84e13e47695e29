"""Contacts: the truth table (one row per contact) and the voice, IVR and digital exports."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contactlake.generate import catalog as cat
from contactlake.generate import defects as dq
from contactlake.generate import model, textfmt
from contactlake.generate.customers import with_identity
from contactlake.generate.params import Params
from contactlake.generate.rand import pick, u, uint

VOICE_COLUMNS = (
    "call_id",
    "ani",
    "dnis",
    "direction",
    "queue",
    "skill",
    "agent_id",
    "ivr_entry_ts",
    "queue_entry_ts",
    "answer_ts",
    "end_ts",
    "hold_s",
    "wrapup_s",
    "transfer_flag",
    "transfer_target",
    "disposition",
    "business_category",
    "account_id",
    "source_system",
)


def _ts(p: Params, t: str, iso: bool = False) -> Column:
    return F.expr(textfmt.ts_sql(p, t, iso))


def _date(p: Params, day: str) -> Column:
    return F.expr(textfmt.day_sql(p, day))


def _landing_day(p: Params, cid: Column) -> Column:
    """Day offset of the file a record lands in: its day, or up to ``late_max_days`` later
    for a late record (``defect``, see :func:`defects.with_defect`)."""
    late = uint(p.seed, "late", p.cfg.late_max_days, cid)
    return F.floor(F.col("t") / model.DAY_S).cast("int") + F.when(
        dq.is_("late"), F.lit(1) + late
    ).otherwise(F.lit(0))


def contacts_truth(state: DataFrame, p: Params) -> DataFrame:
    """One row per contact with its true customer and outcome.

    Returns: contact_id, customer_id, cust_idx, channel, direction, t (seconds from start),
    ts, issue_id, seq (position in the issue's chain), planted_repeat (seq > 0), resolved,
    gave_up, category, queue, selfserve, wait_s, abandoned, complaint, incident, plus the
    identifiers used by the exports (account_id, phones, app/WeChat ids and links).
    """
    s, i, j, kk = p.seed, F.col("cust_idx"), F.col("j"), F.col("kk")
    c = model.contacts(model.issues(with_identity(state, p), p), p)
    cid = F.concat(
        F.when(F.col("voice"), F.lit("CL")).otherwise(F.lit("DS")),
        F.upper(F.hex(F.xxhash64(F.lit(s), F.lit("contact"), i, j, kk))),
    )
    return c.select(
        cid.alias("contact_id"),
        "customer_id",
        "cust_idx",
        "persona",
        "channel",
        F.when(F.col("outbound"), F.lit("outbound")).otherwise(F.lit("inbound")).alias("direction"),
        "t",
        F.timestamp_seconds(F.lit(textfmt.epoch(p)) + F.col("t")).alias("ts"),
        F.concat(F.col("customer_id"), F.lit("-"), j.cast("string")).alias("issue_id"),
        j.alias("issue_seq"),
        kk.alias("seq"),
        (kk > 0).alias("planted_repeat"),
        "resolved",
        "gave_up",
        (F.col("complaint") & (kk == F.col("k"))).alias("complaint"),
        pick(F.col("category"), cat.CATEGORIES).alias("category"),
        F.when(F.col("voice"), pick(F.col("queue"), cat.QUEUES)).alias("queue"),
        "selfserve",
        "wait_s",
        "abandoned",
        "incident",
        "account_id",
        "primary_phone",
        "secondary_phone",
        "secondary_kind",
        "hub",
        "app_user_id",
        "app_linked",
        "openid",
        "unionid",
        "wechat_linked",
        "is_b",
        "plan",
    )


def voice(contacts: DataFrame, p: Params) -> DataFrame:
    """CTI call records (CSV) with defects: duplicates from a second system, bad phones...

    Returns: date, key, value, defect, record_id, file.
    """
    s, cid = p.seed, F.col("contact_id")
    df = contacts.where(F.col("channel") == "voice")
    df = dq.with_defect(df, s, "voice", cid, p.cfg.defect_rate)
    inbound = F.col("direction") == "inbound"
    uv = u(s, "ani", cid)
    unknown = F.concat(F.lit("16"), F.lpad(uint(s, "unk", 10**9, cid).cast("string"), 9, "0"))
    ani_in = (
        F.when(F.col("secondary_phone").isNotNull() & (uv < 0.25), F.col("secondary_phone"))
        .when(uv > 0.93, unknown)
        .otherwise(F.col("primary_phone"))
    )
    hotline = pick(uint(s, "dnis", len(cat.HOTLINES), cid), list(cat.HOTLINES))
    ani = F.when(inbound, ani_in).otherwise(hotline)
    ani = F.when(dq.is_("phone_format"), dq.mangle_phone(ani, F.col("_du"))).otherwise(ani)
    dnis = F.when(inbound, hotline).otherwise(F.col("primary_phone"))
    ivr_s = (F.lit(20) + uint(s, "ivrs", 100, cid)).cast("long")
    queued = ~F.col("selfserve") & inbound
    talk = F.floor(F.lit(60) + F.lit(240) * -F.log(F.lit(1.0) - u(s, "talk", cid))).cast("long")
    df = (
        df.withColumn("_qe", F.when(queued, F.col("t") + ivr_s))
        .withColumn(
            "_ans",
            F.when(queued & ~F.col("abandoned"), F.col("_qe") + F.col("wait_s")).when(
                ~inbound, F.col("t")
            ),
        )
        .withColumn(
            "_end",
            F.when(F.col("_ans").isNotNull(), F.col("_ans") + talk)
            .when(F.col("abandoned"), F.col("_qe") + F.col("wait_s"))
            .otherwise(F.col("t") + ivr_s),
        )
    )
    answered = F.col("_ans").isNotNull()
    transfer = answered & (u(s, "xfer", cid) < 0.1)
    agents = max(20, p.customers // 800)
    # better agents (low numbers) take more of the contacts that end resolved
    agent = F.floor(
        F.pow(u(s, "agent", cid), F.when(F.col("resolved"), F.lit(1.4)).otherwise(F.lit(0.8)))
        * agents
    )
    qidx = F.array_position(F.array(*[F.lit(q) for q in cat.QUEUES]), F.col("queue")) - 1
    disposition = (
        F.when(F.col("selfserve"), F.lit("ivr_selfservice"))
        .when(F.col("abandoned"), F.lit("abandoned"))
        .when(~inbound, F.lit("callback"))
        .when(transfer, F.lit("transferred"))
        .otherwise(F.lit("answered"))
    )
    end = F.col("_end")
    end = (
        F.when(
            dq.is_("negative_duration"),
            F.coalesce(F.col("_ans"), F.col("t")) - F.lit(30) - uint(s, "neg", 3000, cid),
        )
        .when(
            dq.is_("absurd_duration"),
            F.coalesce(F.col("_ans"), F.col("t")) + F.lit(86_400 * 3) + uint(s, "abs", 10**6, cid),
        )
        .when(dq.is_("future_ts"), end + F.lit(86_400 * 3650))
        .otherwise(end)
    )
    # the times the lines show, as columns: their text is SQL over column names
    df = df.withColumns({"_end_ts": end, "_shift": F.lit(1) + uint(s, "dupshift", 3, cid)})
    identified = inbound & (u(s, "ident", cid) < 0.6)
    hold = F.when(answered, F.floor(F.pow(u(s, "hold", cid), 3) * 300)).cast("long")
    fields = {
        "call_id": F.when(dq.is_("missing_id"), F.lit("")).otherwise(F.col("contact_id")),
        "ani": ani,
        "dnis": dnis,
        "direction": F.col("direction"),
        "queue": F.coalesce(F.when(~F.col("selfserve"), F.col("queue")), F.lit("")),
        "skill": F.coalesce(F.when(~F.col("selfserve"), pick(qidx, cat.SKILLS)), F.lit("")),
        "agent_id": F.coalesce(
            F.when(answered, F.concat(F.lit("AG"), F.lpad(agent.cast("string"), 5, "0"))), F.lit("")
        ),
        "ivr_entry_ts": F.when(inbound, _ts(p, "t")).otherwise(F.lit("")),
        "queue_entry_ts": F.coalesce(_ts(p, "_qe"), F.lit("")),
        "answer_ts": F.coalesce(_ts(p, "_ans"), F.lit("")),
        "end_ts": _ts(p, "_end_ts"),
        "hold_s": F.coalesce(
            F.when(dq.is_("negative_duration"), -F.lit(1) - uint(s, "negh", 500, cid))
            .otherwise(hold)
            .cast("string"),
            F.lit(""),
        ),
        "wrapup_s": F.coalesce(
            F.when(answered, F.lit(5) + uint(s, "wrap", 90, cid)).cast("string"), F.lit("")
        ),
        "transfer_flag": transfer.cast("int").cast("string"),
        "transfer_target": F.when(
            transfer, pick(uint(s, "xq", len(cat.QUEUES), cid), cat.QUEUES)
        ).otherwise(F.lit("")),
        "disposition": disposition,
        "business_category": F.col("category"),
        "account_id": F.when(identified, F.col("account_id")).otherwise(F.lit("")),
        "source_system": F.lit("CTI-A"),
    }
    drift = p.cfg.schema_drift
    df = df.withColumn("_fday", _landing_day(p, cid))
    extra = F.when(
        F.col("_fday") >= p.drift_day,
        F.concat(F.lit(","), F.format_number(u(s, "asr", cid) * 2 - 1, 3)),
    )
    line = (
        F.concat(F.concat_ws(",", *fields.values()), F.coalesce(extra, F.lit("")))
        if drift.source == "voice"
        else F.concat_ws(",", *fields.values())
    )
    date = _date(p, "_fday")
    main = df.select(
        date.alias("date"),
        F.col("contact_id").alias("key"),
        line.alias("value"),
        "defect",
        F.col("contact_id").alias("record_id"),
    )
    # duplicates: the same call exported again by a second system, seconds apart
    dup_id = F.concat(F.lit("CB"), F.substring(F.col("contact_id"), 3, 64))
    dfields = dict(fields)
    dfields.update(
        {
            "call_id": dup_id,
            "ivr_entry_ts": F.when(inbound, _ts(p, "t + _shift")).otherwise(F.lit("")),
            "end_ts": _ts(p, "_end_ts + _shift"),
            "source_system": F.lit("CTI-B"),
        }
    )
    dline = F.concat(F.concat_ws(",", *dfields.values()), F.coalesce(extra, F.lit("")))
    dups = df.where(dq.is_("duplicate")).select(
        date.alias("date"),
        dup_id.alias("key"),
        dline.alias("value"),
        F.lit("duplicate").alias("defect"),
        dup_id.alias("record_id"),
    )
    out = main.withColumn(
        "defect", F.when(F.col("defect") != "duplicate", F.col("defect"))
    ).unionByName(dups)
    return out.withColumn(
        "file", F.concat(F.lit("voice/"), F.col("date"), F.lit("/part-00000.csv"))
    )


def voice_headers(p: Params) -> dict[str, str]:
    base = ",".join(VOICE_COLUMNS)
    out = {}
    for d in p.landing_days:
        out[p.day(d).isoformat()] = base + (
            f",{p.cfg.schema_drift.column}" if d >= p.drift_day else ""
        )
    return out


def ivr(contacts: DataFrame, p: Params) -> DataFrame:
    """IVR sessions (JSON lines) of inbound phone contacts.

    Returns: date, key, value, defect, record_id, file.
    """
    s, cid = p.seed, F.col("contact_id")
    df = contacts.where((F.col("channel") == "voice") & (F.col("direction") == "inbound"))
    sid = F.concat(F.lit("IV"), F.substring(cid, 3, 64))
    df = dq.with_defect(df, s, "ivr", sid, p.cfg.defect_rate).withColumn("sid", sid)
    depth = F.lit(1) + uint(s, "depth", 3, cid)
    path = F.concat_ws(
        ">",
        pick(uint(s, "m1", 5, cid), cat.IVR_MENUS),
        pick(uint(s, "m2", 5, cid), cat.IVR_MENUS),
        F.when(depth > 2, pick(uint(s, "m3", 5, cid), cat.IVR_MENUS)),
    )
    df = df.withColumns(
        {
            "_stop": F.col("t") + (F.lit(20) + uint(s, "ivrs", 100, cid)).cast("long"),
            "_fday": _landing_day(p, cid),
        }
    )
    rec = F.struct(
        F.when(~dq.is_("missing_id"), F.col("sid")).alias("session_id"),
        cid.alias("call_id"),
        F.col("primary_phone").alias("ani"),
        _ts(p, "t", iso=True).alias("start_ts"),
        _ts(p, "_stop", iso=True).alias("end_ts"),
        path.alias("menu_path"),
        F.col("selfserve").alias("self_service_completed"),
        (~F.col("selfserve")).alias("opt_out_to_agent"),
        F.when(u(s, "ident", cid) < 0.6, F.col("account_id")).alias("account_id"),
    )
    line = F.to_json(rec)
    line = F.when(dq.is_("broken_json"), dq.break_json(line, F.col("_du"))).otherwise(line)
    return df.select(
        _date(p, "_fday").alias("date"),
        F.col("sid").alias("key"),
        line.alias("value"),
        "defect",
        F.col("sid").alias("record_id"),
    ).withColumn("file", F.concat(F.lit("ivr/"), F.col("date"), F.lit("/part-00000.jsonl")))


def digital(contacts: DataFrame, p: Params) -> DataFrame:
    """Digital sessions (JSON lines): app, WeChat, web, chatbot, online agent.

    Returns: date, key, value, defect, record_id, file.
    """
    s, cid = p.seed, F.col("contact_id")
    df = contacts.where(F.col("channel") != "voice")
    df = dq.with_defect(df, s, "digital", cid, p.cfg.defect_rate)
    ch = F.col("channel")
    dur = (F.lit(30) + F.floor(F.lit(600) * -F.log(F.lit(1.0) - u(s, "ddur", cid)))).cast("long")
    handoff = (
        ch.isin("chatbot", "app", "wechat")
        & (~F.col("resolved") | (u(s, "hand", cid) < 0.2))
        & (u(s, "hand2", cid) < 0.5)
    )
    reported = F.col("resolved") | (u(s, "fcr", cid) < 0.15)
    logged_in = (
        (ch == "app") & F.col("app_linked")
        | (ch == "wechat") & F.col("wechat_linked")
        | (ch.isin("web", "online_agent", "chatbot") & (u(s, "login", cid) < 0.4))
    )
    cookie = F.concat(
        F.lit("ck"), F.lower(F.hex(F.xxhash64(F.lit(s), F.lit("cookie"), F.col("cust_idx"))))
    )
    start = F.col("t")
    start = F.when(dq.is_("future_ts"), start + F.lit(86_400 * 3650)).otherwise(start)
    df = df.withColumns({"_start": start, "_stop": start + dur, "_fday": _landing_day(p, cid)})
    msg_text = F.when(dq.is_("invalid_utf8"), dq.invalid_utf8(F.lit("你好"))).otherwise(
        F.lit("你好")
    )
    rec = F.struct(
        F.when(~dq.is_("missing_id"), cid).alias("session_id"),
        ch.alias("channel"),
        _ts(p, "_start", iso=True).alias("start_ts"),
        _ts(p, "_stop", iso=True).alias("end_ts"),
        (F.lit(1) + uint(s, "msgs", 30, cid)).alias("message_count"),
        handoff.alias("handoff_to_human"),
        reported.alias("resolved"),
        F.when(ch == "app", F.col("app_user_id")).alias("app_user_id"),
        F.when(ch == "wechat", F.col("openid")).alias("wechat_openid"),
        F.when((ch == "wechat") & F.col("wechat_linked"), F.col("unionid")).alias("wechat_unionid"),
        # the web chat widget (bot or agent) runs on the site, so it carries the site cookie
        F.when(ch.isin("web", "chatbot", "online_agent"), cookie).alias("cookie_id"),
        F.when(logged_in, F.col("account_id")).alias("account_id"),
        F.col("category").alias("topic"),
        F.lit("§§").alias("first_message"),
    )
    line = F.replace(F.to_json(rec), F.lit("§§"), msg_text)
    line = F.when(dq.is_("broken_json"), dq.break_json(line, F.col("_du"))).otherwise(line)
    return df.select(
        _date(p, "_fday").alias("date"),
        cid.alias("key"),
        line.alias("value"),
        "defect",
        cid.alias("record_id"),
    ).withColumn("file", F.concat(F.lit("digital/"), F.col("date"), F.lit("/part-00000.jsonl")))
