"""Customers: identity (phones, accounts, app and WeChat ids), CRM master rows, truth.

All columns are functions of ``cust_idx`` and the seed (see :mod:`contactlake.generate.rand`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from contactlake.generate import catalog as cat
from contactlake.generate import defects as dq
from contactlake.generate.model import pp
from contactlake.generate.params import Params
from contactlake.generate.rand import array_sql, categorical_by, perm, pick, u, u_sql, uint

CRM_COLUMNS = (
    "customer_id",
    "account_id",
    "name",
    "id_card_no",
    "primary_phone",
    "secondary_phone",
    "gender",
    "birth_date",
    "province",
    "city",
    "city_tier",
    "occupation",
    "customer_type",
    "industry",
    "open_date",
    "consent_call_marketing",
    "consent_sms_marketing",
    "consent_push_marketing",
    "consent_wechat_marketing",
    "consent_email_marketing",
    "consent_data_analytics",
    "record_type",
    "updated_at",
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_TIER_CITIES = {t: [n for n, c in enumerate(cat.CITIES) if c[2] == t] for t in (1, 2, 3, 4)}


def _hex_id(seed: int, salt: str, prefix: str, *keys) -> Column:
    return F.concat(F.lit(prefix), F.lower(F.hex(F.xxhash64(F.lit(seed), F.lit(salt), *keys))))


def customer_id(i: Column) -> Column:
    return F.concat(F.lit("CU"), F.lpad((i + 1).cast("string"), 9, "0"))


def hub_phone(hub: Column) -> Column:
    """Switchboard number of hub ``hub`` (a landline in a tier-1 city)."""
    area = pick(hub % 4, [c[4] for c in cat.CITIES[:4]])
    return F.concat(area, F.lit("6"), F.lpad(hub.cast("string"), 7, "0"))


# The same identifiers as SQL text of ``cust_idx`` (one JVM call per column where used).
CUSTOMER_ID_SQL = "concat('CU', lpad(CAST(cust_idx + 1 AS STRING), 9, '0'))"
ACCOUNT_ID_SQL = (
    "concat('A', lpad(CAST((cust_idx * 7777777781L + 31337) % 10000000000L AS STRING), 10, '0'))"
)
PRIMARY_PHONE_SQL = (
    "concat('1', element_at(array('3', '5', '7', '8'), CAST(cust_idx % 4 AS INT) + 1), "
    "lpad(CAST((cust_idx * 987654323 + 1234567) % 1000000000 AS STRING), 9, '0'))"
)


def with_city(df: DataFrame, p: Params) -> DataFrame:
    """Home city of each customer (needs cust_idx, persona). Returns the input plus city_idx."""
    s, i = p.seed, "cust_idx"
    tiers = [x.tiers for x in cat.PERSONAS]
    df = df.withColumns({"_tier": categorical_by(u_sql(s, "tier", i), "persona", tiers) + 1})
    cases = " ".join(
        f"WHEN _tier = {t} THEN element_at({array_sql(idxs)}, "
        f"CAST(FLOOR({u_sql(s, 'city', i)} * {len(idxs)}) AS INT) + 1)"
        for t, idxs in _TIER_CITIES.items()
    )
    return df.withColumns({"city_idx": F.expr(f"CASE {cases} ELSE 0 END")}).drop("_tier")


def with_identity(df: DataFrame, p: Params) -> DataFrame:
    """Identifiers of each customer.

    Returns the input plus: customer_id, account_id, primary_phone, secondary_phone,
    secondary_kind (mobile, household, hub or null), hub, app_user_id, app_linked, openid,
    unionid, wechat_linked, city_idx.
    """
    s, i = p.seed, F.col("cust_idx")
    df = with_city(df, p)
    pair = F.floor(i / 2)
    household = u(s, "hh", pair) < F.lit(0.12)
    hub_user = F.col("is_b") & (u(s, "hubuser", i) < F.lit(0.6))
    kind = (
        F.when(hub_user, F.lit("hub"))
        .when(household, F.lit("household"))
        .when(u(s, "sec", i) < F.lit(0.3), F.lit("mobile"))
    )
    hub = uint(s, "hub", p.hubs, i)
    hh_area = pick(uint(s, "hharea", len(cat.CITIES), pair), [c[4] for c in cat.CITIES])
    secondary = (
        F.when(kind == "hub", hub_phone(hub))
        .when(
            kind == "household",
            F.concat(hh_area, F.lit("8"), F.lpad(perm(pair, 10**7, 7_654_321, 4_242), 7, "0")),
        )
        .when(
            kind == "mobile",
            F.concat(F.lit("19"), F.lpad(perm(i, 10**9, 123_456_791, 987_654), 9, "0")),
        )
    )
    return (
        df.withColumn("customer_id", customer_id(i))
        .withColumn(
            "account_id",
            F.concat(
                F.lit("A"), F.lpad(perm(i, 10**10, 7_777_777_781, 31_337).cast("string"), 10, "0")
            ),
        )
        .withColumn(
            "primary_phone",
            F.concat(
                F.lit("1"),
                pick(i % 4, ["3", "5", "7", "8"]),
                F.lpad(perm(i, 10**9, 987_654_323, 1_234_567).cast("string"), 9, "0"),
            ),
        )
        .withColumn("secondary_kind", kind)
        .withColumn("hub", F.when(kind == "hub", hub))
        .withColumn("secondary_phone", secondary)
        .withColumn("app_user_id", F.when(F.col("has_app"), _hex_id(s, "appid", "U", i)))
        .withColumn("app_linked", F.col("has_app") & (u(s, "applink", i) < F.lit(0.65)))
        .withColumn("openid", F.when(F.col("has_wechat"), _hex_id(s, "openid", "oW", i)))
        .withColumn("unionid", F.when(F.col("has_wechat"), _hex_id(s, "unionid", "UN", i)))
        .withColumn("wechat_linked", F.col("has_wechat") & (u(s, "wxlink", i) < F.lit(0.5)))
    )


def _id_card(area: Column, birth: Column, i: Column, female: Column, seed: int) -> Column:
    seq2 = uint(seed, "idseq", 50, i) * 2 + F.when(female, F.lit(0)).otherwise(F.lit(1))
    body = F.concat(
        area, F.date_format(birth, "yyyyMMdd"), F.lpad((seq2 + 100).cast("string"), 3, "0")
    )
    total = F.lit(0)
    for n, w in enumerate(_ID_WEIGHTS):
        total = total + F.substring(body, n + 1, 1).cast("int") * F.lit(w)
    return F.concat(body, pick(total % 11, list("10X98765432")))


def crm(state: DataFrame, p: Params) -> DataFrame:
    """CRM master rows (a full snapshot on the first date) with defects.

    Returns: date, key, value (CSV line), defect, record_id, and the identity columns.
    """
    s, i, per = p.seed, F.col("cust_idx"), F.col("persona")
    df = with_identity(state, p)
    age_lo = pick(per, [x.age[0] for x in cat.PERSONAS])
    age_hi = pick(per, [x.age[1] for x in cat.PERSONAS])
    df = (
        df.withColumn("_age", age_lo + F.floor(u(s, "age", i) * (age_hi - age_lo + 1)))
        .withColumn("_female", u(s, "female", i) < pp(per, "female"))
        .withColumn(
            "birth_date",
            F.date_sub(
                F.lit(p.start),
                (F.col("_age") * 365.25 + F.floor(u(s, "bday", i) * 365)).cast("int"),
            ),
        )
    )
    occ_mix = list(cat.OCCUPATION_MIX)
    name = F.concat(
        pick(uint(s, "sur", len(cat.SURNAMES), i), list(cat.SURNAMES)),
        pick(uint(s, "g1", len(cat.GIVEN), i), list(cat.GIVEN)),
        F.when(
            u(s, "g2n", i) < 0.6, pick(uint(s, "g2", len(cat.GIVEN), i), list(cat.GIVEN))
        ).otherwise(F.lit("")),
    )
    consent = {
        c: (u(s, "consent-" + c, i) < pp(per, "consent")).cast("int").cast("string")
        for c in ("call", "sms", "push", "wechat", "email")
    }
    cities = cat.CITIES
    df = dq.with_defect(df, s, "crm", i, p.cfg.defect_rate)
    phone = F.when(
        dq.is_("phone_format"), dq.mangle_phone(F.col("primary_phone"), F.col("_du"))
    ).otherwise(F.col("primary_phone"))
    name = F.when(dq.is_("invalid_utf8"), dq.invalid_utf8(name)).otherwise(name)
    acct = F.when(dq.is_("missing_id"), F.lit("")).otherwise(F.col("account_id"))
    fields = [
        F.col("customer_id"),
        acct,
        name,
        _id_card(
            pick(F.col("city_idx"), [c[3] for c in cities]),
            F.col("birth_date"),
            i,
            F.col("_female"),
            s,
        ),
        phone,
        F.coalesce(F.col("secondary_phone"), F.lit("")),
        F.when(F.col("_female"), F.lit("F")).otherwise(F.lit("M")),
        F.col("birth_date").cast("string"),
        pick(F.col("city_idx"), [c[0] for c in cities]),
        pick(F.col("city_idx"), [c[1] for c in cities]),
        pick(F.col("city_idx"), [c[2] for c in cities]).cast("string"),
        pick(categorical_by(u(s, "occ", i), per, occ_mix), list(cat.OCCUPATIONS)),
        F.when(F.col("is_b"), F.lit("B")).otherwise(F.lit("C")),
        F.when(
            F.col("is_b"), pick(uint(s, "ind", len(cat.INDUSTRIES), i), list(cat.INDUSTRIES))
        ).otherwise(F.lit("")),
        F.date_sub(F.lit(p.start), F.col("tenure_days")).cast("string"),
        consent["call"],
        consent["sms"],
        consent["push"],
        consent["wechat"],
        consent["email"],
        (u(s, "consent-analytics", i) < F.lit(0.9)).cast("int").cast("string"),
        F.lit("snapshot"),
        F.lit(f"{p.start.isoformat()} 00:00:00"),
    ]
    return df.select(
        F.lit(p.start.isoformat()).alias("date"),
        F.col("customer_id").alias("key"),
        F.concat_ws(",", *fields).alias("value"),
        "defect",
        F.col("customer_id").alias("record_id"),
        "cust_idx",
        "customer_id",
        "account_id",
        "primary_phone",
        "secondary_phone",
        "secondary_kind",
        "hub",
        "app_user_id",
        "openid",
        "unionid",
        "app_linked",
        "wechat_linked",
    )


def identity_truth(ident: DataFrame) -> DataFrame:
    """Every identifier value -> customer_id.

    Returns: id_type (account_id, phone, app_user_id, wechat_openid, wechat_unionid),
    id_value (phones in E.164), customer_id, is_hub, linked (the id is bound to the
    account in the source systems).
    """

    def e164(c: Column) -> Column:
        return F.concat(F.lit("+86"), F.regexp_replace(c, "^0", ""))

    def entry(id_type: str, value: Column, is_hub: Column, linked: Column) -> Column:
        # null when the customer has no such id
        return F.when(
            value.isNotNull(),
            F.struct(
                F.lit(id_type).alias("id_type"),
                value.alias("id_value"),
                is_hub.alias("is_hub"),
                linked.alias("linked"),
            ),
        )

    no, yes = F.lit(False), F.lit(True)
    ids = F.array(
        entry("account_id", F.col("account_id"), no, yes),
        entry("phone", e164(F.col("primary_phone")), no, yes),
        entry("phone", e164(F.col("secondary_phone")), F.col("secondary_kind") == "hub", yes),
        entry("app_user_id", F.col("app_user_id"), no, F.col("app_linked")),
        entry("wechat_openid", F.col("openid"), no, F.col("wechat_linked")),
        entry("wechat_unionid", F.col("unionid"), no, F.col("wechat_linked")),
    )
    # one pass over the CRM rows (a union of one select per id type read them six times)
    return (
        ident.select("customer_id", F.explode(ids).alias("x"))
        .where("x IS NOT NULL")
        .select("x.id_type", "x.id_value", "customer_id", "x.is_hub", "x.linked")
    )


def customers_truth(state: DataFrame, p: Params) -> DataFrame:
    """Returns: customer_id, persona, customer_type, plan, monthly_fee, activity, n_issues,
    tenure_days, churn_date."""
    return state.select(
        customer_id(F.col("cust_idx")).alias("customer_id"),
        pick(F.col("persona"), cat.PERSONA_NAMES).alias("persona"),
        F.when(F.col("is_b"), F.lit("B")).otherwise(F.lit("C")).alias("customer_type"),
        pick(F.col("plan"), [c for c, _ in cat.PLANS]).alias("plan"),
        F.col("fee").alias("monthly_fee"),
        "activity",
        "n_issues",
        "tenure_days",
        F.date_add(F.lit(p.start), F.col("churn_day")).alias("churn_date"),
    )


def churn_truth(state: DataFrame, p: Params) -> DataFrame:
    """One row per customer and month-end snapshot while active.

    Returns: customer_id, snapshot_date, churn_prob (probability to churn before the next
    snapshot), churned (realised in that period), churn_date.
    """
    snaps = F.array(*[F.lit(x) for x in p.snapshots])
    df = state.select(
        "cust_idx",
        "churn_day",
        "churn_snap",
        F.posexplode(F.arrays_zip(snaps.alias("d"), F.col("churn_probs").alias("pr"))).alias(
            "n", "z"
        ),
    )
    df = df.where(F.col("churn_snap").isNull() | (F.col("n") <= F.col("churn_snap")))
    return df.select(
        customer_id(F.col("cust_idx")).alias("customer_id"),
        F.date_add(F.lit(p.start), F.col("z.d")).alias("snapshot_date"),
        F.col("z.pr").alias("churn_prob"),
        F.coalesce(F.col("n") == F.col("churn_snap"), F.lit(False)).alias("churned"),
        F.date_add(F.lit(p.start), F.col("churn_day")).alias("churn_date"),
    )
