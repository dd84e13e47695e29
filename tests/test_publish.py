"""Publishing: every contact-policy rule on hand-built candidates (each excludes exactly the
customers it should), priority and size caps, pseudonyms, send windows, the PII scan, and
jobs.publish end to end (exports, no PII outside the dialer list, reproducible re-runs)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime

import pandas as pd
import pytest
from pyspark.sql import functions as F

from contactlake import publish as pub
from contactlake.lake import Lake
from contactlake.runner import JOB_RUNS
from contactlake.schemas import CAMPAIGN_CONTACTS, COMPLAINTS

D = date(2026, 3, 10)
# end of 2026-03-10 in Asia/Shanghai (UTC+8) is 2026-03-10 16:00 UTC
CUTOFF = datetime(2026, 3, 10, 16, 0)
KEY = b"test-key-0123456789abcdef"
CANDIDATES = (
    "snapshot_date date, audience_id string, campaign_id string, channel string, "
    "purpose string, frequency_capped boolean, customer_key string, exclusion string"
)
CUSTOMERS = (
    "customer_key string, customer_id string, name string, id_card_no string, "
    "primary_phone string, secondary_phone string, consent_call_marketing boolean, "
    "consent_sms_marketing boolean, consent_push_marketing boolean, "
    "consent_data_analytics boolean, valid_from timestamp, valid_to timestamp, "
    "is_current boolean"
)
CONTACTS = (
    "customer_key string, contact_id string, contact_date date, channel string, "
    "direction string, start_ts timestamp, resolved boolean"
)


def candidates(spark, rows):
    """rows: (customer_key, audience_id, channel, purpose[, frequency_capped, exclusion])."""
    full = [
        (
            D,
            r[1],
            f"CMP-{r[1]}",
            r[2],
            r[3],
            r[4] if len(r) > 4 else True,
            r[0],
            r[5] if len(r) > 5 else None,
        )
        for r in rows
    ]
    return spark.createDataFrame(full, CANDIDATES)


def excluded(df) -> dict[tuple[str, str], str | None]:
    return {(r.customer_key, r.audience_id): r.exclusion for r in df.collect()}


def customer(
    key,
    *,
    phone=None,
    phone2=None,
    call=True,
    sms=True,
    push=True,
    analytics=True,
    valid_from=datetime(2025, 1, 1),
    valid_to=None,
    name=None,
    id_card=None,
):
    return (
        key,
        key.upper(),
        name or f"Name {key}",
        id_card,
        phone,
        phone2,
        call,
        sms,
        push,
        analytics,
        valid_from,
        valid_to,
        valid_to is None,
    )


# ------------------------------------------------------------------ pseudonyms, windows
def test_pseudonym_is_the_hmac_sha256_of_the_customer_key(spark):
    df = spark.createDataFrame([("c1",), ("客户2",), (None,)], "customer_key string")
    got = {
        r.customer_key: r.p
        for r in df.select("customer_key", pub.pseudonym("customer_key", KEY).alias("p")).collect()
    }
    assert got == {
        "c1": hmac.new(KEY, b"c1", hashlib.sha256).hexdigest(),
        "客户2": hmac.new(KEY, "客户2".encode(), hashlib.sha256).hexdigest(),
        None: None,
    }
    other = df.select(pub.pseudonym("customer_key", b"another-key-0123456789").alias("p"))
    assert got["c1"] not in {r.p for r in other.collect()}


def test_pseudonym_key_comes_from_the_environment_or_fails_clearly(monkeypatch):
    monkeypatch.delenv("PUBLISH_TEST_KEY", raising=False)
    with pytest.raises(
        pub.PseudonymKeyError, match="PUBLISH_TEST_KEY .*publish.pseudonym_key_env.* not set"
    ):
        pub.pseudonym_key("PUBLISH_TEST_KEY", 16)
    monkeypatch.setenv("PUBLISH_TEST_KEY", "short")
    with pytest.raises(
        pub.PseudonymKeyError, match="5 bytes; publish.pseudonym_key_min_bytes is 16"
    ):
        pub.pseudonym_key("PUBLISH_TEST_KEY", 16)
    monkeypatch.setenv("PUBLISH_TEST_KEY", KEY.decode())
    assert pub.pseudonym_key("PUBLISH_TEST_KEY", 16) == KEY


@pytest.mark.parametrize(
    ("window", "quiet", "send_time", "expected"),
    [
        (["10:00", "20:00"], ["21:00", "09:00"], None, "10:00-20:00"),  # inside the allowed hours
        (["08:00", "22:00"], ["21:00", "09:00"], None, "09:00-21:00"),  # trimmed both ends
        (["21:30", "23:00"], ["21:00", "09:00"], None, None),  # fully in quiet hours
        (["08:00", "22:00"], ["12:00", "13:00"], None, "08:00-12:00,13:00-22:00"),
        (["20:00", "02:00"], None, None, "20:00-02:00"),  # wraps midnight
        (["00:00", "00:00"], None, None, "00:00-24:00"),  # all day
        (["10:00", "20:00"], ["21:00", "09:00"], "22:00", None),  # planned time is quiet
        (["10:00", "20:00"], ["21:00", "09:00"], "20:59", "20:59"),
        (["10:00", "20:00"], ["21:00", "09:00"], "09:00", "09:00"),  # quiet end is exclusive
    ],
)
def test_send_window_is_the_channel_window_outside_quiet_hours(window, quiet, send_time, expected):
    assert pub.send_window(window, quiet, send_time) == expected


def test_cutoff_is_the_end_of_the_run_date_in_the_business_time_zone():
    assert pub.cutoff_utc(D, "Asia/Shanghai") == CUTOFF
    assert pub.cutoff_utc(D, "UTC") == datetime(2026, 3, 11, 0, 0)


# ------------------------------------------------------------------ audience files
AUDIENCE = """
id: {id}
name: Test audience
campaign_id: CMP1
offer: OFFER
channel: {channel}
purpose: marketing
priority: {priority}
size_cap: 10
expression: "{expression}"
rank_by: none
send_time: null
status: active
owner: tests
description: A test audience.
"""


def write_audience(folder, id, channel="sms", priority=1, expression="value_tier = 'high'"):
    folder.mkdir(exist_ok=True)
    path = folder / f"{id}.yaml"
    path.write_text(
        AUDIENCE.format(id=id, channel=channel, priority=priority, expression=expression)
    )
    return path


def test_load_audiences_rejects_bad_files_naming_audience_and_file(tmp_path):
    folder = tmp_path / "aud"
    write_audience(folder, "a_one", priority=2)
    write_audience(folder, "b_two", priority=1)
    assert [a.id for a in pub.load_audiences(folder, ["sms"])] == ["b_two", "a_one"]

    with pytest.raises(pub.AudienceError, match=r"audience a_one \(.*a_one.yaml\): channel 'fax'"):
        write_audience(folder, "a_one", channel="fax")
        pub.load_audiences(folder, ["sms"])
    write_audience(folder, "a_one", priority=1)
    with pytest.raises(pub.AudienceError, match="b_two .*priority 1 already used by a_one"):
        pub.load_audiences(folder, ["sms"])
    bad = write_audience(folder, "a_one", priority=3)
    bad.write_text(bad.read_text().replace("size_cap: 10", "size_cap: -1"))
    with pytest.raises(
        pub.AudienceError, match=r"audience a_one \(.*\): size_cap: Input should be"
    ):
        pub.load_audiences(folder, ["sms"])


def test_validate_audiences_names_the_audience_whose_expression_does_not_fit(spark, tmp_path):
    schema = spark.createDataFrame(
        [], "snapshot_date date, customer_key string, value_tier string"
    ).schema
    folder = tmp_path / "aud"
    write_audience(folder, "good")
    pub.validate_audiences(spark, pub.load_audiences(folder, ["sms"]), schema)
    path = write_audience(folder, "typo", priority=2, expression="value_teir = 'high'")
    with pytest.raises(
        pub.AudienceError,
        match=rf"audience typo \({path}\): expression does not resolve .*value_teir",
    ):
        pub.validate_audiences(spark, pub.load_audiences(folder, ["sms"]), schema)
    write_audience(folder, "typo", priority=2, expression="value_tier")
    with pytest.raises(pub.AudienceError, match="audience typo .*must be a condition .*string"):
        pub.validate_audiences(spark, pub.load_audiences(folder, ["sms"]), schema)


def test_candidates_say_which_tags_matched_with_their_versions(spark, tmp_path):
    folder = tmp_path / "aud"
    write_audience(folder, "high_app", expression="value_tier = 'high' AND app IS NOT NULL")
    portrait = spark.createDataFrame(
        [(D, "c1", "high", "yes", "x"), (D, "c2", "low", "yes", "y"), (D, "c3", "high", None, "z")],
        "snapshot_date date, customer_key string, value_tier string, app string, other string",
    )
    rows = pub.audience_candidates(
        portrait, pub.load_audiences(folder, ["sms"]), {"value_tier": 3, "app": 1}, {"sms": True}
    ).collect()
    assert [(r.customer_key, r.reason, r.tag_versions, r.frequency_capped) for r in rows] == [
        ("c1", "value_tier=high; app=yes", {"value_tier": 3, "app": 1}, True)
    ]


# ------------------------------------------------------------------ policy rules
def test_do_not_contact_excludes_listed_ids_and_phones_from_their_added_date(spark):
    people = spark.createDataFrame(
        [
            customer("c1"),
            customer("c2", phone="+8613800000002", phone2="+8613900000002"),
            customer("c3", phone="+8613800000003"),
            customer("c4", phone="+8613800000004"),
        ],
        CUSTOMERS,
    )
    listed = spark.createDataFrame(
        [
            ("C1", None, "customer_request", date(2026, 1, 5)),
            (None, "+8613900000002", "regulator", date(2026, 3, 10)),  # secondary phone
            (None, "+8613800000003", "customer_request", date(2026, 3, 11)),  # after D
        ],
        pub.DO_NOT_CONTACT_SCHEMA,
    )
    cands = candidates(
        spark,
        [
            ("c1", "a", "sms", "marketing"),
            ("c1", "b", "agent_desktop", "service"),  # every purpose
            ("c2", "a", "sms", "marketing"),
            ("c3", "a", "sms", "marketing"),
            ("c4", "a", "sms", "marketing"),
            ("c2", "c", "sms", "marketing", True, "no_consent"),  # earlier reason kept
        ],
    )
    assert excluded(pub.do_not_contact_rule(cands, listed, people, D)) == {
        ("c1", "a"): "do_not_contact:customer_request",
        ("c1", "b"): "do_not_contact:customer_request",
        ("c2", "a"): "do_not_contact:regulator",
        ("c3", "a"): None,
        ("c4", "a"): None,
        ("c2", "c"): "no_consent",
    }


def test_consent_needs_profiling_consent_and_the_channel_consent_for_marketing(spark):
    people = spark.createDataFrame(
        [
            customer("c1"),
            customer("c2", sms=False),
            customer("c3", sms=None),
            customer("c4", analytics=False),
            customer("c6", push=False),
        ],
        CUSTOMERS,
    )
    cands = candidates(
        spark,
        [
            ("c1", "sms_a", "sms", "marketing"),
            ("c2", "sms_a", "sms", "marketing"),  # refused SMS
            ("c3", "sms_a", "sms", "marketing"),  # unknown: no consent
            ("c4", "sms_a", "sms", "marketing"),  # refused profiling
            ("c5", "sms_a", "sms", "marketing"),  # no customer record
            ("c6", "sms_a", "sms", "marketing"),  # refused push only
            ("c6", "push_a", "app_push", "marketing"),
            ("c2", "desk", "agent_desktop", "service"),  # service: channel consent not needed
            ("c4", "desk", "agent_desktop", "service"),  # ... profiling consent still is
        ],
    )
    channel_consent = {
        "sms": "consent_sms_marketing",
        "app_push": "consent_push_marketing",
        "agent_desktop": "consent_call_marketing",
    }
    result = pub.consent_rule(cands, people, channel_consent, "consent_data_analytics")
    assert excluded(result) == {
        ("c1", "sms_a"): None,
        ("c2", "sms_a"): "no_consent",
        ("c3", "sms_a"): "no_consent",
        ("c4", "sms_a"): "no_consent",
        ("c5", "sms_a"): "no_consent",
        ("c6", "sms_a"): None,
        ("c6", "push_a"): "no_consent",
        ("c2", "desk"): None,
        ("c4", "desk"): "no_consent",
    }
    assert result.columns == cands.columns


def test_open_complaint_excludes_marketing_to_customers_with_a_complaint_open_at_the_cutoff(spark):
    def ticket(key, opened, closed):
        row = dict.fromkeys(c.split()[0] for c in COMPLAINTS.split(", "))
        return {
            **row,
            "ticket_id": f"t-{key}",
            "customer_key": key,
            "open_ts": opened,
            "close_ts": closed,
        }

    complaints = spark.createDataFrame(
        [
            ticket("c1", datetime(2026, 3, 1), None),  # open
            ticket("c2", datetime(2026, 3, 1), datetime(2026, 3, 10, 15, 59)),  # closed before
            ticket("c3", datetime(2026, 3, 1), datetime(2026, 3, 10, 17, 0)),  # closed after
            ticket("c4", datetime(2026, 3, 10, 16, 1), None),  # opened after the cut-off
        ],
        COMPLAINTS,
    )
    cands = candidates(
        spark,
        [(k, "a", "sms", "marketing") for k in ("c1", "c2", "c3", "c4", "c5")]
        + [("c1", "desk", "agent_desktop", "service")],
    )
    assert excluded(pub.open_complaint_rule(cands, complaints, CUTOFF)) == {
        ("c1", "a"): "open_complaint",
        ("c2", "a"): None,
        ("c3", "a"): "open_complaint",
        ("c4", "a"): None,
        ("c5", "a"): None,
        ("c1", "desk"): None,
    }


def test_unresolved_repeat_contact_excludes_recent_repeat_callers_left_unresolved(spark):
    def call(key, n, at, direction="inbound", resolved=None):
        return (key, f"{key}-{n}", at.date(), "voice", direction, at, resolved)

    contacts = spark.createDataFrame(
        [
            call("c1", 1, datetime(2026, 3, 8, 2)),
            call("c1", 2, datetime(2026, 3, 10, 3)),
            call("c2", 1, datetime(2026, 3, 8, 2)),
            call("c2", 2, datetime(2026, 3, 10, 3), resolved=True),  # last one resolved
            call("c3", 1, datetime(2026, 3, 10, 3)),  # a single contact
            call("c4", 1, datetime(2026, 3, 3, 15)),  # 7 days + 1 h before the cut-off
            call("c4", 2, datetime(2026, 3, 10, 3)),
            call("c5", 1, datetime(2026, 3, 9, 3), direction="outbound"),
            call("c5", 2, datetime(2026, 3, 10, 3)),
            call("c6", 1, datetime(2026, 3, 9, 3)),
            call("c6", 2, datetime(2026, 3, 10, 3), resolved=False),
            call("c7", 1, datetime(2026, 3, 9, 3)),
            call("c7", 2, datetime(2026, 3, 10, 17)),  # after the cut-off
        ],
        CONTACTS,
    )
    keys = ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    cands = candidates(
        spark,
        [(k, "a", "sms", "marketing") for k in keys] + [("c1", "desk", "agent_desktop", "service")],
    )
    hit = "unresolved_repeat_contact"
    assert excluded(pub.unresolved_repeat_rule(cands, contacts, CUTOFF, 7)) == {
        ("c1", "a"): hit,
        ("c2", "a"): None,
        ("c3", "a"): None,
        ("c4", "a"): None,
        ("c5", "a"): None,
        ("c6", "a"): hit,
        ("c7", "a"): None,
        ("c1", "desk"): None,
    }


def test_frequency_caps_count_attempts_and_published_audiences_not_yet_contacted(spark):
    def attempt(key, day, campaign="CMP0", n=1):
        ts = None if day is None else datetime(day.year, day.month, day.day, 3)
        row = dict.fromkeys(c.split()[0] for c in CAMPAIGN_CONTACTS.split(", "))
        return {
            **row,
            "attempt_id": f"{key}-{campaign}-{n}-{day}",
            "campaign_id": campaign,
            "customer_key": key,
            "attempt_no": 0 if day is None else n,
            "attempt_ts": ts,
            "attempt_date": day,
            "group": "treatment",
        }

    attempts = spark.createDataFrame(
        [
            attempt("c1", date(2026, 3, 6)),
            attempt("c1", date(2026, 3, 9)),  # 2 in 7 days
            attempt("c2", date(2026, 3, 8)),  # + 1 published, not contacted (below)
            attempt("c3", date(2026, 3, 10), campaign="CMP9"),  # its published row, contacted
            *[attempt("c4", date(2026, 2, d)) for d in (12, 14, 16)],  # 3 in 30 days
            attempt("c4", date(2026, 3, 10)),  # the 4th
            *[attempt("c5", date(2026, 2, d)) for d in (9, 14, 16)],  # 9 Feb: outside 30 days
            attempt("c5", date(2026, 3, 10)),
            attempt("c6", None),
            attempt("c6", None, n=2),  # control holdouts: no contact
            attempt("c7", date(2026, 3, 6)),
            attempt("c7", date(2026, 3, 9)),
            attempt("c8", date(2026, 3, 11)),  # after the run date: not known yet
        ],
        CAMPAIGN_CONTACTS,
    )
    published = spark.createDataFrame(
        [
            (date(2026, 3, 9), date(2026, 3, 10), "CMP9", "marketing", True, "c2"),
            (date(2026, 3, 9), date(2026, 3, 10), "CMP9", "marketing", True, "c3"),
            (date(2026, 3, 9), date(2026, 3, 10), "CMP9", "service", False, "c8"),
            (date(2026, 3, 10), date(2026, 3, 11), "CMP9", "marketing", True, "c8"),  # not earlier
        ],
        "snapshot_date date, contact_date date, campaign_id string, purpose string, "
        "frequency_capped boolean, customer_key string",
    )
    history = pub.marketing_contact_history(attempts, published, D)
    # the contact is planned for D + 1 = 11 March: windows 5..11 March and 10 Feb..11 March;
    # c3's published row was contacted (counted once, as its attempt)
    cands = candidates(
        spark,
        [(k, "a", "sms", "marketing") for k in ("c1", "c2", "c3", "c4", "c5", "c6", "c8")]
        + [("c7", "desk", "agent_desktop", "marketing", False), ("c7", "b", "sms", "service")],
    )
    result = pub.frequency_cap_rule(cands, history, date(2026, 3, 11), [(7, 2), (30, 4)])
    assert excluded(result) == {
        ("c1", "a"): "frequency_cap",
        ("c2", "a"): "frequency_cap",
        ("c3", "a"): None,
        ("c4", "a"): "frequency_cap",
        ("c5", "a"): None,
        ("c6", "a"): None,
        ("c8", "a"): None,
        ("c7", "desk"): None,  # channel not capped
        ("c7", "b"): None,  # service
    }
    assert result.columns == cands.columns


def test_quiet_hours_excludes_everyone_of_a_blocked_audience(spark):
    cands = candidates(
        spark,
        [
            ("c1", "late_sms", "sms", "marketing"),
            ("c1", "day_sms", "sms", "marketing"),
            ("c2", "late_sms", "sms", "marketing", True, "no_consent"),
        ],
    )
    assert excluded(pub.quiet_hours_rule(cands, ["late_sms"])) == {
        ("c1", "late_sms"): "quiet_hours",
        ("c1", "day_sms"): None,
        ("c2", "late_sms"): "no_consent",
    }


def test_priority_goes_first_then_size_caps_after_ranking(spark, tmp_path):
    folder = tmp_path / "aud"
    write_audience(folder, "first", priority=1)
    write_audience(folder, "second", priority=2)
    audiences = pub.load_audiences(folder, ["sms"])
    audiences = [pub.Audience(a.spec.model_copy(update={"size_cap": 2}), a.file) for a in audiences]
    rows = [
        # customer, audience, pseudo_id, score, exclusion
        ("c1", "first", "p1", 0.9, None),
        ("c2", "first", "p2", 0.5, None),  # third best: cut by the size cap of 2
        ("c3", "first", "p3", 0.7, None),
        ("c4", "first", "p4", 0.99, "no_consent"),
        ("c1", "second", "p1", None, None),  # already in the higher-priority audience
        ("c2", "second", "p2", None, None),  # kept by "first" (then cut): not offered here
        ("c5", "second", "p5", None, None),
        ("c6", "second", "p0", None, None),  # lowest pseudo_id of the unscored: first
        ("c4", "second", "p4", None, "no_consent"),
    ]
    df = spark.createDataFrame(
        [(D, a, k, p, s, e) for k, a, p, s, e in rows],
        "snapshot_date date, audience_id string, customer_key string, pseudo_id string, "
        "score double, exclusion string",
    )
    got = {
        (r.customer_key, r.audience_id): (r.rank, r.exclusion)
        for r in pub.assign_audiences(df, audiences).collect()
    }
    assert got == {
        ("c1", "first"): (1, None),
        ("c3", "first"): (2, None),
        ("c2", "first"): (None, "size_cap"),
        ("c4", "first"): (None, "no_consent"),
        ("c1", "second"): (None, "higher_priority_audience"),
        ("c6", "second"): (1, None),
        ("c2", "second"): (None, "higher_priority_audience"),
        ("c5", "second"): (2, None),
        ("c4", "second"): (None, "no_consent"),
    }


def test_scores_rank_by_the_audiences_own_campaign_and_latest_snapshot(spark, tmp_path):
    folder = tmp_path / "aud"
    write_audience(folder, "by_uplift", priority=1)
    write_audience(folder, "by_churn", priority=2)
    write_audience(folder, "unranked", priority=3)
    specs = {"by_uplift": "uplift", "by_churn": "churn_probability", "unranked": "none"}
    audiences = [
        pub.Audience(a.spec.model_copy(update={"rank_by": specs[a.id]}), a.file)
        for a in pub.load_audiences(folder, ["sms"])
    ]
    uplift = spark.createDataFrame(
        [
            (date(2026, 3, 3), "c1", "CMP-by_uplift", 0.5, "upl", "1"),
            (date(2026, 3, 9), "c1", "CMP-by_uplift", 0.2, "upl", "2"),  # latest <= D
            (date(2026, 3, 11), "c1", "CMP-by_uplift", 0.9, "upl", "3"),  # after D
            (date(2026, 3, 9), "c1", "CMP-other", 0.8, "upl", "2"),  # another campaign
        ],
        pub.SCORE_SOURCES["uplift"][1],
    )
    churn = spark.createDataFrame(
        [(date(2026, 3, 10), "c1", 0.4, "churn", "7")], pub.SCORE_SOURCES["churn_probability"][1]
    )
    cands = candidates(
        spark,
        [
            ("c1", "by_uplift", "sms", "marketing"),
            ("c2", "by_uplift", "sms", "marketing"),
            ("c1", "by_churn", "sms", "marketing"),
            ("c1", "unranked", "sms", "marketing"),
        ],
    )
    result = pub.attach_scores(
        cands,
        audiences,
        pub.latest_scores(churn, D, ["customer_key"]),
        pub.latest_scores(uplift, D, ["customer_key", "campaign_id"]),
    )
    got = {
        (r.customer_key, r.audience_id): (r.score, r.score_name, r.model_name, r.model_version)
        for r in result.collect()
    }
    assert got == {
        ("c1", "by_uplift"): (0.2, "uplift", "upl", "2"),
        ("c2", "by_uplift"): (None, "uplift", None, None),
        ("c1", "by_churn"): (0.4, "churn_probability", "churn", "7"),
        ("c1", "unranked"): (None, None, None, None),
    }


def test_marketing_tags_are_pseudonymous_and_only_for_customers_with_profiling_consent(spark):
    portrait = spark.createDataFrame(
        [(D, "c1", "high", "p1"), (D, "c2", "low", "p2")],
        "snapshot_date date, customer_key string, value_tier string, pseudo_id string",
    )
    consented = spark.createDataFrame([("c1",)], "customer_key string")
    uplift = spark.createDataFrame(
        [("c1", "CMP1", 0.25, "upl", "2"), ("c1", "CMP2", 0.5, "upl", "3")],
        "customer_key string, campaign_id string, uplift double, model_name string, model_version string",
    )
    [row] = pub.marketing_tags(portrait, ["value_tier"], consented, None, uplift).collect()
    assert row.asDict() == {
        "snapshot_date": D,
        "pseudo_id": "p1",
        "value_tier": "high",
        "churn_probability": None,
        "churn_model_version": None,
        "uplift": {"CMP1": 0.25, "CMP2": 0.5},
        "uplift_model_version": {"CMP1": "upl@2", "CMP2": "upl@3"},
    }


def test_pii_scan_finds_phones_id_cards_and_names_but_not_hashes_or_dates(spark):
    digest = hmac.new(KEY, b"c1", hashlib.sha256).hexdigest()
    df = spark.createDataFrame(
        [
            ("13812345678", digest, 1, {"k": "v"}),
            ("call +8613812345678 now", "2026-03-10", 2, {"k": "110105194912310021"}),
            ("11010519491231002X", "CMP202503", 13812345678, {"k": "v"}),
            ("张伟", "0.1234", 3, {"k": "v"}),
            ("张伟伟", "+44 20 7946 0958 x", 4, {"k": "v"}),  # not the exact name; spaced
        ],
        "a string, b string, n long, m map<string,string>",
    )
    names = spark.createDataFrame([("张伟",)], "name string")
    got = {(r.column, r.kind): r.rows for r in pub.pii_scan(df, names).collect()}
    assert got == {
        ("a", "cn_mobile"): 2,
        ("a", "e164_phone"): 1,
        ("a", "id_card"): 1,
        ("a", "name"): 1,
        ("m", "id_card"): 1,
        ("n", "cn_mobile"): 1,
    }


# ------------------------------------------------------------------ the job
PORTRAIT = (
    "snapshot_date date, customer_key string, value_tier string, churn_risk string, "
    "digital_adopter string, repeat_caller string"
)
JOB_AUDIENCES = {
    # id: (channel, purpose, priority, size_cap, expression, rank_by, send_time, campaign)
    "call_retention": (
        "outbound_call",
        "marketing",
        1,
        2,
        "churn_risk = 'high'",
        "uplift",
        None,
        "CMP1",
    ),
    "push_offer": ("app_push", "marketing", 2, 10, "digital_adopter = 'app'", "none", None, "CMP2"),
    "sms_late": ("sms", "marketing", 3, 10, "value_tier = 'low'", "none", "22:00", "CMP3"),
    "desk_care": (
        "agent_desktop",
        "service",
        4,
        10,
        "repeat_caller = 'true'",
        "churn_probability",
        None,
        "CARE",
    ),
}


def job_audiences(folder):
    folder.mkdir()
    for aid, (
        channel,
        purpose,
        priority,
        cap,
        expression,
        rank_by,
        send,
        campaign,
    ) in JOB_AUDIENCES.items():
        text = AUDIENCE.format(id=aid, channel=channel, priority=priority, expression=expression)
        text = (
            text.replace("purpose: marketing", f"purpose: {purpose}")
            .replace("size_cap: 10", f"size_cap: {cap}")
            .replace("rank_by: none", f"rank_by: {rank_by}")
            .replace("campaign_id: CMP1", f"campaign_id: {campaign}")
        )
        if send:
            text = text.replace("send_time: null", f'send_time: "{send}"')
        (folder / f"{aid}.yaml").write_text(text)


def build_lake(spark, lake: Lake):
    """Ten customers, each built to meet exactly one outcome (see the job test)."""

    def person(n, **kw):
        return customer(
            f"c{n}",
            phone=f"+86138000000{n:02d}",
            name=f"客户{n}号",
            id_card=f"1101051980010100{n:02d}",
            **kw,
        )

    people = [person(n) for n in (1, 2, 4, 6, 7, 8, 9)] + [
        person(3, call=False, valid_from=datetime(2024, 1, 1), valid_to=datetime(2025, 1, 1)),
        person(3),  # refused calls until 2025, consents since
        person(5, call=False, valid_to=datetime(2026, 3, 10, 17)),
        person(5, valid_from=datetime(2026, 3, 10, 17)),  # consents to calls after the cut-off
        person(10, analytics=False),
    ]
    customers = spark.createDataFrame(people, CUSTOMERS)
    lake.write(customers, "silver/customers")
    portrait = [
        ("c1", "high", "high", "app", "false"),
        ("c2", "high", "high", None, "true"),
        ("c3", "high", "high", None, "false"),
        ("c4", "high", "high", None, "false"),
        ("c5", "high", "high", "app", "false"),
        ("c6", "high", "high", None, "false"),
        ("c7", "high", "low", "app", "false"),
        ("c8", "low", "low", None, "true"),
        ("c9", "high", "high", None, "false"),
        ("c10", "high", "high", None, "false"),
    ]
    lake.write(
        spark.createDataFrame([(D, *r) for r in portrait], PORTRAIT),
        "gold/customer_portrait",
        partition_by=["snapshot_date"],
    )
    lake.write(
        spark.createDataFrame(
            [
                (D, "c1", t, "x", v)
                for t, v in (
                    ("value_tier", 2),
                    ("churn_risk", 1),
                    ("digital_adopter", 1),
                    ("repeat_caller", 3),
                )
            ],
            "snapshot_date date, customer_key string, tag_id string, value string, tag_version int",
        ),
        "gold/customer_tags",
        partition_by=["snapshot_date"],
    )
    lake.write(
        spark.createDataFrame(
            [
                (D, "c1", "CMP1", 0.30, "uplift", "4"),
                (D, "c2", "CMP1", 0.10, "uplift", "4"),
                (D, "c3", "CMP1", 0.20, "uplift", "4"),
                (D, "c2", "CMP2", 0.99, "uplift", "4"),
            ],
            pub.SCORE_SOURCES["uplift"][1],
        ),
        "gold/uplift_scores",
    )
    lake.write(
        spark.createDataFrame(
            [(D, "c2", 0.6, "churn", "7"), (D, "c8", 0.4, "churn", "7")],
            pub.SCORE_SOURCES["churn_probability"][1],
        ),
        "gold/churn_scores",
    )
    lake.write(
        spark.createDataFrame(
            [
                ("C4", None, "customer_request", date(2026, 2, 1)),
                (None, "+8613800000001", "regulator", date(2026, 3, 11)),
            ],  # c1, but from tomorrow
            pub.DO_NOT_CONTACT_SCHEMA,
        ),
        "silver/do_not_contact",
    )
    complaint_cols = [c.split()[0] for c in COMPLAINTS.split(", ")]
    lake.write(
        spark.createDataFrame(
            [
                {
                    **dict.fromkeys(complaint_cols),
                    "ticket_id": "t6",
                    "customer_key": "c6",
                    "open_ts": datetime(2026, 3, 8),
                    "open_date": date(2026, 3, 8),
                }
            ],
            COMPLAINTS,
        ),
        "silver/complaints",
        partition_by=["open_date"],
    )
    lake.write(
        spark.createDataFrame(
            [
                ("c9", "k1", date(2026, 3, 9), "voice", "inbound", datetime(2026, 3, 9, 2), None),
                ("c9", "k2", date(2026, 3, 10), "voice", "inbound", datetime(2026, 3, 10, 2), None),
            ],
            CONTACTS,
        ),
        "silver/contacts",
        partition_by=["contact_date"],
    )
    campaign_cols = [c.split()[0] for c in CAMPAIGN_CONTACTS.split(", ")]
    lake.write(
        spark.createDataFrame(
            [
                {
                    **dict.fromkeys(campaign_cols),
                    "attempt_id": f"a{d}",
                    "campaign_id": "CMP0",
                    "customer_key": "c7",
                    "attempt_no": 1,
                    "attempt_ts": datetime(2026, 3, d, 3),
                    "attempt_date": date(2026, 3, d),
                }
                for d in (8, 9)
            ],
            CAMPAIGN_CONTACTS,
        ),
        "silver/campaign_contacts",
        partition_by=["attempt_date"],
    )


def csv_frame(spark, path):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    schema = ", ".join(f"`{c}` string" for c in frame.columns)
    return spark.createDataFrame(frame.values.tolist(), schema)


def test_publish_job_end_to_end(spark, tmp_path, job_argv, monkeypatch):
    from jobs import publish

    monkeypatch.setenv("CONTACTLAKE_PSEUDONYM_KEY", KEY.decode())
    lake = Lake(str(tmp_path / "lake"), spark)
    build_lake(spark, lake)
    job_audiences(tmp_path / "audiences")
    exports = tmp_path / "exports"
    argv = job_argv(
        D.isoformat(),
        overrides=(
            f"publish.audiences_dir={tmp_path / 'audiences'}",
            f"publish.export_dir={exports}",
        ),
    )
    assert publish.main(argv, spark=spark) == 0

    def pid(key):
        return hmac.new(KEY, key.encode(), hashlib.sha256).hexdigest()

    audiences = lake.read("gold/audiences").orderBy("audience_id", "rank")
    got = [(r.audience_id, r.customer_key, r.rank, r.pseudo_id) for r in audiences.collect()]
    assert got == [
        ("call_retention", "c1", 1, pid("c1")),  # uplift 0.30
        ("call_retention", "c3", 2, pid("c3")),  # uplift 0.20
        ("desk_care", "c8", 1, pid("c8")),  # c2 went to (and was cut by) the call
        ("push_offer", "c5", 1, pid("c5")),
    ]
    first = audiences.where("audience_id = 'call_retention' AND rank = 1").first()
    assert first.reason == "churn_risk=high; uplift=0.3000"
    assert (first.tag_versions, first.model_name, first.model_version) == (
        {"churn_risk": 1},
        "uplift",
        "4",
    )
    assert (first.contact_date, first.send_window) == (date(2026, 3, 11), "10:00-20:00")
    exclusions = {
        (r.audience_id, r.reason): r.customers
        for r in lake.read("gold/audience_exclusions").collect()
    }
    assert exclusions == {
        ("call_retention", "do_not_contact:customer_request"): 1,  # c4
        ("call_retention", "no_consent"): 2,  # c5 (no call consent), c10 (no profiling consent)
        ("call_retention", "open_complaint"): 1,  # c6
        ("call_retention", "unresolved_repeat_contact"): 1,  # c9
        ("call_retention", "size_cap"): 1,  # c2
        ("push_offer", "higher_priority_audience"): 1,  # c1
        ("desk_care", "higher_priority_audience"): 1,  # c2
        ("push_offer", "frequency_cap"): 1,  # c7: 2 attempts in 7 days
        ("sms_late", "quiet_hours"): 1,  # c8: 22:00 is quiet (c8 is then free for desk_care)
    }
    [detail] = lake.read("gold/audience_exclusions").where("reason = 'quiet_hours'").collect()
    assert "22:00" in detail.detail and "21:00-09:00" in detail.detail
    tags = lake.read("gold/marketing_tags")
    assert "customer_key" not in tags.columns
    assert {r.pseudo_id for r in tags.collect()} == {pid(f"c{n}") for n in range(1, 10)}  # not c10

    # exports: one file per audience; only the dialer list carries phone numbers
    folder = exports / D.isoformat()
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv"))
    assert files == [
        "agent_desktop/desk_care.csv",
        "app_push/push_offer.csv",
        "outbound_call/call_retention.csv",
        "sms/sms_late.csv",
    ]
    dialer = pd.read_csv(folder / "outbound_call/call_retention.csv", dtype=str)
    assert dialer["phone"].tolist() == ["+8613800000001", "+8613800000003"]
    assert pd.read_csv(folder / "sms/sms_late.csv").empty

    # no phone, id-card number or name in any gold table or non-dialer export (one scan)
    names = lake.read("silver/customers").select("name")
    frames = {
        t: lake.read(t)
        for t in ("gold/marketing_tags", "gold/audiences", "gold/audience_exclusions")
    }
    frames.update({p.name: csv_frame(spark, p) for p in folder.rglob("*.csv")})
    scans = [
        pub.pii_scan(df, names).withColumn("source", F.lit(name)) for name, df in frames.items()
    ]
    for more in scans[1:]:
        scans[0] = scans[0].unionByName(more)
    found = {(r.source, r.column, r.kind) for r in scans[0].collect()}
    assert found == {  # the scan does see the dialer's phones, and nothing else
        ("call_retention.csv", "phone", "cn_mobile"),
        ("call_retention.csv", "phone", "e164_phone"),
    }

    # later data for D (a complaint of c1) does not change a republication of D: the
    # versions read the first time are reused; nothing is duplicated
    complaint_cols = [c.split()[0] for c in COMPLAINTS.split(", ")]
    lake.write(
        spark.createDataFrame(
            [
                {
                    **dict.fromkeys(complaint_cols),
                    "ticket_id": "t1",
                    "customer_key": "c1",
                    "open_ts": datetime(2026, 3, 10, 1),
                    "open_date": D,
                }
            ],
            COMPLAINTS,
        ),
        "silver/complaints",
        partition_by=["open_date"],
    )
    before = sorted(tuple(r) for r in lake.read("gold/audiences").drop("snapshot_date").collect())
    assert publish.main(argv, spark=spark) == 0
    after = sorted(tuple(r) for r in lake.read("gold/audiences").drop("snapshot_date").collect())
    assert after == before
    pinned = {r.table: r.version for r in lake.read("ops/publish_inputs").collect()}
    assert pinned["silver/complaints"] == 0 and pinned["gold/audiences"] is None
    assert lake.read("gold/audience_exclusions").count() == len(exclusions)
    assert lake.read("gold/marketing_tags").count() == 9


def test_publish_job_fails_clearly_without_key_or_with_a_bad_audience(
    spark, tmp_path, job_argv, monkeypatch
):
    from jobs import publish

    lake = Lake(str(tmp_path / "lake"), spark)
    build_lake(spark, lake)
    job_audiences(tmp_path / "audiences")
    argv = job_argv(
        D.isoformat(),
        overrides=(
            f"publish.audiences_dir={tmp_path / 'audiences'}",
            f"publish.export_dir={tmp_path / 'exports'}",
        ),
    )
    monkeypatch.delenv("CONTACTLAKE_PSEUDONYM_KEY", raising=False)
    assert publish.main(argv, spark=spark) == 1
    monkeypatch.setenv("CONTACTLAKE_PSEUDONYM_KEY", KEY.decode())
    bad = tmp_path / "audiences" / "push_offer.yaml"
    bad.write_text(bad.read_text().replace("digital_adopter = 'app'", "app_adopter = 'yes'"))
    assert publish.main(argv, spark=spark) == 1
    errors = [r.error for r in lake.read(JOB_RUNS).orderBy("started_at").collect()]
    assert "CONTACTLAKE_PSEUDONYM_KEY (publish.pseudonym_key_env) is not set" in errors[0]
    assert f"audience push_offer ({bad})" in errors[1] and "app_adopter" in errors[1]
    assert not lake.exists("gold/audiences")
