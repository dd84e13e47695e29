"""The run report: the data shaping behind its charts against hand-worked values, the page
(escaping, missing sections), jobs.report end to end on a tiny lake (realised churn curves,
and a lake with no table at all), and the page drawn in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from contactlake.config import ConfigError, load_config
from contactlake.kpis import KPI_ALERTS_SCHEMA, KPI_DAILY_SCHEMA
from contactlake.lake import Lake
from contactlake.publish import AUDIENCES_SCHEMA, EXCLUSIONS_SCHEMA
from contactlake.report import aggregates as agg
from contactlake.report import charts
from contactlake.report.page import Note, Section, Table, missing, render
from contactlake.runner import JOB_RUNS, JOB_RUNS_SCHEMA
from contactlake.schemas import SUBSCRIPTIONS

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
D = date(2026, 3, 10)  # run date of the job tests
OLD = date(2026, 1, 31)  # a scored snapshot whose 30-day outcome is known by D


def specs(page: str) -> dict:
    """The chart specs embedded in a report page, by chart id."""
    found = re.search(
        r'<script type="application/json" id="chart-specs">(.*?)</script>', page, re.S
    )
    assert found, "no chart specs in the page"
    return json.loads(found.group(1))


def trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


# ---------------------------------------------------------------------------- pure functions
def test_lorenz_points_and_gini_hand_worked():
    rows = pd.DataFrame({"dimension_value": ["1", "0.5"], "value": [1.0, 0.2]})
    points = charts.lorenz_points(rows)
    assert points.to_dict("list") == {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.2, 1.0]}
    # area under the curve: 0.5 * (0 + 0.2) / 2 + 0.5 * (0.2 + 1) / 2 = 0.35; Gini 1 - 0.7
    assert charts.gini(points) == pytest.approx(0.3)
    equal = pd.DataFrame({"x": [0.0, 0.5, 1.0], "y": [0.0, 0.5, 1.0]})
    assert charts.gini(equal) == pytest.approx(0.0)

    top = pd.DataFrame({"dimension_value": ["0.14", "0.05"], "value": [0.51, 0.2]})
    chart = charts.lorenz_chart([("2026-03-10", points)], top, "c", "sub")
    marks = next(t for t in chart.figure.data if t.name == "top shares of customers")
    # top 14% make 51%: the least active 86% make 49%
    assert list(marks.x) == pytest.approx([0.86, 0.95])
    assert list(marks.y) == pytest.approx([0.49, 0.8])
    assert charts.top_share_text(top) == "top 5% → 20%, top 14% → 51%"
    assert "Gini 0.30" in chart.figure.layout.title.text


def test_exclusion_matrix_sums_campaigns_and_orders_by_totals():
    rows = pd.DataFrame(
        [
            ("retention", "no_consent", 5),
            ("retention", "size_cap", 3),
            ("retention", "no_consent", 2),  # same audience, another campaign or channel
            ("boost", "no_consent", 10),
            ("care", "open_complaint", 1),
        ],
        columns=["audience_id", "reason", "customers"],
    )
    matrix = charts.exclusion_matrix(rows)
    # retention 10 and boost 10 tie: by name; reasons by total (17, 3, 1)
    assert list(matrix.index) == ["boost", "retention", "care"]
    assert list(matrix.columns) == ["no_consent", "size_cap", "open_complaint"]
    assert matrix.to_numpy().tolist() == [[10, 0, 0], [7, 3, 0], [0, 0, 1]]
    chart = charts.exclusions_chart(matrix, "c", "sub")
    no_consent = next(t for t in chart.figure.data if t.name == "no consent")
    assert list(no_consent.y) == ["care", "retention", "boost"]  # largest at the top
    assert list(no_consent.x) == [0, 7, 10]


def test_roc_and_pr_points_from_a_lift_table():
    # 100 customers, 10 churners; the top half holds 8 of them
    lift = pd.DataFrame(
        {"fraction": [1.0, 0.5], "rows_targeted": [100.0, 50.0], "positives": [10.0, 8.0]}
    )
    points = charts.curves_from_lift(lift)
    assert points["fraction"].tolist() == [0.0, 0.5, 1.0]
    assert points["tpr"].tolist() == pytest.approx([0.0, 0.8, 1.0])
    assert points["fpr"].tolist() == pytest.approx([0.0, 42 / 90, 1.0])
    assert points["precision"].tolist() == pytest.approx([0.16, 0.16, 0.1])


def test_profile_table_and_distinctive_features():
    # segment 0: calls 1, 1, 1 (3 customers); segment 1: calls 5 and a customer without
    # calls; "flat" is 2 for everyone
    sums = pd.DataFrame(
        {
            "segment_id": [1, 0],
            "customers": [2, 3],
            "n__calls": [1, 3],
            "s__calls": [5.0, 3.0],
            "q__calls": [25.0, 3.0],
            "n__flat": [2, 3],
            "s__flat": [4.0, 6.0],
            "q__flat": [8.0, 12.0],
        }
    )
    profile = charts.profile_table(sums, ["calls", "flat"])
    # calls: population mean 8 / 4 = 2, variance 28 / 4 - 4 = 3
    got = profile[["segment_id", "size", "share", "feature", "segment_mean"]]
    assert got.to_records(index=False).tolist() == [
        (0, 3, 0.6, "calls", 1.0),
        (0, 3, 0.6, "flat", 2.0),
        (1, 2, 0.4, "calls", 5.0),
        (1, 2, 0.4, "flat", 2.0),
    ]
    # flat has no spread: z 0
    assert profile["z"].tolist() == pytest.approx([-1 / 3**0.5, 0.0, 3 / 3**0.5, 0.0])
    assert profile["population_mean"].tolist() == pytest.approx([2.0, 2.0, 2.0, 2.0])

    rows = [
        # big segment A: f1 then f2 stand out; small segment B: f3, and extremely
        ("A", 10, "f1", 3.0),
        ("A", 10, "f2", -2.0),
        ("A", 10, "f3", 0.1),
        ("B", 5, "f1", 0.5),
        ("B", 5, "f2", 0.2),
        ("B", 5, "f3", -40.0),
    ]
    profile = pd.DataFrame(rows, columns=["segment_id", "size", "feature", "z"])
    assert charts.distinctive_features(profile, 1) == ["f1"]
    assert charts.distinctive_features(profile, 2) == ["f1", "f3"]
    assert charts.distinctive_features(profile, 3) == ["f1", "f3", "f2"]
    assert charts.distinctive_features(profile, 9) == ["f1", "f3", "f2"]


def test_latest_runs_and_stage_seconds():
    t0 = datetime(2026, 3, 10, 2)
    stages = json.dumps([{"stage": "read", "seconds": 1.5}, {"stage": "write", "seconds": 2.0}])
    runs = pd.DataFrame(
        [
            ("score", t0, "failed", 3.0, "[]"),
            ("kpis", t0 + timedelta(minutes=1), "succeeded", 4.0, None),
            ("score", t0 + timedelta(minutes=5), "succeeded", 5.0, stages),  # the retry
        ],
        columns=["job", "started_at", "status", "duration_s", "stages"],
    )
    latest = charts.latest_runs(runs)
    assert latest[["job", "status"]].to_records(index=False).tolist() == [
        ("kpis", "succeeded"),
        ("score", "succeeded"),
    ]
    seconds = charts.stage_seconds(latest)
    assert seconds.to_records(index=False).tolist() == [
        ("kpis", "other", 4.0),  # no stages logged: all of it
        ("score", "read", 1.5),
        ("score", "write", 2.0),
        ("score", "other", 1.5),  # 5 s - 3.5 s in stages
    ]


def test_kpi_trend_marks_target_alerts_and_provisional_values():
    kpi = charts.KpiInfo("repeat_contact_rate", "Repeat contact rate", "ratio", "lower", 0.3)
    rows = pd.DataFrame(
        {
            "kpi_date": [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)],
            "value": [0.25, 0.35, 0.28],
            "target": [0.3, 0.3, 0.3],
            "complete": [True, True, False],
        }
    )
    alerts = pd.DataFrame(
        {
            "kpi_date": [date(2026, 3, 9)],
            "kind": ["target_breach"],
            "value": [0.35],
            "detail": ["value 0.35 is above target 0.3"],
        }
    )
    fig = charts.kpi_trend(kpi, rows, alerts, "c").figure
    value = next(t for t in fig.data if t.name == "value")
    assert list(value.marker.symbol) == ["circle", "circle", "circle-open"]
    assert list(next(t for t in fig.data if t.name == "target").y) == [0.3, 0.3, 0.3]
    breach = next(t for t in fig.data if t.name == "target breach")
    assert list(breach.x) == ["2026-03-09"] and list(breach.y) == [0.35]
    assert not [t for t in fig.data if t.name == "anomaly"]
    assert fig.layout.title.subtitle.text == ("28.0% on 2026-03-10, provisional · target ≤ 30.0%")
    assert charts.format_value(412.4, "seconds") == "412 s"
    assert charts.format_value(-10.14, "points") == "-10.1"


def test_page_escapes_text_says_what_is_missing_and_fetches_nothing():
    fig = charts.score_histogram_chart(
        pd.DataFrame({"lower": [0.0, 0.5], "upper": [0.5, 1.0], "customers": [3, 1]}),
        "chart-x",
        "</script><b>sub</b>",
    )
    sections = [
        Section("a", "Has <things>").add(
            fig, Table(["k", "n"], [["<i>", 1234]], numeric=("n",)), Note("plain & simple")
        ),
        Section("b", "Empty").add(missing("gold/nothing")),
    ]
    page = render(
        sections,
        title="report",
        run_date=D,
        lake_root="/lake",
        env="test",
        generated_at=datetime(2026, 3, 11, 1, 2, 3),
        tables_read={"gold/x": 3},
        plotly_js="/* plotly */",
    )
    assert "Has &lt;things&gt;" in page and "&lt;i&gt;" in page and "1,234" in page
    assert "plain &amp; simple" in page
    assert "not available: gold/nothing missing" in page
    assert '<span class="na">not available</span>' in page  # in the table of contents
    assert page.count("</script>") == page.count("<script")  # the subtitle did not end one
    assert specs(page)["chart-x"]["layout"]["title"]["subtitle"]["text"] == "</script><b>sub</b>"
    assert "gold/x@v3" in page and "2026-03-11 01:02:03 UTC" in page
    # self-contained: nothing is loaded from elsewhere
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)
    with pytest.raises(ValueError, match="unique"):
        render(
            [Section("a", "A").add(fig, fig)],
            title="r",
            run_date=D,
            lake_root="/",
            env="test",
            generated_at=datetime(2026, 3, 11),
            tables_read={},
            plotly_js="",
        )


@pytest.mark.parametrize(
    "override, message",
    [
        ("report.score_bins=1", "report.score_bins"),
        ("report.trend_days=0", "report.trend_days"),
        ("report.colour=red", "report.colour"),
        ("report.kpis=[nps, nps]", "listed twice"),
    ],
)
def test_report_config_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("test", [override], REPO / "conf")


# ---------------------------------------------------------------------------- Spark aggregates
def test_score_histogram_counts_every_bin(spark):
    scores = spark.createDataFrame(
        [(p,) for p in (0.0, 0.05, 0.5, 0.99, 1.0, None)], "churn_probability double"
    )
    hist = agg.score_histogram(scores, "churn_probability", 4).toPandas()
    assert hist.to_records(index=False).tolist() == [
        (0, 0.0, 0.25, 2),
        (1, 0.25, 0.5, 0),
        (2, 0.5, 0.75, 1),
        (3, 0.75, 1.0, 2),  # 1.0 falls in the last bin
    ]


def test_segment_feature_sums(spark):
    rows = spark.createDataFrame(
        [(0, 1.0), (0, 3.0), (1, 5.0), (1, None)], "segment_id int, calls double"
    )
    sums = agg.segment_feature_sums(rows, ["calls"]).toPandas()
    assert sums.to_records(index=False).tolist() == [(0, 2, 2, 4.0, 10.0), (1, 2, 1, 5.0, 25.0)]


# ---------------------------------------------------------------------------- the job
def build_lake(spark, lake: Lake, *, matured: bool) -> None:
    """A tiny lake with every table the report reads, dated around D.

    ``matured``: churn scores of OLD too (outcome known by D: realised curves), else
    only D's (the curves come from MLflow).
    """
    days = [D - timedelta(days=i) for i in (2, 1, 0)]
    kpi_rows = []
    for i, day in enumerate(days):
        last = i == len(days) - 1
        kpi_rows += [
            (day, "abandon_rate", 1, "all", "all", 0.10 + i / 100, 10.0, 100.0, 0.08, True, True),
            (day, "repeat_contact_rate", 1, "all", "all", 0.2, 2.0, 10.0, 0.3, False, not last),
            (day, "channel_mix", 1, "channel", "voice", 0.6, 60.0, 100.0, 0.6, False, True),
            (day, "channel_mix", 1, "channel", "app", 0.4, 40.0, 100.0, None, None, True),
            (day, "channel_diversion_rate", 1, "all", "all", 0.1, 1.0, 10.0, 0.2, True, not last),
            (day, "contact_concentration", 1, "top_share", "0.14", 0.5, 5.0, 10.0, 0.6, False, True),
            (day, "contact_concentration", 1, "lorenz", "0.5", 0.2, 2.0, 10.0, None, None, True),
            (day, "contact_concentration", 1, "lorenz", "1", 1.0, 10.0, 10.0, None, None, True),
        ]  # fmt: skip
    lake.write(
        spark.createDataFrame(kpi_rows, KPI_DAILY_SCHEMA),
        "gold/kpi_daily",
        partition_by=["kpi_date"],
    )
    alerts = [
        (D, "abandon_rate", 1, "all", "all", 0.12, 0.08, "target_breach", "value 0.12 is above target 0.08"),
        (D, "abandon_rate", 1, "region", "Hebei", 0.5, None, "anomaly", "value 0.5 is +4.0 sd from ..."),
    ]  # fmt: skip
    lake.write(
        spark.createDataFrame(alerts, KPI_ALERTS_SCHEMA),
        "gold/kpi_alerts",
        partition_by=["kpi_date"],
    )

    keys = [f"c{i}" for i in range(1, 7)]
    lake.write(
        spark.createDataFrame(
            [(D, k, 0 if n <= 3 else 1, "busy" if n <= 3 else "quiet", "seg", "2") for n, k in enumerate(keys, 1)],
            "snapshot_date date, customer_key string, segment_id int, segment_name string, "
            "model_name string, model_version string",
        ),
        "gold/segments",
        partition_by=["snapshot_date"],
    )  # fmt: skip
    lake.write(
        spark.createDataFrame(
            [(D, k, 100 * n, 9 - n) for n, k in enumerate(keys, 1)],
            "snapshot_date date, customer_key string, tenure_days int, contacts_30d int",
        ),
        "gold/customer_features",
        partition_by=["snapshot_date"],
    )
    old_scores = [0.9, 0.3, 0.8, 0.2, 0.1, 0.05]  # c1 and c2 churn (below)
    scores = [(D, k, 0.1 * n, "contactlake-churn", "1") for n, k in enumerate(keys, 1)]
    if matured:
        scores += [
            (OLD, k, p, "contactlake-churn", "1") for k, p in zip(keys, old_scores, strict=True)
        ]
    lake.write(
        spark.createDataFrame(
            scores,
            "snapshot_date date, customer_key string, churn_probability double, "
            "model_name string, model_version string",
        ),
        "gold/churn_scores",
        partition_by=["snapshot_date"],
    )
    start = date(2025, 1, 1)
    subscriptions = [
        (k, None, None, "p", 10.0, start, date(2026, 2, 15) if k in ("c1", "c2") else None,
         k in ("c1", "c2"), None, None)
        for k in keys
    ]  # fmt: skip
    lake.write(spark.createDataFrame(subscriptions, SUBSCRIPTIONS), "silver/subscriptions")

    cols = [c.split()[0] for c in AUDIENCES_SCHEMA.split(", ")]
    chosen = [("CMP1", "sms_boost", "sms", "c1"), ("CMP1", "sms_boost", "sms", "c2"),
              ("CMP2", "retention_call", "outbound_call", "c3")]  # fmt: skip
    lake.write(
        spark.createDataFrame(
            [
                {
                    **dict.fromkeys(cols),
                    "snapshot_date": D,
                    "campaign_id": c,
                    "audience_id": a,
                    "channel": ch,
                    "customer_key": k,
                }
                for c, a, ch, k in chosen
            ],  # fmt: skip
            AUDIENCES_SCHEMA,
        ),
        "gold/audiences",
        partition_by=["snapshot_date"],
    )
    exclusions = [
        (D, "CMP1", "sms_boost", "sms", "no_consent", 5, None),
        (D, "CMP1", "sms_boost", "sms", "size_cap", 3, None),
        (D, "CMP2", "retention_call", "outbound_call", "no_consent", 10, None),
        (D - timedelta(days=1), "CMP2", "retention_call", "outbound_call", "no_consent", 99, None),
    ]
    lake.write(
        spark.createDataFrame(exclusions, EXCLUSIONS_SCHEMA),
        "gold/audience_exclusions",
        partition_by=["snapshot_date"],
    )

    t0 = datetime(2026, 3, 11, 1)

    def run(job, day, minutes, status, seconds, stages=()):
        return {
            "run_id": f"{job}-{minutes}", "job": job, "run_date": day, "env": "test",
            "status": status, "started_at": t0 + timedelta(minutes=minutes),
            "finished_at": t0 + timedelta(minutes=minutes, seconds=seconds),
            "duration_s": seconds, "rows_in": 100, "rows_out": 50, "rows_rejected": 0,
            "tables_read": {}, "tables_written": {"gold/x": 1},
            "stages": json.dumps([{"stage": s, "rows": None, "seconds": v} for s, v in stages]),
            "error": "RuntimeError: boom" if status == "failed" else None,
            "host": "h", "spark_app_id": "a",
        }  # fmt: skip

    lake.append_rows(
        JOB_RUNS,
        [
            run("kpis", D - timedelta(days=1), -1440, "succeeded", 30.0),
            run("kpis", D, 0, "succeeded", 20.0, [("read", 5.0), ("compute", 12.0)]),
            run("score", D, 1, "failed", 3.0),
            run("score", D, 2, "succeeded", 8.0, [("write", 6.0)]),
        ],
        JOB_RUNS_SCHEMA,
    )


def run_report(spark, job_argv, tmp_path) -> str:
    from jobs import report

    assert report.main(job_argv(D.isoformat()), spark=spark) == 0
    return (tmp_path / "reports" / D.isoformat() / "index.html").read_text()


def test_report_job_draws_every_section_from_a_tiny_lake(spark, tmp_path, job_argv):
    lake = Lake(str(tmp_path / "lake"), spark)
    build_lake(spark, lake, matured=True)
    page = run_report(spark, job_argv, tmp_path)
    charts_ = specs(page)
    assert set(charts_) >= {
        "chart-kpi-abandon-rate",
        "chart-kpi-repeat-contact-rate",
        "chart-alerts-per-day",
        "chart-lorenz",
        "chart-top-share-trend",
        "chart-channel-mix",
        "chart-channel-shift",
        "chart-segment-sizes",
        "chart-segment-profiles",
        "chart-churn-score-distribution",
        "chart-churn-roc",
        "chart-churn-pr",
        "chart-churn-lift",
        "chart-churn-calibration",
        "chart-audience-sizes",
        "chart-exclusions",
        "chart-job-durations",
        "chart-job-rows",
        "chart-job-trend",
    }
    assert 'class="note missing"' not in page and '<span class="na">' not in page
    assert "<script src" not in page

    lorenz = trace(charts_["chart-lorenz"], f"{D} (Gini 0.30)")
    assert (lorenz["x"], lorenz["y"]) == ([0.0, 0.5, 1.0], [0.0, 0.2, 1.0])
    abandon = charts_["chart-kpi-abandon-rate"]
    assert trace(abandon, "target breach")["x"] == [D.isoformat()]
    assert trace(abandon, "value")["y"] == pytest.approx([0.10, 0.11, 0.12])
    repeat = trace(charts_["chart-kpi-repeat-contact-rate"], "value")
    assert repeat["marker"]["symbol"] == ["circle", "circle", "circle-open"]
    # realised churn curves: scores of OLD against cancellations in (OLD, OLD + 30 days];
    # churners c1 (0.9) and c2 (0.3) outscore 4 and 3 of the 4 others: AUC 7/8
    assert "Realised performance: the scores of 2026-01-31" in page
    assert "ROC curve (AUC 0.875)" in charts_["chart-churn-roc"]["layout"]["title"]["text"]
    hist = charts_["chart-churn-score-distribution"]["data"][0]
    assert sum(hist["y"]) == 6  # D's six scores, not OLD's
    sizes = charts_["chart-segment-sizes"]["data"][0]
    assert sizes["x"] == [3, 3] and sizes["y"] == ["0: busy", "1: quiet"]
    profile = charts_["chart-segment-profiles"]["data"][0]
    assert set(profile["x"]) == {"contacts_30d", "tenure_days"}
    # busy (c1..c3): tenure 200 against 350 on average, population std sqrt(29166.7)
    busy = dict(zip(profile["x"], profile["z"][0], strict=True))
    assert busy["tenure_days"] == pytest.approx(-150 / (87500 / 3) ** 0.5)
    excluded = trace(charts_["chart-exclusions"], "no consent")
    assert dict(zip(excluded["y"], excluded["x"], strict=True)) == {
        "retention_call": 10,  # D's publication only, not the 99 of the day before
        "sms_boost": 5,
    }
    audience = {t["name"]: t["x"] for t in charts_["chart-audience-sizes"]["data"]}
    assert audience == {"outbound_call": [1], "sms": [2]}
    # the retried score run counts, not its failed first attempt
    durations = charts_["chart-job-durations"]
    assert trace(durations, "score")["x"] == [6.0, 2.0]  # write 6 s + 2 s outside stages
    assert trace(durations, "kpis")["x"] == [5.0, 12.0, 3.0]
    assert "RuntimeError: boom" not in page
    done = Lake(str(tmp_path / "lake"), spark).read(JOB_RUNS).where("job = 'report'").collect()
    assert [r.status for r in done] == ["succeeded"]


def test_report_job_on_an_empty_lake_says_what_is_missing(spark, tmp_path, job_argv):
    page = run_report(spark, job_argv, tmp_path)
    for table in (
        "gold/kpi_daily",
        "gold/segments",
        "gold/churn_scores",
        "gold/audiences",
        "gold/audience_exclusions",
        "ops/job_runs",
    ):
        assert f"not available: {table} missing" in page, table
    assert specs(page) == {}

    # KPIs without alerts yet: the trends are drawn, the alerts said missing
    nps = [(D, "nps", 1, "all", "all", 35.0, 7.0, 20.0, 30.0, False, True)]
    Lake(str(tmp_path / "lake"), spark).write(
        spark.createDataFrame(nps, KPI_DAILY_SCHEMA),
        "gold/kpi_daily",
        partition_by=["kpi_date"],
    )
    page = run_report(spark, job_argv, tmp_path)
    assert "not available: gold/kpi_alerts missing" in page
    title = specs(page)["chart-kpi-nps"]["layout"]["title"]
    assert title["subtitle"]["text"] == "+35.0 on 2026-03-10 · target ≥ +30.0"


# ---------------------------------------------------------------------------- in a browser
class ChartMarks(HTMLParser):
    """Per chart container (div.chart) of a rendered page: its data-rendered state, how
    many Plotly SVG roots and how many drawn marks (non-empty paths and heat map images
    inside trace groups) it holds."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack: list[dict] = []
        self.charts: dict[str, dict] = {}
        self.body: dict = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        chart = next((f["chart"] for f in reversed(self.stack) if f["chart"]), None)
        in_trace = any(f["trace"] for f in self.stack)
        frame = {"tag": tag, "chart": None, "trace": "trace" in classes or "hm" in classes}
        if tag == "body":
            self.body = a
        if tag == "div" and "chart" in classes and a.get("id"):
            self.charts[a["id"]] = {"rendered": a.get("data-rendered"), "svg": 0, "marks": 0}
            frame["chart"] = a["id"]
        elif chart:
            if tag == "svg" and "main-svg" in classes:
                self.charts[chart]["svg"] += 1
            drawn_path = tag == "path" and (a.get("d") or "") not in ("", "M0,0Z")
            if in_trace and (drawn_path or tag == "image"):
                self.charts[chart]["marks"] += 1
        if tag not in self.VOID:
            self.stack.append(frame)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                return


def register_churn_model(tmp_path) -> None:
    """A churn model version in MLflow whose run holds the evaluation artifacts train_churn
    logs (metrics, lift and calibration tables); no model files are needed by the report."""
    import mlflow
    from mlflow import MlflowClient

    from contactlake.ml import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = tracking.experiment_id("contactlake-churn", str(tmp_path / "mlruns"))
    lift = pd.DataFrame(
        {
            "bin": [1, 2],
            "fraction": [0.5, 1.0],
            "rows_targeted": [50.0, 100.0],
            "positives": [8.0, 10.0],
            "capture": [0.8, 1.0],
            "lift": [1.6, 1.0],
        }
    )
    calibration = pd.DataFrame(
        {
            "bin": [0, 1],
            "lower": [0.0, 0.5],
            "upper": [0.5, 1.0],
            "rows": [80, 20],
            "mean_predicted": [0.2, 0.7],
            "observed_rate": [0.05, 0.3],
        }
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_params(
            {
                "model": "logistic",
                "train_snapshot": "2025-12-31",
                "validation_snapshot": "2026-01-31",
            }
        )
        mlflow.log_metrics(
            {"roc_auc": 0.81, "pr_auc": 0.3, "lift_top_decile": 2.5, "brier": 0.09,
             "rows_validation": 100, "positives_validation": 10}
        )  # fmt: skip
        tracking.log_table(lift, "evaluation/lift")
        tracking.log_table(calibration, "evaluation/calibration")
    client = MlflowClient(uri, uri)
    client.create_registered_model("contactlake-churn")
    client.create_model_version(
        "contactlake-churn", f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )


def chromium_dom(page: Path, profile: Path) -> tuple[str, str]:
    """The DOM of ``page`` after its scripts ran in headless Chromium, and the browser log."""
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,2000",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=30000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, done.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: `make setup` installs Debian's chromium (needs root and apt-get)",
)
def test_report_draws_every_chart_in_headless_chromium(spark, tmp_path, job_argv):
    lake = Lake(str(tmp_path / "lake"), spark)
    build_lake(spark, lake, matured=False)  # churn curves from the model's MLflow run
    register_churn_model(tmp_path)
    page = run_report(spark, job_argv, tmp_path)
    assert "validation of contactlake-churn v1 at training" in page
    expected = specs(page)
    assert "chart-churn-roc" in expected and "chart-churn-calibration" in expected

    started = time.monotonic()
    dom, log = chromium_dom(tmp_path / "reports" / D.isoformat() / "index.html", tmp_path / "c")
    seconds = time.monotonic() - started
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not [c for c in console if "Uncaught" in c or "Error" in c], console
    found = ChartMarks()
    found.feed(dom)
    assert found.body.get("data-js-errors") == "0", found.body
    assert found.body.get("data-charts") == str(len(expected))
    assert set(found.charts) == set(expected)
    for chart_id, state in found.charts.items():
        assert state["rendered"] == "true", (chart_id, state)
        assert state["svg"] >= 1, (chart_id, state)
        assert state["marks"] >= 1, (chart_id, state)
    # a chart with several traces draws each: the ROC curve and its diagonal at least
    assert found.charts["chart-churn-roc"]["marks"] >= 2
    assert seconds < 200
