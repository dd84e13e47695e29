"""Customer features on hand-built silver rows, with values worked out by hand.

Snapshot 2026-01-31: the cutoff is 2026-02-01 00:00 UTC. Windows: 7d from 2026-01-25,
30d from 2026-01-02, 90d from 2025-11-03. Revenue: bills after 2025-10-31 (3 months) and
2025-08-01..2025-10-31 (the 3 before); RFM payments since 2025-02-01.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from contactlake import schemas
from contactlake.features import abc_tiers, customer_features
from contactlake.unify import CONTACT_COLUMNS, CUSTOMER_ATTRIBUTES

SNAPSHOT = date(2026, 1, 31)
PARAMS = {
    "windows_days": [7, 30, 90],
    "channels": ["voice", "app", "wechat", "chatbot"],
    "digital_channels": ["app", "wechat", "chatbot"],
    "repeat_window_days": 7,
    "experience_days": 90,
    "revenue_months": 3,
    "rfm_days": 365,
    "abc_shares": [0.7, 0.2, 0.1],
    "lookback_days": 365,
    "long_wait_s": 120,
}

_CUSTOMER_TYPES = {"birth_date": "date", "city_tier": "int", "open_date": "date"}
CUSTOMERS_DDL = ", ".join(
    ["customer_key string", "customer_id string"]
    + [
        f"{c} {_CUSTOMER_TYPES.get(c, 'boolean' if c.startswith('consent_') else 'string')}"
        for c in CUSTOMER_ATTRIBUTES
    ]
    + ["valid_from timestamp", "valid_to timestamp", "is_current boolean", "attributes_hash string"]
)
_CONTACT_TYPES = {
    "contact_date": "date",
    **{c: "timestamp" for c in ("start_ts", "queue_ts", "answer_ts", "end_ts")},
    **{c: "double" for c in ("wait_s", "talk_s", "hold_s", "wrapup_s", "handle_s")},
    **{
        c: "boolean"
        for c in ("handled_by_agent", "abandoned", "transferred", "resolved", "self_service")
    },
    "message_count": "int",
    "_line": "long",
}
CONTACTS_DDL = ", ".join(
    f"{c} {_CONTACT_TYPES.get(c, 'string')}" for c in ["customer_key", *CONTACT_COLUMNS]
)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _frame(spark, ddl: str, rows: list[dict]):
    names = [part.split()[0] for part in ddl.split(", ")]
    unknown = {k for r in rows for k in r} - set(names)
    assert not unknown, unknown
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], ddl)


def _customer(key, version_from, version_to=None, **attrs):
    return {
        "customer_key": key,
        "customer_id": key.replace("K", "C"),
        "valid_from": ts(version_from),
        "valid_to": ts(version_to) if version_to else None,
        "is_current": version_to is None,
        **attrs,
    }


def _contact(key, cid, channel, start, direction="inbound", handle=60.0, **more):
    return {
        "customer_key": key,
        "contact_id": cid,
        "contact_date": ts(start).date(),
        "channel": channel,
        "direction": direction,
        "start_ts": ts(start),
        "handle_s": handle,
        "abandoned": False,
        "transferred": False,
        **more,
    }


def silver(spark, with_later: bool) -> dict:
    """The silver inputs; ``with_later`` adds rows and updates made after the cutoff."""
    k1_v1 = dict(gender="F", birth_date=date(2000, 2, 15), city="Beijing", city_tier=1)
    k1_common = dict(occupation="teacher", customer_type="C", open_date=date(2025, 6, 30))
    customers = [
        _customer("K1", "2025-01-01 00:00:00", "2026-01-20 00:00:00", **k1_v1, **k1_common),
        _customer(
            "K1",
            "2026-01-20 00:00:00",
            "2026-02-05 00:00:00" if with_later else None,
            **{**k1_v1, "city": "Hangzhou", "city_tier": 2},
            **k1_common,
        ),
        _customer(
            "K2",
            "2025-03-01 00:00:00",
            gender="M",
            birth_date=date(1990, 1, 31),
            city_tier=4,
            customer_type="B",
            industry="retail",
        ),
        _customer("K4", "2025-01-01 00:00:00", customer_type="C"),
    ]
    contacts = [
        _contact("K1", "a1", "voice", "2026-01-30 10:00:00", handle=120.0, wait_s=30.0),
        _contact(
            "K1", "a2", "voice", "2026-01-31 09:00:00", handle=200.0, wait_s=120.0, transferred=True
        ),
        _contact("K1", "a3", "app", "2026-01-20 12:00:00", handle=300.0, resolved=False),
        _contact(
            "K1", "a4", "voice", "2025-12-15 08:00:00", handle=0.0, wait_s=165.0, abandoned=True
        ),
        _contact("K1", "a5", "wechat", "2025-10-01 08:00:00", handle=100.0),
        _contact("K1", "a6", "voice", "2026-01-29 15:00:00", direction="outbound"),
        _contact("K2", "b1", "chatbot", "2026-01-31 23:00:00", handle=50.0, resolved=True),
    ]
    subscriptions = [
        dict(customer_key="K1", account_id="A1", plan="basic", monthly_fee=50.0,
             start_date=date(2025, 7, 1), end_date=date(2025, 12, 31), record_id="s1"),
        dict(customer_key="K1", account_id="A1", plan="plus", monthly_fee=80.0,
             start_date=date(2026, 1, 1), record_id="s2"),
        dict(customer_key="K2", account_id="A2", plan="biz", monthly_fee=300.0,
             start_date=date(2025, 11, 1), end_date=date(2026, 1, 15), cancelled=True,
             record_id="s4"),
    ]  # fmt: skip
    bills = [
        dict(customer_key="K1", bill_date=date(2025, 9, 5), amount=50.0,
             due_date=date(2025, 9, 25), paid_at=ts("2025-09-20 10:00:00")),
        dict(customer_key="K1", bill_date=date(2025, 11, 5), amount=50.0,
             due_date=date(2025, 11, 25), paid_at=ts("2025-11-10 10:00:00")),
        dict(customer_key="K1", bill_date=date(2026, 1, 5), amount=80.0,
             due_date=date(2026, 1, 25)),
        dict(customer_key="K2", bill_date=date(2025, 11, 5), amount=300.0,
             paid_at=ts("2025-11-06 10:00:00")),
        dict(customer_key="K2", bill_date=date(2025, 12, 5), amount=300.0,
             paid_at=ts("2025-12-06 10:00:00")),
        dict(customer_key="K2", bill_date=date(2026, 1, 5), amount=150.0,
             paid_at=ts("2026-01-06 10:00:00")),
    ]  # fmt: skip
    complaints = [
        dict(ticket_id="t1", customer_key="K1", open_ts=ts("2026-01-10 09:00:00"),
             close_ts=ts("2026-01-12 09:00:00")),
        dict(ticket_id="t2", customer_key="K1", open_ts=ts("2026-01-28 09:00:00")),
        dict(ticket_id="t3", customer_key="K1", open_ts=ts("2025-10-01 09:00:00"),
             close_ts=ts("2025-10-02 09:00:00")),
    ]  # fmt: skip
    surveys = [
        dict(survey_id="v1", customer_key="K1", nps=9, csat=5, answered_ts=ts("2026-01-10 09:00:00")),
        dict(survey_id="v2", customer_key="K1", nps=3, csat=2, answered_ts=ts("2026-01-30 09:00:00")),
        dict(survey_id="v4", customer_key="K2", nps=8, csat=4, answered_ts=ts("2025-06-01 09:00:00")),
    ]  # fmt: skip
    campaign = [
        dict(attempt_id="c1", customer_key="K1", attempt_no=1, attempt_ts=ts("2026-01-05 10:00:00"),
             responded=False),
        dict(attempt_id="c2", customer_key="K1", attempt_no=2, attempt_ts=ts("2026-01-06 10:00:00"),
             responded=True),
        dict(attempt_id="c0", customer_key="K2", group="control", attempt_no=0, responded=False),
    ]  # fmt: skip
    if with_later:
        # new facts after the cutoff, and updates of rows the snapshot already saw
        customers.append(
            _customer("K1", "2026-02-05 00:00:00", **k1_v1, **{**k1_common, "occupation": "x"})
        )
        customers.append(_customer("K3", "2026-02-03 00:00:00", customer_type="C"))
        contacts += [
            _contact("K1", "a7", "voice", "2026-02-01 00:30:00"),  # would make a2 a repeat
            _contact("K2", "b2", "app", "2026-02-02 09:00:00"),
            _contact("K3", "c1", "voice", "2026-02-03 09:00:00"),
        ]
        subscriptions[1].update(end_date=date(2026, 2, 10), cancelled=True)
        subscriptions.append(
            dict(customer_key="K1", account_id="A1", plan="max", monthly_fee=120.0,
                 start_date=date(2026, 2, 11), record_id="s3")
        )  # fmt: skip
        bills[2]["paid_at"] = ts("2026-02-02 10:00:00")
        bills.append(dict(customer_key="K1", bill_date=date(2026, 2, 5), amount=80.0))
        complaints[1]["close_ts"] = ts("2026-02-03 09:00:00")
        complaints.append(
            dict(ticket_id="t4", customer_key="K2", open_ts=ts("2026-02-01 01:00:00"))
        )
        surveys.append(
            dict(survey_id="v3", customer_key="K1", nps=10, csat=5,
                 answered_ts=ts("2026-02-01 01:00:00"))
        )  # fmt: skip
        campaign.append(
            dict(attempt_id="c3", customer_key="K2", attempt_no=1,
                 attempt_ts=ts("2026-02-02 10:00:00"), responded=True)
        )  # fmt: skip
    return {
        "customers": _frame(spark, CUSTOMERS_DDL, customers),
        "contacts": _frame(spark, CONTACTS_DDL, contacts),
        "subscriptions": _frame(spark, schemas.SUBSCRIPTIONS, subscriptions),
        "bills": _frame(spark, schemas.BILLS, bills),
        "complaints": _frame(spark, schemas.COMPLAINTS, complaints),
        "surveys": _frame(spark, schemas.SURVEYS, surveys),
        "campaign_contacts": _frame(spark, schemas.CAMPAIGN_CONTACTS, campaign),
    }


def features_of(tables: dict, snapshot: date = SNAPSHOT):
    return customer_features(**tables, snapshot_date=snapshot, **PARAMS)


def _counts_zero() -> dict:
    """Every count and sum of a customer who did nothing (worked out from the column list)."""
    row = {}
    for w in (7, 30, 90):
        row |= {f"contacts_{w}d": 0, f"inbound_contacts_{w}d": 0, f"duration_{w}d": 0.0}
        for ch in ("voice", "app", "wechat", "chatbot"):
            row |= {f"contacts_{ch}_{w}d": 0, f"duration_{ch}_{w}d": 0.0}
        row |= {f"repeat_contacts_{w}d": 0, f"unresolved_contacts_{w}d": 0}
    row |= {"abandons_90d": 0, "transfers_90d": 0, "uses_app": 0, "uses_wechat": 0}
    row |= {"issues_90d": 0, "unresolved_issues_90d": 0, "long_waits_90d": 0}
    row |= {"active": 0, "active_subscriptions": 0, "plan_changes": 0}
    row |= {"revenue_3m": 0.0, "revenue_prev_3m": 0.0, "unpaid_amount": 0.0, "overdue_bills": 0}
    row |= {"rfm_frequency": 0, "rfm_monetary": 0.0}
    row |= {"complaints_90d": 0, "open_complaint": 0}
    row |= {"campaign_attempts_90d": 0, "campaign_responses_90d": 0}
    return row


EXPECTED = {
    "K1": {
        # the version valid at the snapshot (Hangzhou); birthday Feb 15 not reached yet
        **dict(customer_id="C1", age=25, gender="F", province=None, city="Hangzhou",
               city_tier=2, occupation="teacher", customer_type="C", industry=None,
               is_business=0),
        "tenure_days": 215,  # 2025-06-30 -> 2026-01-31
        **dict(tenure_years=215 / 365, log_tenure_years=math.log(215 / 365)),
        # s2 was still running at the snapshot (it ended on 2026-02-10); s1 -> s2 is a change;
        # s3 (2026-02-11) is not known yet
        **dict(active=1, active_subscriptions=1, plan="plus", monthly_fee=80.0, plan_changes=1,
               latest_monthly_fee=80.0, log_monthly_fee=math.log(80.0)),
        # bills 2025-11-05 (50) + 2026-01-05 (80); 2025-09-05 (50) before; the 80 unpaid, overdue
        **dict(revenue_3m=130.0, revenue_prev_3m=50.0, unpaid_amount=80.0, overdue_bills=1),
        # payments 2025-09-20 and 2025-11-10 (82 days before the snapshot)
        **dict(rfm_recency_days=82, rfm_frequency=2, rfm_monetary=100.0),
        # 7d: a1, a2 (inbound voice) and a6 (outbound voice); a1 is followed by a2 (repeat)
        **dict(contacts_7d=3, inbound_contacts_7d=2, duration_7d=380.0, contacts_voice_7d=3,
               duration_voice_7d=380.0, repeat_contacts_7d=1),
        # 30d adds a3 (app, not resolved; a1 comes 9.9 days later: no repeat)
        **dict(contacts_30d=4, inbound_contacts_30d=3, duration_30d=680.0, contacts_voice_30d=3,
               duration_voice_30d=380.0, contacts_app_30d=1, duration_app_30d=300.0,
               repeat_contacts_30d=1, unresolved_contacts_30d=1),
        # 90d adds a4 (abandoned voice, 0 s); a5 (wechat, October) is older than 90 days
        **dict(contacts_90d=5, inbound_contacts_90d=4, duration_90d=680.0, contacts_voice_90d=4,
               duration_voice_90d=380.0, contacts_app_90d=1, duration_app_90d=300.0,
               repeat_contacts_90d=1, unresolved_contacts_90d=2),
        **dict(days_since_last_contact=0, mean_wait_s_90d=105.0, abandons_90d=1, transfers_90d=1,
               digital_share_90d=0.2, uses_app=1, uses_wechat=0, top_channel_90d="voice"),
        # issues (contacts less than 7 days apart) in 90 days: a4 (abandoned; a3 comes 36 days
        # later), a3 (app, not resolved; a6 9.1 days later), a6 -> a1 -> a2 (resolution of a2
        # unknown; a7 comes after the cutoff); a4 waited 165 s (long), a2 exactly 120 s (not)
        **dict(issues_90d=3, unresolved_issues_90d=2, long_waits_90d=1),
        # t1, t2 in 90 days; t2 was still open at the snapshot (closed 2026-02-03)
        **dict(complaints_90d=2, open_complaint=1, days_since_last_complaint=3),
        **dict(latest_nps=3, mean_nps_90d=6.0, latest_csat=2, mean_csat_90d=3.5),
        **dict(campaign_attempts_90d=2, campaign_responses_90d=1, days_since_last_campaign=25),
        "abc_tier": "B",  # 750 of 880 (K2) is ahead: 85% < 90%
    },
    "K2": {
        **dict(customer_id="C2", age=36, gender="M", province=None, city=None, city_tier=4,
               occupation=None, customer_type="B", industry="retail", is_business=1),
        "tenure_days": 91,  # no open_date: first subscription 2025-11-01
        **dict(tenure_years=91 / 365, log_tenure_years=math.log(91 / 365)),
        # s4 ended 2026-01-15: no current fee, but the last plan held was worth 300
        **dict(active=0, plan=None, monthly_fee=None, log_monthly_fee=None,
               latest_monthly_fee=300.0),
        **dict(revenue_3m=750.0, rfm_recency_days=25, rfm_frequency=3, rfm_monetary=750.0),
        **{f"contacts_{w}d": 1 for w in (7, 30, 90)},
        **{f"inbound_contacts_{w}d": 1 for w in (7, 30, 90)},
        **{f"duration_{w}d": 50.0 for w in (7, 30, 90)},
        **{f"contacts_chatbot_{w}d": 1 for w in (7, 30, 90)},
        **{f"duration_chatbot_{w}d": 50.0 for w in (7, 30, 90)},
        **dict(days_since_last_contact=0, mean_wait_s_90d=None, digital_share_90d=1.0,
               top_channel_90d="chatbot"),
        "issues_90d": 1,  # b1, resolved (b2 comes after the cutoff)
        **dict(days_since_last_complaint=None, latest_nps=8, mean_nps_90d=None, latest_csat=4,
               mean_csat_90d=None, days_since_last_campaign=None),
        "abc_tier": "A",
    },
    "K4": {
        **dict(customer_id="C4", age=None, gender=None, province=None, city=None, city_tier=None,
               occupation=None, customer_type="C", industry=None, is_business=0,
               tenure_days=None, tenure_years=None, log_tenure_years=None),
        **dict(plan=None, monthly_fee=None, latest_monthly_fee=None, log_monthly_fee=None,
               rfm_recency_days=None),
        **dict(days_since_last_contact=None, mean_wait_s_90d=None, digital_share_90d=None,
               top_channel_90d=None),
        **dict(days_since_last_complaint=None, latest_nps=None, mean_nps_90d=None,
               latest_csat=None, mean_csat_90d=None, days_since_last_campaign=None),
        "abc_tier": "C",  # no revenue
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def with_later(spark):
    """Features of the snapshot computed from inputs that include later data (computed once)."""
    return features_of(silver(spark, with_later=True)).localCheckpoint()


def test_features_match_hand_worked_values(with_later):
    rows = {r.customer_key: r.asDict() for r in with_later.collect()}

    assert set(rows) == {"K1", "K2", "K4"}  # K3 became a customer after the snapshot
    for key, expected in EXPECTED.items():
        want = {"snapshot_date": SNAPSHOT, "customer_key": key, **_counts_zero(), **expected}
        got = rows[key]
        assert set(got) == set(want), set(got) ^ set(want)
        for column, value in want.items():
            assert got[column] == pytest.approx(value), f"{key}.{column}"


def test_later_data_does_not_change_an_earlier_snapshot(spark, with_later):
    before = features_of(silver(spark, with_later=False))

    assert_df_equality(before, with_later, ignore_row_order=True, ignore_nullable=True)
    # and the later data does count for a later snapshot
    later = features_of(silver(spark, with_later=True), date(2026, 2, 3))
    k1 = later.where("customer_key = 'K1'").first()
    assert (k1.repeat_contacts_7d, k1.open_complaint, k1.unpaid_amount) == (2, 0, 0.0)


def test_abc_tiers_split_revenue_70_20_10_with_ties_together(spark):
    df = spark.createDataFrame(
        [("a", 50.0), ("b", 30.0), ("c", 10.0), ("d", 10.0), ("e", 0.0)], "k string, rev double"
    )
    tiers = {r.k: r.abc_tier for r in abc_tiers(df, "rev", [0.7, 0.2, 0.1]).collect()}

    # ahead of each: a 0%, b 50% -> A; c and d 80% -> B (equal revenue, same tier); e no revenue
    assert tiers == {"a": "A", "b": "A", "c": "B", "d": "B", "e": "C"}


def test_features_job_replaces_its_snapshot_on_rerun(spark, job_argv, lake):
    from jobs import features as job

    tables = silver(spark, with_later=True)
    lake.write(tables["customers"], "silver/customers")
    lake.write(tables["contacts"], "silver/contacts", partition_by=["contact_date"])
    lake.write(tables["subscriptions"], "silver/subscriptions")
    lake.write(tables["bills"], "silver/bills")
    # complaints, surveys and campaign_contacts do not exist yet: empty, with a warning
    argv = job_argv(
        "2026-01-31",
        overrides=(
            "features.channels=[voice, app, wechat, chatbot]",
            "features.digital_channels=[app, wechat, chatbot]",
        ),
    )

    assert job.main(argv, spark=spark) == 0
    first = lake.read("gold/customer_features")
    first_rows = sorted(first.collect())
    assert job.main(argv, spark=spark) == 0
    second = lake.read("gold/customer_features")

    assert len(first_rows) == 3
    assert sorted(second.collect()) == first_rows
    k1 = second.where("customer_key = 'K1'").first()
    assert (k1.contacts_30d, k1.revenue_3m, k1.complaints_90d, k1.latest_nps) == (4, 130.0, 0, None)
    runs = lake.read("ops/job_runs").where(F.col("job") == "features").collect()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]

    # an extra (training) snapshot missing from the table is computed next to the run date
    extra = job_argv(
        "2026-01-31",
        overrides=(
            "features.channels=[voice, app, wechat, chatbot]",
            "features.digital_channels=[app, wechat, chatbot]",
            "features.extra_snapshots=[2026-01-15]",
        ),
    )
    assert job.main(extra, spark=spark) == 0
    table = lake.read("gold/customer_features")
    assert sorted(table.where("snapshot_date = '2026-01-31'").collect()) == first_rows
    dates = [
        r.snapshot_date.isoformat() for r in table.select("snapshot_date").distinct().collect()
    ]
    assert sorted(dates) == ["2026-01-15", "2026-01-31"]
