"""KPIs: golden tests on hand-built data (expected values worked out by hand in comments),
catalog validation, and the job (idempotent re-run, alerts, optional tables skipped)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from contactlake import kpis
from contactlake.schemas import SURVEYS
from contactlake.unify import CONTACT_COLUMNS, CUSTOMER_ATTRIBUTES

D = date(2026, 1, 10)
TYPES = {
    "contact_date": "date",
    "start_ts": "timestamp",
    "queue_ts": "timestamp",
    "answer_ts": "timestamp",
    "end_ts": "timestamp",
    "wait_s": "double",
    "talk_s": "double",
    "hold_s": "double",
    "wrapup_s": "double",
    "handle_s": "double",
    "handled_by_agent": "boolean",
    "abandoned": "boolean",
    "transferred": "boolean",
    "resolved": "boolean",
    "self_service": "boolean",
    "message_count": "int",
    "_line": "long",
}
CONTACTS = ", ".join(f"{c} {TYPES.get(c, 'string')}" for c in ["customer_key", *CONTACT_COLUMNS])
CUSTOMERS = ", ".join(
    ["customer_key string", "customer_id string"]
    + [f"{c} string" for c in CUSTOMER_ATTRIBUTES]
    + ["valid_from timestamp", "valid_to timestamp", "is_current boolean", "attributes_hash string"]
)


def contact(cid, key, start, channel="voice", **kw):
    """One silver contact row; ``start`` is a datetime (UTC), the date comes from it."""
    row = dict.fromkeys(["customer_key", *CONTACT_COLUMNS])
    row.update(
        contact_id=cid,
        customer_key=key,
        contact_date=start.date(),
        channel=channel,
        direction="inbound",
        start_ts=start,
        end_ts=start + timedelta(minutes=5),
    )
    row.update(kw)
    return row


def definition(kpi_id, dims, direction="lower", threshold=0.5, scope=None, version=1):
    return kpis.KpiDefinition(
        id=kpi_id,
        name=kpi_id,
        description="test",
        version=version,
        unit="ratio",
        dimensions=dims,
        target={"direction": direction, "threshold": threshold, "scope": scope},
    )


def catalog_of(dims, *ids):
    return {k: definition(k, dims) for k in ids}


def aggregate(spark, facts, catalog, attributes=None):
    """{(kpi_id, date, dimension, value): (numerator, denominator, value)}."""
    if attributes is None:
        attributes = spark.createDataFrame(
            [], "customer_key string, kpi_date date, region string, customer_type string"
        )
    rows = kpis.aggregate_facts(facts, attributes, catalog).collect()
    return {
        (r.kpi_id, r.kpi_date, r.dimension, r.dimension_value): (
            r.numerator,
            r.denominator,
            None if r.value is None else round(r.value, 6),
        )
        for r in rows
    }


def dt(day, hour=0, minute=0, second=0):
    return datetime(2026, 1, day, hour, minute, second)


# ------------------------------------------------------------------ repeat and FCR
REPEAT_ROWS = [
    contact("a1", "A", dt(1, 10), "voice"),  # resolved unknown
    contact("a2", "A", dt(5, 9), "app", resolved=True),  # 3d23h after a1
    contact("a3", "A", dt(12, 9), "voice"),  # exactly 7 days after a2
    contact("b1", "B", dt(1, 8), "voice", resolved=False),
    contact("b2", "B", dt(9, 8, 0, 1), "voice"),  # 8 days + 1 s after b1
    contact("c1", "C", dt(1, 12), "chat"),  # resolved unknown
    contact("x1", None, dt(1, 13), "web", resolved=True),  # anonymous: not followed
    contact("o1", "B", dt(2, 9), "voice", direction="outbound"),  # outbound: ignored
]


def test_repeat_rate_and_fcr_golden(spark):
    contacts = kpis.inbound(spark.createDataFrame(REPEAT_ROWS, CONTACTS))
    facts = kpis.repeat_facts(contacts, window_days=7, unknown_resolved="resolved")
    got = aggregate(
        spark,
        facts,
        catalog_of(["all", "channel"], "repeat_contact_rate", "first_contact_resolution"),
    )
    d1, d5, d9, d12 = (date(2026, 1, d) for d in (1, 5, 9, 12))
    expected = {
        # Jan 1: a1, b1, c1 (x1 anonymous, o1 outbound). a1 is followed by a2 3d23h later
        # (<= 7 d): repeated. b1's next contact b2 is 8 d + 1 s later: not. c1: none. 1/3.
        ("repeat_contact_rate", d1, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("repeat_contact_rate", d1, "channel", "voice"): (1.0, 2.0, 0.5),  # a1, b1
        ("repeat_contact_rate", d1, "channel", "chat"): (0.0, 1.0, 0.0),  # c1
        # Jan 5: a2, followed by a3 exactly 7 days later (the window is inclusive): 1/1
        ("repeat_contact_rate", d5, "all", "all"): (1.0, 1.0, 1.0),
        ("repeat_contact_rate", d5, "channel", "app"): (1.0, 1.0, 1.0),
        ("repeat_contact_rate", d9, "all", "all"): (0.0, 1.0, 0.0),  # b2: nothing after
        ("repeat_contact_rate", d9, "channel", "voice"): (0.0, 1.0, 0.0),
        ("repeat_contact_rate", d12, "all", "all"): (0.0, 1.0, 0.0),  # a3
        ("repeat_contact_rate", d12, "channel", "voice"): (0.0, 1.0, 0.0),
        # FCR, unknown resolved counts as resolved. Jan 1: a1 unknown but repeated -> 0;
        # b1 resolved=false -> 0; c1 unknown, not repeated -> 1. 1/3.
        ("first_contact_resolution", d1, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("first_contact_resolution", d1, "channel", "voice"): (0.0, 2.0, 0.0),
        ("first_contact_resolution", d1, "channel", "chat"): (1.0, 1.0, 1.0),
        # Jan 5: a2 resolved=true but repeated by a3 -> 0/1
        ("first_contact_resolution", d5, "all", "all"): (0.0, 1.0, 0.0),
        ("first_contact_resolution", d5, "channel", "app"): (0.0, 1.0, 0.0),
        # Jan 9 (b2) and Jan 12 (a3): unknown, not repeated -> 1/1
        ("first_contact_resolution", d9, "all", "all"): (1.0, 1.0, 1.0),
        ("first_contact_resolution", d9, "channel", "voice"): (1.0, 1.0, 1.0),
        ("first_contact_resolution", d12, "all", "all"): (1.0, 1.0, 1.0),
        ("first_contact_resolution", d12, "channel", "voice"): (1.0, 1.0, 1.0),
    }
    assert got == expected


def test_followed_contacts_by_customer_base(spark):
    rows = [
        contact("k1", "K", dt(1, 9)),  # K is a CRM customer
        contact("d1", "D", dt(1, 10), "app"),  # D: a key built from an app id alone
        contact("x1", None, dt(1, 11), "web"),  # anonymous
    ]
    contacts = spark.createDataFrame(rows, CONTACTS)
    base = dict.fromkeys(["customer_key", "customer_id", *CUSTOMER_ATTRIBUTES])
    customers = spark.createDataFrame(
        [{**base, "customer_key": "K", "customer_id": "1", "valid_from": dt(1)},
         {**base, "customer_key": "K", "customer_id": "1", "valid_from": dt(2)}],  # 2 versions
        CUSTOMERS,
    )  # fmt: skip

    def ids(base: str) -> list[str]:
        followed = kpis.followed_contacts(contacts, customers, base)
        return sorted(r.contact_id for r in followed.collect())

    assert ids("crm") == ["k1"]  # once, though K has two customer versions
    assert ids("any_key") == ["d1", "k1"]
    with pytest.raises(ValueError, match="customer base 'all'"):
        kpis.followed_contacts(contacts, customers, "all")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # Jan 1 FCR base a1 (unknown, repeated), b1 (false), c1 (unknown, not repeated)
        ("unresolved", (0.0, 3.0)),  # unknown = not resolved: nobody counts, base stays 3
        ("excluded", (0.0, 1.0)),  # a1 and c1 leave the base: only b1 (false) -> 0/1
    ],
)
def test_fcr_unknown_resolved_policies(spark, policy, expected):
    contacts = kpis.inbound(spark.createDataFrame(REPEAT_ROWS, CONTACTS))
    facts = kpis.repeat_facts(contacts, 7, policy)
    got = aggregate(spark, facts, catalog_of(["all"], "first_contact_resolution"))
    assert got[("first_contact_resolution", date(2026, 1, 1), "all", "all")][:2] == expected


# ------------------------------------------------------------------ handling KPIs
def _handling_rows():
    q = dt(10, 9)  # queue entry

    def at(s):
        return q + timedelta(seconds=s)

    common = {"handled_by_agent": False, "abandoned": False, "transferred": False}
    return [
        contact("v1", "A", dt(10, 8, 59), queue="billing", queue_ts=q, answer_ts=at(10),
                wait_s=10.0, talk_s=300.0, hold_s=30.0, wrapup_s=60.0,
                **{**common, "handled_by_agent": True}),
        contact("v2", "B", dt(10, 8, 59), queue="billing", queue_ts=q, answer_ts=at(40),
                wait_s=40.0, talk_s=100.0, wrapup_s=20.0,
                **{**common, "handled_by_agent": True, "transferred": True}),
        contact("v3", "C", dt(10, 8, 59), queue="tech", queue_ts=q, wait_s=3.0,
                **{**common, "abandoned": True}),  # short abandon (< 5 s)
        contact("v4", None, dt(10, 8, 59), queue="tech", queue_ts=q, wait_s=30.0,
                **{**common, "abandoned": True}),
        contact("i1", "A", dt(10, 7), "ivr", self_service=True, **common),
        contact("w1", "D", dt(10, 11), "online_agent", handle_s=500.0,
                **{**common, "handled_by_agent": True}),
        contact("o1", "A", dt(10, 12), queue="sales", queue_ts=q, answer_ts=at(1), wait_s=1.0,
                talk_s=999.0, direction="outbound", **{**common, "handled_by_agent": True}),
    ]  # fmt: skip


def test_handling_kpis_golden(spark):
    contacts = kpis.inbound(spark.createDataFrame(_handling_rows(), CONTACTS))
    facts = kpis.handling_facts(contacts, short_abandon_s=5, service_level_s=20)
    ids = [
        "average_handle_time",
        "average_speed_of_answer",
        "abandon_rate",
        "service_level",
        "transfer_rate",
        "agent_handled_share",
    ]
    catalog = catalog_of(["all", "queue"], *ids) | catalog_of(["channel"], "channel_mix")
    got = aggregate(spark, facts, catalog)
    expected = {
        # AHT over agent-handled contacts with talk time: v1 300+30+60 = 390, v2 100+0+20 =
        # 120 (w1 has no talk split, o1 is outbound): 510 / 2 = 255 s
        ("average_handle_time", D, "all", "all"): (510.0, 2.0, 255.0),
        ("average_handle_time", D, "queue", "billing"): (510.0, 2.0, 255.0),
        # ASA over answered: v1 10 s, v2 40 s -> 50 / 2 = 25 s
        ("average_speed_of_answer", D, "all", "all"): (50.0, 2.0, 25.0),
        ("average_speed_of_answer", D, "queue", "billing"): (50.0, 2.0, 25.0),
        # offered = queued v1 v2 v3 v4, minus the short abandon v3 = 3; abandoned v4 -> 1/3
        ("abandon_rate", D, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("abandon_rate", D, "queue", "billing"): (0.0, 2.0, 0.0),
        ("abandon_rate", D, "queue", "tech"): (1.0, 1.0, 1.0),
        # service level: answered within 20 s: v1 (10 s) only, same base of 3 -> 1/3
        ("service_level", D, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("service_level", D, "queue", "billing"): (1.0, 2.0, 0.5),
        ("service_level", D, "queue", "tech"): (0.0, 1.0, 0.0),
        # transfers among agent-handled v1, v2, w1: v2 -> 1/3 (w1 has no queue)
        ("transfer_rate", D, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("transfer_rate", D, "queue", "billing"): (1.0, 2.0, 0.5),
        # agent-handled among all 6 inbound contacts: v1, v2, w1 -> 3/6
        ("agent_handled_share", D, "all", "all"): (3.0, 6.0, 0.5),
        ("agent_handled_share", D, "queue", "billing"): (2.0, 2.0, 1.0),
        ("agent_handled_share", D, "queue", "tech"): (0.0, 2.0, 0.0),
        # channel mix of the 6 inbound contacts: voice v1-v4 = 4, ivr 1, online_agent 1
        ("channel_mix", D, "channel", "voice"): (4.0, 6.0, round(4 / 6, 6)),
        ("channel_mix", D, "channel", "ivr"): (1.0, 6.0, round(1 / 6, 6)),
        ("channel_mix", D, "channel", "online_agent"): (1.0, 6.0, round(1 / 6, 6)),
    }
    assert got == expected


# ------------------------------------------------------------------ channel shift
def test_channel_shift_golden(spark):
    rows = [
        # P: hotline, then digital 2 days later, never back
        contact("p1", "P", dt(10, 9), "voice"),
        contact("p2", "P", dt(12, 10), "app"),
        # Q: hotline, then digital 8 days + 1 h later (outside 7 days)
        contact("q1", "Q", dt(10, 8), "ivr"),
        contact("q2", "Q", dt(18, 9), "web"),
        # R: digital, hotline the same day, digital next day, hotline again 4 days later
        contact("r1", "R", dt(10, 7), "app"),
        contact("r2", "R", dt(10, 12), "voice"),
        contact("r3", "R", dt(11, 9), "app"),
        contact("r4", "R", dt(15, 9), "voice"),
        contact("s1", "S", dt(10, 9), "chat"),  # neither hotline nor digital in this test
    ]
    contacts = spark.createDataFrame(rows, CONTACTS)
    facts = kpis.shift_facts(contacts, ["voice", "ivr"], ["app", "web"], window_days=7)
    ids = ["channel_diversion_rate", "channel_return_rate", "channel_retention_rate"]
    got = aggregate(spark, facts, catalog_of(["all"], *ids))
    day = {d: date(2026, 1, d) for d in (10, 11, 12, 15, 18)}
    expected = {
        # Jan 10 hotline customers P, Q, R. P: app 2 days later -> diverted. Q: web 8 d 1 h
        # later -> no. R: voice 12:00, app next day 09:00 -> diverted. 2/3.
        ("channel_diversion_rate", day[10], "all", "all"): (2.0, 3.0, round(2 / 3, 6)),
        # Jan 15 hotline R: no digital contact after it -> 0/1
        ("channel_diversion_rate", day[15], "all", "all"): (0.0, 1.0, 0.0),
        # Jan 10 digital R (app 07:00): voice at 12:00 the same day -> returned, 1/1
        ("channel_return_rate", day[10], "all", "all"): (1.0, 1.0, 1.0),
        # Jan 11 digital R (app 09:00): voice Jan 15 (4 days) -> returned, 1/1
        ("channel_return_rate", day[11], "all", "all"): (1.0, 1.0, 1.0),
        # Jan 12 digital P: no hotline after -> 0/1; Jan 18 digital Q: none after -> 0/1
        ("channel_return_rate", day[12], "all", "all"): (0.0, 1.0, 0.0),
        ("channel_return_rate", day[18], "all", "all"): (0.0, 1.0, 0.0),
        # retention base = digital contacts within 7 d after a hotline contact. Jan 10: r1
        # has no earlier hotline contact -> no base row. Jan 11: r3 21 h after r2 -> base,
        # but voice r4 4 days after r3 -> not retained, 0/1. Jan 12: p2 2 days after p1 ->
        # base, no hotline after -> retained 1/1. Jan 18: q2 is 8 d 1 h after q1 -> no base.
        ("channel_retention_rate", day[11], "all", "all"): (0.0, 1.0, 0.0),
        ("channel_retention_rate", day[12], "all", "all"): (1.0, 1.0, 1.0),
    }
    assert got == expected


# ------------------------------------------------------------------ surveys, complaints, marketing
def test_nps_and_csat_golden(spark):
    ts = dt(10, 18)
    answers = [("voice", 10, 5), ("voice", 9, 4), ("app", 9, 3), ("app", 7, None),
               ("voice", 6, 1), ("app", 0, 2), ("app", None, 4)]  # fmt: skip
    surveys = spark.createDataFrame(
        [
            (f"s{i}", f"c{i}", "K", ch, nps, csat, ts, D)
            for i, (ch, nps, csat) in enumerate(answers)
        ],
        SURVEYS,
    )
    got = aggregate(
        spark, kpis.survey_facts(surveys), catalog_of(["all", "channel"], "nps", "csat")
    )
    expected = {
        # nps answers 10, 9, 9, 7, 6, 0 (one null): promoters 3, detractors 2, n 6
        # NPS = 100 * (3 - 2) / 6 = 16.666667
        ("nps", D, "all", "all"): (1.0, 6.0, round(100 / 6, 6)),
        # voice 10, 9, 6: 100 * (2 - 1) / 3 = 33.333333
        ("nps", D, "channel", "voice"): (1.0, 3.0, round(100 / 3, 6)),
        # app 9, 7, 0: 100 * (1 - 1) / 3 = 0
        ("nps", D, "channel", "app"): (0.0, 3.0, 0.0),
        # csat answers 5, 4, 3, 1, 2, 4 (one null): 4 or 5 -> 5, 4, 4 = 3 of 6
        ("csat", D, "all", "all"): (3.0, 6.0, 0.5),
        ("csat", D, "channel", "voice"): (2.0, 3.0, round(2 / 3, 6)),  # 5, 4, 1
        ("csat", D, "channel", "app"): (1.0, 3.0, round(1 / 3, 6)),  # 3, 2, 4
    }
    assert got == expected


def test_complaint_rate_golden(spark):
    contacts = spark.createDataFrame(
        [contact(f"c{i}", "A", dt(10, 8 + i)) for i in range(4)], CONTACTS
    )
    tickets = spark.createDataFrame(
        [("t1", "A", date(2026, 1, 10)), ("t2", None, date(2026, 1, 10)),
         ("t3", "A", date(2026, 1, 11))],
        "ticket_id string, customer_key string, open_date date",
    )  # fmt: skip
    facts = kpis.handling_facts(contacts, 5, 20).unionByName(kpis.complaint_facts(tickets))
    got = aggregate(spark, facts, catalog_of(["all"], "complaint_rate"))
    assert got == {
        # Jan 10: 2 tickets per 4 contacts -> 1000 * 2 / 4 = 500 per 1,000 contacts
        ("complaint_rate", D, "all", "all"): (2.0, 4.0, 500.0),
        # Jan 11: a ticket but no contacts: no rate (null), not a division by zero
        ("complaint_rate", date(2026, 1, 11), "all", "all"): (1.0, 0.0, None),
    }


def test_marketing_success_rate_golden(spark):
    rows = [  # group, connected, responded, channel
        ("treatment", True, True, "call"),
        ("treatment", True, False, "call"),
        ("treatment", True, None, "sms"),  # no response recorded: not a success
        ("treatment", False, True, "call"),  # not connected: not in the base
        ("control", False, True, None),  # holdout: never contacted, not in the base
    ]
    attempts = spark.createDataFrame(
        [(f"a{i}", g, c, r, ch, "K", D) for i, (g, c, r, ch) in enumerate(rows)],
        "attempt_id string, group string, connected boolean, responded boolean, "
        "channel string, customer_key string, attempt_date date",
    )
    got = aggregate(
        spark,
        kpis.campaign_facts(attempts),
        catalog_of(["all", "channel"], "marketing_success_rate"),
    )
    assert got == {
        # connected treatment attempts: 3, responded: 1 -> 1/3
        ("marketing_success_rate", D, "all", "all"): (1.0, 3.0, round(1 / 3, 6)),
        ("marketing_success_rate", D, "channel", "call"): (1.0, 2.0, 0.5),
        ("marketing_success_rate", D, "channel", "sms"): (0.0, 1.0, 0.0),
    }


# ------------------------------------------------------------------ concentration
def test_concentration_golden(spark):
    # contacts in the 3-day window Jan 8-10: A 10, B 5, C 3, D 2, E..J 1 each -> 26
    # contacts by 10 customers. J's Jan 7 contact is outside the window; anonymous ignored.
    counts = {"A": 10, "B": 5, "C": 3, "D": 2, **{k: 1 for k in "EFGHIJ"}}
    rows = [contact(f"{k}{i}", k, dt(8 + i % 3, 9, i)) for k, n in counts.items() for i in range(n)]
    rows += [contact("J-old", "J", dt(7, 9)), contact("anon", None, dt(9, 9))]
    out = kpis.concentration(
        spark.createDataFrame(rows, CONTACTS), D, D, window_days=3,
        top_shares=[0.14, 0.5], lorenz_points=4,
    )  # fmt: skip
    got = {(r.dimension, r.dimension_value): (r.numerator, r.denominator) for r in out.collect()}
    assert got == {
        # top 14% of 10 customers = 1.4 customers: A's 10 + 0.4 x B's 5 = 12 of 26
        ("top_share", "0.14"): (12.0, 26.0),
        # top 50% = 5 customers: 10 + 5 + 3 + 2 + 1 = 21
        ("top_share", "0.5"): (21.0, 26.0),
        # Lorenz: the least active 25% = 2.5 customers with 1 contact each: 2.5
        ("lorenz", "0.25"): (2.5, 26.0),
        # least active 50% = 5 customers with 1 each: 5
        ("lorenz", "0.5"): (5.0, 26.0),
        # least active 75% = 7.5 customers: six 1s + D's 2 + half of C's 3 = 9.5
        ("lorenz", "0.75"): (9.5, 26.0),
        ("lorenz", "1"): (26.0, 26.0),
    }
    values = {(r.dimension, r.dimension_value): r.value for r in out.collect()}
    assert values[("top_share", "0.14")] == pytest.approx(12 / 26)


# ------------------------------------------------------------------ customers as of the day
def test_customer_attributes_as_of_the_day(spark):
    base = dict.fromkeys(["customer_key", "customer_id", *CUSTOMER_ATTRIBUTES])
    versions = [
        {**base, "customer_key": "K", "province": "Anhui", "customer_type": "C",
         "valid_from": dt(1), "valid_to": dt(10, 12), "is_current": False},
        {**base, "customer_key": "K", "province": "Beijing", "customer_type": "B",
         "valid_from": dt(10, 12), "valid_to": None, "is_current": True},
        {**base, "customer_key": "M", "province": "Chongqing", "customer_type": "C",
         "valid_from": dt(20), "valid_to": None, "is_current": True},
    ]  # fmt: skip
    customers = spark.createDataFrame(versions, CUSTOMERS)
    days = spark.createDataFrame(
        [("K", date(2026, 1, 9)), ("K", date(2026, 1, 10)), ("M", D), ("Z", D), ("K", D)],
        "customer_key string, kpi_date date",
    )
    got = sorted(tuple(r) for r in kpis.customer_attributes(customers, days, "province").collect())
    assert got == [
        ("K", date(2026, 1, 9), "Anhui", "C"),  # the version valid at the end of Jan 9
        ("K", D, "Beijing", "B"),  # changed at noon on Jan 10: valid at the end of the day
        ("M", D, "Chongqing", "C"),  # created Jan 20: no version yet, the current one
    ]  # Z has no customer row: no attributes (reported as "unknown")


def test_region_and_customer_type_dimensions(spark):
    contacts = spark.createDataFrame(
        [
            contact("a", "K", dt(10, 9)),
            contact("b", "K", dt(10, 10)),
            contact("c", "Z", dt(10, 11)),
        ],
        CONTACTS,
    )
    attributes = spark.createDataFrame(
        [("K", D, "Beijing", "B")],
        "customer_key string, kpi_date date, region string, customer_type string",
    )
    facts = kpis.repeat_facts(contacts, 7, "resolved")
    got = aggregate(
        spark, facts, catalog_of(["region", "customer_type"], "repeat_contact_rate"), attributes
    )
    assert got == {
        # K: a followed by b -> repeated, b not; Z has no customer row -> "unknown"
        ("repeat_contact_rate", D, "region", "Beijing"): (1.0, 2.0, 0.5),
        ("repeat_contact_rate", D, "region", "unknown"): (0.0, 1.0, 0.0),
        ("repeat_contact_rate", D, "customer_type", "B"): (1.0, 2.0, 0.5),
        ("repeat_contact_rate", D, "customer_type", "unknown"): (0.0, 1.0, 0.0),
    }


# ------------------------------------------------------------------ targets and alerts
def test_finalize_targets_scope_and_completeness(spark):
    agg = spark.createDataFrame(
        [
            ("repeat_contact_rate", D, "all", "all", 4.0, 10.0, 0.4),
            ("repeat_contact_rate", date(2026, 1, 3), "all", "all", 2.0, 10.0, 0.2),
            ("channel_mix", D, "channel", "voice", 7.0, 10.0, 0.7),
            ("channel_mix", D, "channel", "app", 3.0, 10.0, 0.3),
            ("csat", D, "all", "all", 0.0, 0.0, None),
        ],
        kpis.AGG_SCHEMA,
    )
    catalog = {
        "repeat_contact_rate": definition("repeat_contact_rate", ["all"], "lower", 0.3, version=2),
        "channel_mix": definition("channel_mix", ["channel"], "lower", 0.6, ["channel=voice"]),
        "csat": definition("csat", ["all"], "higher", 0.8),
    }
    out = kpis.finalize(agg, catalog, D, {"repeat_contact_rate": 7, "channel_mix": 0, "csat": 0})
    got = sorted(
        (r.kpi_id, r.kpi_date, r.dimension_value, r.kpi_version, r.target, r.breach, r.complete)
        for r in out.collect()
    )
    assert got == [
        ("channel_mix", D, "app", 1, None, None, True),  # outside the target scope
        ("channel_mix", D, "voice", 1, 0.6, True, True),  # 0.7 > 0.6, lower is better
        ("csat", D, "all", 1, 0.8, None, True),  # no value, no breach
        # Jan 3 + 7 days = Jan 10 <= run date: final; 0.2 <= 0.3: no breach
        ("repeat_contact_rate", date(2026, 1, 3), "all", 2, 0.3, False, True),
        # Jan 10: look-ahead not over -> provisional; 0.4 > 0.3: breach
        ("repeat_contact_rate", D, "all", 2, 0.3, True, False),
    ]
    assert out.schema == kpis.KPI_DAILY_SCHEMA


def test_alerts_breach_and_anomaly(spark):
    history = [0.30, 0.31, 0.29, 0.30, 0.31, 0.29, 0.30]  # Jan 3..9
    rows = [
        (date(2026, 1, 3 + i), k, 1, "all", "all", v, 30.0, 100.0, 0.5, False, True)
        for i, v in enumerate(history)
        for k in ("aht", "fcr")
    ]
    rows += [
        # mean 0.30, sample sd = sqrt((0 + 1 + 1 + 0 + 1 + 1 + 0) e-4 / 6) = 0.0081650;
        # 0.40 is (0.40 - 0.30) / 0.0081650 = 12.2 sd away (> 3): anomaly
        (D, "aht", 1, "all", "all", 0.40, 40.0, 100.0, 0.5, False, True),
        # 0.305 is 0.6 sd away: no anomaly; but breach=true: target_breach
        (D, "fcr", 1, "all", "all", 0.305, 30.5, 100.0, 0.5, True, True),
        # provisional rows raise nothing, even when breached and far off
        (D, "rcr", 1, "all", "all", 0.9, 90.0, 100.0, 0.5, True, False),
        # nor do rows over fewer than min_denominator (here 10) contacts
        (D, "fcr", 1, "region", "Tibet", 0.9, 8.0, 9.0, 0.5, True, True),
    ]
    daily = spark.createDataFrame(rows, kpis.KPI_DAILY_SCHEMA)
    out = kpis.alerts(daily, D, D, history_days=28, min_history=7, z=3.0, min_denominator=10)
    got = sorted((r.kpi_id, r.kind, r.value) for r in out.collect())
    assert got == [("aht", "anomaly", 0.40), ("fcr", "target_breach", 0.305)]
    detail = out.where("kind = 'anomaly'").first().detail
    assert "+12.2 sd" in detail and "n=7" in detail
    # with 8 required history points there are only 7: no anomaly test
    fewer = kpis.alerts(daily, D, D, history_days=28, min_history=8, z=3.0, min_denominator=10)
    assert [r.kind for r in fewer.collect()] == ["target_breach"]


# ------------------------------------------------------------------ catalog
def test_shipped_catalog_covers_every_kpi():
    from tests.conftest import REPO

    catalog = kpis.load_catalog(REPO / "conf" / "kpis")
    assert set(catalog) == set(kpis.IMPLEMENTED)


GOOD = """id: abandon_rate
name: Abandon rate
description: d
version: 1
unit: ratio
dimensions: [all, queue]
target: {direction: lower, threshold: 0.08}
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[all, queue]", "[all, brand]"), "KPI abandon_rate: dimensions.1:"),
        (("threshold: 0.08", "limit: 0.08"), "KPI abandon_rate: target.threshold: Field required"),
        (("direction: lower", "direction: down"), "KPI abandon_rate: target.direction:"),
        (
            ("[all, queue]", "[all, lorenz]"),
            "KPI abandon_rate: dimensions: ['lorenz'] not available",
        ),
        (("id: abandon_rate", "id: abandon_rates"), "KPI abandon_rates: id: must equal the file"),
        (("lower, threshold: 0.08", "lower, threshold: 0.08, scope: [region]"), "target.scope"),
    ],
)
def test_catalog_errors_name_the_kpi_and_key(tmp_path, edit, message):
    (tmp_path / "abandon_rate.yaml").write_text(GOOD.replace(*edit))
    with pytest.raises(kpis.CatalogError) as err:
        kpis.load_catalog(tmp_path)
    assert message in str(err.value)


def test_catalog_good_file_loads(tmp_path):
    (tmp_path / "abandon_rate.yaml").write_text(GOOD)
    kpi = kpis.load_catalog(tmp_path)["abandon_rate"]
    assert (kpi.dimensions, kpi.target.direction, kpi.target.threshold) == (
        ["all", "queue"],
        "lower",
        0.08,
    )


# ------------------------------------------------------------------ the job
def test_job_rerun_is_idempotent_alerts_and_skips_missing_tables(spark, lake, job_argv, caplog):
    from jobs.kpis import main

    q = dt(10, 9)
    rows = [
        # Jan 10: an answered voice call of 1,000 s handle time (AHT target 420: breach)
        contact("v1", "K", dt(10, 8, 59), queue="billing", queue_ts=q,
                answer_ts=q + timedelta(seconds=12), wait_s=12.0, talk_s=900.0, hold_s=40.0,
                wrapup_s=60.0, handled_by_agent=True, abandoned=False, transferred=False),
        contact("a1", "K", dt(9, 10), "app", resolved=True, handled_by_agent=False),
        contact("w1", "M", dt(3, 10), "web", handled_by_agent=False),
        contact("old", "M", dt(1, 10), "web", handled_by_agent=False),  # before Jan 3: not restated
    ]  # fmt: skip
    lake.write(
        spark.createDataFrame(rows, CONTACTS), "silver/contacts", partition_by=["contact_date"]
    )
    base = dict.fromkeys(["customer_key", "customer_id", *CUSTOMER_ATTRIBUTES])
    customers = [
        {**base, "customer_key": "K", "customer_id": "1", "province": "Hebei",
         "customer_type": "C", "valid_from": dt(1), "is_current": True},
    ]  # fmt: skip
    lake.write(spark.createDataFrame(customers, CUSTOMERS), "silver/customers")
    surveys = [("s1", "v1", "K", "voice", 10, 5, dt(10, 20), D)]
    lake.write(spark.createDataFrame(surveys, SURVEYS), "silver/surveys")

    # one contact per group here: let groups of 1 raise alerts
    argv = job_argv("2026-01-10", overrides=("kpis.alert_min_denominator=1",))
    assert main(argv, spark=spark) == 0
    first = sorted(lake.read("gold/kpi_daily").collect())
    alerts_first = sorted(lake.read("gold/kpi_alerts").collect())
    assert main(argv, spark=spark) == 0
    assert sorted(lake.read("gold/kpi_daily").collect()) == first
    assert sorted(lake.read("gold/kpi_alerts").collect()) == alerts_first

    daily = lake.read("gold/kpi_daily")
    # restated dates: Jan 3 .. Jan 10 (run date and the 7 days before)
    assert {r.kpi_date for r in daily.select("kpi_date").distinct().collect()} <= {
        date(2026, 1, d) for d in range(3, 11)
    }
    aht = daily.where("kpi_id = 'average_handle_time' and dimension = 'all'").collect()
    # 900 + 40 + 60 = 1000 s > 420 s target
    assert [(r.kpi_date, r.value, r.target, r.breach, r.complete) for r in aht] == [
        (D, 1000.0, 420.0, True, True)
    ]
    region = daily.where("kpi_id = 'average_handle_time' and dimension = 'region'").first()
    assert region.dimension_value == "Hebei"
    nps = daily.where("kpi_id = 'nps' and dimension = 'all'").first()
    assert nps.value == 100.0  # one promoter of one answer
    skipped = {"complaint_rate", "marketing_success_rate"}
    assert not daily.where(F.col("kpi_id").isin(list(skipped))).count()
    assert "silver/complaints missing: skipping KPIs ['complaint_rate']" in caplog.text

    # repeat rate over CRM customers (kpis.customer_base crm): K only. Jan 9: a1 followed by
    # v1 a day later -> 1/1; Jan 10: v1, nothing after -> 0/1. M (w1, Jan 3) is no CRM
    # customer: no Jan 3 row.
    repeat = daily.where("kpi_id = 'repeat_contact_rate' and dimension = 'all'").collect()
    assert sorted((r.kpi_date, r.numerator, r.denominator) for r in repeat) == [
        (date(2026, 1, 9), 1.0, 1.0),
        (D, 0.0, 1.0),
    ]

    alerts = lake.read("gold/kpi_alerts").where("kind = 'target_breach'")
    breached = {(r.kpi_id, r.kpi_date, r.dimension, r.dimension_value) for r in alerts.collect()}
    assert ("average_handle_time", D, "all", "all") in breached
    # the Jan 10 repeat rate is provisional (look-ahead not over): no alert for it
    assert not any(k == "repeat_contact_rate" and d == D for k, d, _, _ in breached)


def test_job_stops_on_a_bad_catalog_file_naming_the_kpi(spark, job_argv, tmp_path, caplog):
    import shutil

    from jobs.kpis import main
    from tests.conftest import REPO

    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    bad = conf / "kpis" / "abandon_rate.yaml"
    bad.write_text(bad.read_text().replace("dimensions: [all,", "dimensions: [all, brand,"))
    assert main(job_argv("2026-01-10", "--conf-dir", str(conf)), spark=spark) != 0
    assert "KPI abandon_rate: dimensions.1:" in caplog.text


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("kpis.digital_channels=[app, voice]", "kpis.digital_channels"),
        ("kpis.concentration_top_shares=[0.14, 1.5]", "kpis.concentration_top_shares"),
        ("kpis.fcr_unknown_resolved=maybe", "kpis.fcr_unknown_resolved"),
        ("kpis.customer_base=everyone", "kpis.customer_base"),
    ],
)
def test_kpis_config_errors_name_the_key(override, message):
    from contactlake.config import ConfigError, load_config
    from tests.conftest import REPO

    with pytest.raises(ConfigError, match=message):
        load_config("test", [override], conf_dir=REPO / "conf")
