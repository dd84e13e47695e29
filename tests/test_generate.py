"""jobs.generate on the tiny preset: planted properties checked from the landing files.

Sources: crm, voice, ivr, digital, billing, campaign, surveys, complaints, sms, clickstream.

Expected values come from the configuration (conf/base.yaml `generate:`), never from the
code under test. The job runs once per module, plus once more for determinism.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from contactlake.config import load_config
from contactlake.generate.calibrate import MAX_BAD, ChurnModel, _churn_days
from contactlake.spark import HUGE_METHOD_LIMIT, compiles_huge_methods, session_conf
from jobs import generate

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # the tiny preset takes ~2 min on 2 cores (Spark planning)


def _overrides(root: Path) -> list[str]:
    return [
        f"lake.root={root / 'lake'}",
        f"landing.root={root / 'landing'}",
        f"truth.root={root / 'truth'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"mlflow.artifact_location={root / 'mlruns'}",
    ]


def _args(overrides: list[str]) -> list[str]:
    args = ["--env", "test", "--conf-dir", str(REPO / "conf"), "--set", "generate.preset=tiny"]
    for o in overrides:
        args += ["--set", o]
    return args


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    overrides = _overrides(root)
    assert generate.main(_args(overrides), spark=spark) == 0
    cfg = load_config("test", overrides + ["generate.preset=tiny"], REPO / "conf")
    return root, cfg


def _read_csv(folder: Path) -> list[dict]:
    rows = []
    for f in sorted(folder.glob("*/*.csv")):
        with f.open(encoding="utf-8", errors="replace", newline="") as fh:
            rows.extend(csv.DictReader(fh))
    return rows


def _read_jsonl(folder: Path) -> tuple[list[dict], int]:
    rows, broken = [], 0
    for f in sorted(folder.glob("*/*.jsonl")):
        for line in f.read_bytes().splitlines():
            try:
                rows.append(json.loads(line.decode("utf-8", errors="replace")))
            except json.JSONDecodeError:
                broken += 1
    return rows, broken


def _truth(spark, root: Path, name: str):
    return spark.read.parquet(str(root / "truth" / name))


def _contact_owner(spark, root: Path) -> dict[str, str]:
    return {
        r.contact_id: r.customer_id
        for r in _truth(spark, root, "contacts").select("contact_id", "customer_id").collect()
    }


def test_call_concentration(spark, generated):
    root, cfg = generated
    owner = _contact_owner(spark, root)
    calls = [
        r
        for r in _read_csv(root / "landing" / "voice")
        if r["source_system"] == "CTI-A" and r["call_id"]
    ]
    per_customer = Counter(owner[r["call_id"]] for r in calls)
    counts = sorted(per_customer.values(), reverse=True)
    top = math.ceil(cfg.generate.concentration.top_share * len(counts))
    share = sum(counts[:top]) / sum(counts)
    target = cfg.generate.concentration.call_share
    assert abs(share - target) <= 0.06, share


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text[:19].replace("T", " "))


def test_repeat_share_within_window(spark, generated):
    root, cfg = generated
    owner = _contact_owner(spark, root)
    events = defaultdict(list)
    for r in _read_csv(root / "landing" / "voice"):
        if r["source_system"] == "CTI-A" and r["call_id"]:
            ts = r["ivr_entry_ts"] or r["answer_ts"]
            events[owner[r["call_id"]]].append(_ts(ts))
    sessions, _ = _read_jsonl(root / "landing" / "digital")
    for s in sessions:
        if s.get("session_id"):
            events[owner[s["session_id"]]].append(_ts(s["start_ts"]))
    window = timedelta(days=cfg.generate.repeat_window_days)
    total = repeats = 0
    for times in events.values():
        times.sort()
        for a, b in zip([None] + times[:-1], times, strict=True):
            total += 1
            repeats += a is not None and b - a <= window
    share = repeats / total
    assert 0.20 <= share <= 0.35, share
    assert abs(share - cfg.generate.repeat_share) <= 0.05, share


def test_web_chat_sessions_carry_the_site_cookie(spark, generated):
    """Chatbot and online-agent sessions run in the web widget: they carry the customer's
    site cookie (one per customer), app and WeChat sessions do not."""
    root, _ = generated
    owner = _contact_owner(spark, root)
    sessions, _ = _read_jsonl(root / "landing" / "digital")
    cookies = defaultdict(set)
    channels_with_cookie = set()
    for s in sessions:
        if s.get("session_id") and s.get("cookie_id"):
            cookies[owner[s["session_id"]]].add(s["cookie_id"])
            channels_with_cookie.add(s["channel"])
        elif s.get("session_id"):
            assert s["channel"] in ("app", "wechat"), s
    assert channels_with_cookie == {"web", "chatbot", "online_agent"}
    assert all(len(c) == 1 for c in cookies.values())
    assert len({c for cs in cookies.values() for c in cs}) == len(cookies)


def test_persona_mix_matches_weights(spark, generated):
    root, cfg = generated
    landed = {r["customer_id"] for r in _read_csv(root / "landing" / "crm")}
    personas = {r.customer_id: r.persona for r in _truth(spark, root, "customers").collect()}
    assert landed == set(personas)  # truth joins back to landing, one to one
    mix = Counter(personas.values())
    weights = cfg.generate.weights()
    from contactlake.generate.catalog import PERSONA_NAMES

    assert 5 <= len(PERSONA_NAMES) <= 8
    for name, w in zip(PERSONA_NAMES, weights, strict=True):
        assert abs(mix[name] / len(personas) - w) <= 0.03, (name, mix[name] / len(personas), w)


def test_defects_rate_and_evidence(spark, generated):
    root, cfg = generated
    defects = _truth(spark, root, "defects").toPandas()
    # the source is the partition folder's value, not also a column of the files
    assert "source" not in _truth(spark, root, "defects/source=voice").columns
    rate = cfg.generate.defect_rate
    land = root / "landing"
    sizes = {
        "crm": len(_read_csv(land / "crm")),
        "voice": len(_read_csv(land / "voice")),
    }
    ivr_rows, ivr_broken = _read_jsonl(land / "ivr")
    dig_rows, dig_broken = _read_jsonl(land / "digital")
    sizes["ivr"] = len(ivr_rows) + ivr_broken
    sizes["digital"] = len(dig_rows) + dig_broken
    for source in ("billing", "campaign", "surveys", "sms"):
        sizes[source] = len(_read_csv(land / source))
    for source in ("complaints", "clickstream"):
        good, broken = _read_jsonl(land / source)
        sizes[source] = len(good) + broken
    cmp_broken = _read_jsonl(land / "complaints")[1]
    by = defects.groupby("source").size().to_dict()
    for source, n in sizes.items():
        observed = by.get(source, 0) / n
        sd = math.sqrt(rate * (1 - rate) / n)
        assert abs(observed - rate) <= 4 * sd + 0.002, (source, observed)
    kinds = defects.groupby(["source", "kind"]).size().to_dict()
    assert ivr_broken == kinds.get(("ivr", "broken_json"), 0) > 0
    assert cmp_broken == kinds.get(("complaints", "broken_json"), 0)
    assert dig_broken == kinds.get(("digital", "broken_json"), 0) > 0
    voice = _read_csv(land / "voice")
    assert sum(r["source_system"] == "CTI-B" for r in voice) == kinds[("voice", "duplicate")] > 0
    # invalid UTF-8 bytes really are in the CRM file
    raw = b"".join(f.read_bytes() for f in sorted((land / "crm").glob("*/*.csv")))
    bad_lines = sum(1 for line in raw.splitlines() if not _utf8(line))
    assert bad_lines == kinds.get(("crm", "invalid_utf8"), 0) > 0
    # every defect names an existing file; late records sit in a later folder than their event
    for f in defects["file"].unique():
        assert (land / f).is_file(), f
    # schema drift: later voice files carry one more column
    headers = {
        f.parent.name: f.open(encoding="utf-8").readline().strip()
        for f in (land / "voice").glob("*/*.csv")
    }
    assert len(set(headers.values())) == 2
    assert cfg.generate.schema_drift.column in headers[max(headers)]


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_truth_joins_back_and_churn_stops_contacts(spark, generated):
    root, _ = generated
    from pyspark.sql import functions as F

    contacts = _truth(spark, root, "contacts")
    customers = _truth(spark, root, "customers")
    voice_ids = {
        r["call_id"]
        for r in _read_csv(root / "landing" / "voice")
        if r["source_system"] == "CTI-A" and r["call_id"]
    }
    truth_voice = {
        r.contact_id for r in contacts.where("channel = 'voice'").select("contact_id").collect()
    }
    assert voice_ids <= truth_voice and len(voice_ids) >= 0.97 * len(truth_voice)
    after = (
        contacts.join(customers, "customer_id")
        .where(F.to_date("ts") >= F.col("churn_date"))
        .count()
    )
    assert after == 0
    churned = customers.where("churn_date is not null").count()
    assert 0 < churned < customers.count() / 2
    ident = _truth(spark, root, "identity")
    assert ident.where("is_hub").select("id_value").distinct().count() >= 3
    hub_users = ident.where("is_hub").groupBy("id_value").count().agg(F.min("count")).first()[0]
    assert hub_users > 1  # a hub is shared by many customers


def _checksums(landing: Path) -> dict[str, str]:
    return {
        str(f.relative_to(landing)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(landing.rglob("*"))
        if f.is_file()
    }


def test_deterministic_and_rerun_replaces(spark, generated):
    # a second run into the same place gives byte-identical files and replaces the first
    # (one extra run checks both: leftovers or duplicates would change the checksums). It
    # runs with the other limit of whole-stage code generation, so the stages over 8000
    # bytes run the other way (whole or per operator), and with more tasks writing the
    # landing files: how Spark runs the plan must not show
    root, cfg = generated
    first = _checksums(root / "landing")
    assert all(name.endswith(("-00000.csv", "-00000.jsonl")) for name in first)
    other = HUGE_METHOD_LIMIT[not compiles_huge_methods(spark)]
    more_tasks = 3 * cfg.generate.resolved_scale().landing_partitions
    overrides = [*_overrides(root), f"generate.scale.landing_partitions={more_tasks}"]
    with session_conf(spark, {"spark.sql.codegen.hugeMethodLimit": str(other)}):
        assert generate.main(_args(overrides), spark=spark) == 0
    assert _checksums(root / "landing") == first


def _campaign_expected_uplift(cfg) -> float:
    """Mean planted uplift from the catalog and configured persona weights."""
    from contactlake.generate.catalog import OFFERS, PERSONAS

    persona_mean = sum(w * x.uplift for w, x in zip(cfg.generate.weights(), PERSONAS, strict=True))
    n = cfg.generate.campaigns.count
    return persona_mean * sum(OFFERS[c % len(OFFERS)][3] for c in range(n)) / n


def test_campaign_groups_and_uplift(spark, generated):
    root, cfg = generated
    cc = cfg.generate.campaigns
    rows = [r for r in _read_csv(root / "landing" / "campaign") if r["customer_id"]]
    assert {r["group"] for r in rows} == {"treatment", "control"}
    outcome = {}
    for r in rows:
        outcome[(r["campaign_id"], r["customer_id"])] = (r["group"], r["responded"] == "1")
        if r["group"] == "treatment":
            assert 1 <= int(r["attempt_no"]) <= cc.max_attempts and r["attempt_ts"]
        else:
            assert r["result"] == "holdout" and not r["attempt_ts"]
    assert len({c for c, _ in outcome}) == cc.count
    n_customers = cfg.generate.resolved_scale().customers
    per_campaign = len(outcome) / cc.count / n_customers
    assert 0.8 * cc.eligible_share <= per_campaign <= cc.eligible_share + 0.02, per_campaign
    treated = [resp for grp, resp in outcome.values() if grp == "treatment"]
    control = [resp for grp, resp in outcome.values() if grp == "control"]
    share = len(treated) / len(outcome)
    sd = math.sqrt(cc.treatment_share * (1 - cc.treatment_share) / len(outcome))
    assert abs(share - cc.treatment_share) <= 4 * sd, share
    observed = sum(treated) / len(treated) - sum(control) / len(control)
    expected = _campaign_expected_uplift(cfg)
    se = math.sqrt(0.25 / len(treated) + 0.25 / len(control))
    assert abs(observed - expected) <= 4 * se, (observed, expected)
    truth = _truth(spark, root, "uplift").toPandas()
    assert len(truth) >= len(outcome)  # truth also lists rows whose id a defect blanked
    assert (truth.p_response_treatment - truth.p_response_control - truth.uplift).abs().max() < 1e-9
    assert abs(truth.uplift.mean() - expected) <= 0.25 * expected


def test_surveys_rate_and_scores(spark, generated):
    root, cfg = generated
    contacts = {
        r.contact_id: r
        for r in _truth(spark, root, "contacts")
        .select("contact_id", "resolved", "wait_s")
        .collect()
    }
    rows = [r for r in _read_csv(root / "landing" / "surveys") if r["survey_id"]]
    rate = cfg.generate.survey_rate
    observed = len(rows) / len(contacts)
    sd = math.sqrt(rate * (1 - rate) / len(contacts))
    assert abs(observed - rate) <= 4 * sd + 0.005, observed
    assert all(r["contact_id"] in contacts for r in rows)
    valid = [r for r in rows if 0 <= int(r["nps"]) <= 10]
    assert len(valid) >= 0.97 * len(rows)
    assert all(1 <= int(r["csat"]) <= 5 for r in valid)
    good = [int(r["nps"]) for r in valid if contacts[r["contact_id"]].resolved]
    bad = [int(r["nps"]) for r in valid if not contacts[r["contact_id"]].resolved]
    assert sum(good) / len(good) - sum(bad) / len(bad) >= 1.5


def test_complaints_follow_bad_experiences(spark, generated):
    root, cfg = generated
    tickets, _ = _read_jsonl(root / "landing" / "complaints")
    contacts = _truth(spark, root, "contacts").select("contact_id", "complaint", "gave_up")
    flagged = {r.contact_id for r in contacts.where("complaint").collect()}
    linked = [t for t in tickets if t.get("contact_id")]
    assert linked and all(t["contact_id"] in flagged for t in linked)
    # every flagged contact has its ticket, except tickets lost to defects or past the range
    assert len({t["contact_id"] for t in linked}) >= 0.9 * len(flagged)
    assert any(not t.get("contact_id") for t in tickets)  # regulator/letter tickets
    for t in tickets:
        assert 1 <= t["severity"] <= 4 and t["region"] and t["brand"]


def test_complaint_exports_hold_only_what_had_happened(generated):
    root, _ = generated
    exports: dict[str, list[tuple[str, dict]]] = {}  # ticket -> (export date, record)
    for f in sorted((root / "landing" / "complaints").glob("*/*.jsonl")):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("ticket_id"):
                exports.setdefault(record["ticket_id"], []).append((f.parent.name, record))
    states = {}
    for ticket, records in exports.items():
        for day, record in records:
            # local ISO times, dated in the calendar of the export folders; an open ticket's
            # export has no close_ts (to_json leaves out null fields)
            closed = record.get("close_ts")
            assert record["open_ts"][:10] <= day, (ticket, day, record)
            assert closed is None or closed[:10] <= day, (ticket, day, record)
        states[ticket] = sorted(r.get("close_ts") is not None for _, r in records)
    # tickets open over several days are exported open, then again closed; same-day ones once
    assert any(s == [False, True] for s in states.values())
    assert any(s == [True] for s in states.values())
    assert all(s in ([False], [True], [False, True]) for s in states.values())


def test_billing_follows_subscriptions_and_churn(spark, generated):
    root, cfg = generated
    rows = _read_csv(root / "landing" / "billing")
    churn = {
        r.customer_id: r.churn_date.isoformat()
        for r in _truth(spark, root, "customers").where("churn_date is not null").collect()
    }
    end = cfg.generate.start_date + timedelta(days=cfg.generate.resolved_scale().days)
    cancels = {r["customer_id"]: r["end_date"] for r in rows if r["record_type"] == "cancellation"}
    in_range = {c: d for c, d in churn.items() if d < end.isoformat()}
    assert cancels and all(cancels[c] == d for c, d in cancels.items() if c in churn)
    assert len(set(cancels) & set(in_range)) >= 0.97 * len(in_range)
    late_bills = [
        r
        for r in rows
        if r["record_type"] == "bill"
        and r["customer_id"] in churn
        and r["bill_month"] >= churn[r["customer_id"]][:7]
    ]
    assert not late_bills
    kinds = Counter(r["record_type"] for r in rows)
    assert kinds["subscription"] >= 0.97 * cfg.generate.resolved_scale().customers
    assert kinds["plan_change"] > 0 and kinds["payment"] > 0.8 * kinds["bill"]
    # a bill is the plan's fee plus 5-45% usage, in whole cents; its payment repeats it
    amounts = [
        (r["monthly_fee"], r["amount"])
        for r in rows
        if r["record_type"] == "bill" and not r["amount"].startswith("-")
    ]
    assert all(
        1.05 * float(fee) - 0.005 <= float(a) <= 1.45 * float(fee) + 0.005
        and len(a.split(".")[1]) <= 2
        for fee, a in amounts
    )
    bills = {
        (r["customer_id"], r["bill_month"], r["amount"]) for r in rows if r["record_type"] == "bill"
    }
    payments = [r for r in rows if r["record_type"] == "payment"]
    paid_bills = [(r["customer_id"], r["bill_month"], r["amount"]) in bills for r in payments]
    assert sum(paid_bills) >= 0.98 * len(payments)
    assert all(r["paid_at"] > r["bill_month"] and r["payment_method"] for r in payments)


def test_sms_and_clickstream_link_to_contacts(spark, generated):
    root, _ = generated
    contacts = {
        r.contact_id: r
        for r in _truth(spark, root, "contacts")
        .select("contact_id", "channel", "app_user_id", "complaint")
        .collect()
    }
    phones = {
        r.id_value for r in _truth(spark, root, "identity").where("id_type = 'phone'").collect()
    }
    texts = [r for r in _read_csv(root / "landing" / "sms") if r["msg_id"]]
    assert texts and all(contacts[r["ref_id"]].channel == "voice" for r in texts)
    assert sum(r["phone"] in phones for r in texts) >= 0.97 * len(texts)
    assert all(r["template"] == "ticket_update" for r in texts if contacts[r["ref_id"]].complaint)
    views, broken = _read_jsonl(root / "landing" / "clickstream")
    assert views and broken > 0
    for v in views:
        c = contacts[v["session_id"]]
        assert c.channel == v["platform"] and v["dwell_s"] >= 5
        if v["platform"] == "app":
            assert v["app_user_id"] == c.app_user_id
        else:
            assert v["cookie_id"].startswith("ck")


def test_calibration_replica_churn_builds_up_with_experience():
    """The replica's customers leave month by month: in the first month at the base
    hazard (no issues yet in the look-back), later at base x exp(weight x capped score)."""
    churn = ChurnModel(base=(0.05,), bad_per_issue=(1.0,), experience_weight=0.2, lookback_days=30)
    n, issues_per_day, q = 200_000, 0.1, 0.0  # q = 0: an issue's score is bad_per_issue only
    leaves = _churn_days(
        churn, np.zeros(n, dtype=int), issues_per_day, q, 90, np.random.default_rng(3)
    )
    first = float(np.mean(leaves < 30))
    assert first == pytest.approx(1 - math.exp(-0.05), abs=0.003)
    # from the second month the score over 30 days is 0.1 x 30 x 1.0 = 3 (under the cap)
    assert MAX_BAD > 3
    stayed = leaves >= 30
    second = float(np.mean(leaves[stayed] < 60))
    assert second == pytest.approx(1 - math.exp(-0.05 * math.exp(0.2 * 3)), abs=0.004)
    assert np.all(np.isinf(leaves[leaves >= 90]))  # nobody leaves after the range
