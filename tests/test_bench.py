"""make bench: the Spark-vs-DuckDB comparison on a hand-built lake (both engines agree, and
on values worked out by hand), the results writers, and the pipeline benchmark's run plan.
The pipeline benchmark itself is not run here (minutes)."""

from __future__ import annotations

import json
import multiprocessing
from datetime import date, datetime, timedelta

import pytest
import yaml

from benchmarks import bench_duckdb, bench_pipeline, bench_scaling
from benchmarks.common import PeakMemory, save
from contactlake import kpis
from contactlake.config import load_config
from contactlake.unify import CUSTOMER_ATTRIBUTES
from tests.conftest import REPO
from tests.test_kpis import CONTACTS, CUSTOMERS, contact, dt

RUN_DATE = date(2026, 1, 10)
KPI_DAYS = 10  # KPI dates Jan 1 .. Jan 10; concentration reads from Dec 3 (30-day window)


def _voice(cid, key, start, wait, **kw):
    """A queued voice call (queue_ts = start), answered after ``wait`` s unless abandoned."""
    answered = not kw.get("abandoned")
    return contact(
        cid,
        key,
        start,
        "voice",
        queue="billing",
        queue_ts=start,
        answer_ts=start + timedelta(seconds=wait) if answered else None,
        wait_s=float(wait),
        handled_by_agent=answered,
        abandoned=not answered,
        transferred=False,
        **{k: v for k, v in kw.items() if k != "abandoned"},
    )


ROWS = [
    # A: voice Jan 1 (answered after 10 s, 300 talk + 30 hold + 60 wrap-up = 390 s handle),
    # app Jan 5 (3 d 23 h later: Jan 1 is repeated), voice Jan 8 abandoned after 30 s
    _voice("a1", "A", dt(1, 10), 10, talk_s=300.0, hold_s=30.0, wrapup_s=60.0, handle_s=390.0),
    contact("a2", "A", dt(5, 9), "app", resolved=True),
    _voice("a3", "A", dt(8, 9), 30, abandoned=True),
    # B: voice Jan 1 (40 s wait, 100 talk + 20 wrap-up, transferred, not resolved), voice
    # Jan 9 8 d + 1 s later (not a repeat), an outbound call Jan 2 (ignored by the KPIs)
    _voice("b1", "B", dt(1, 8), 40, talk_s=100.0, wrapup_s=20.0, handle_s=120.0, resolved=False)
    | {"transferred": True},
    _voice("b2", "B", dt(9, 8, 0, 1), 5, talk_s=60.0, handle_s=60.0),
    contact("o1", "B", dt(2, 9), "voice", direction="outbound"),
    # C: abandoned after 3 s on Jan 1 (a short abandon: not offered)
    _voice("c1", "C", dt(1, 12), 3, abandoned=True),
    # anonymous: an abandoned call after 30 s and a web visit on Jan 1
    _voice("v4", None, dt(1, 13), 30, abandoned=True),
    contact("x1", None, dt(1, 13), "web"),
    # D: three calls in December (inside the 30-day concentration window of Jan 10)
    *[_voice(f"d{i}", "D", datetime(2025, 12, 20 + i, 9), 5, talk_s=60.0) for i in range(3)],
]


def _customer(key, province, ctype, valid_from, valid_to=None, current=True):
    row = dict.fromkeys(["customer_key", "customer_id", *CUSTOMER_ATTRIBUTES])
    return row | {
        "customer_key": key,
        "customer_id": f"CU-{key}",
        "province": province,
        "customer_type": ctype,
        "valid_from": valid_from,
        "valid_to": valid_to,
        "is_current": current,
    }


CUSTOMER_ROWS = [
    _customer("A", "Guangdong", "C", datetime(2025, 1, 1)),
    # B moved on Jan 5: Beijing at the end of Jan 1
    _customer("B", "Beijing", "C", datetime(2025, 1, 1), dt(5), current=False),
    _customer("B", "Shanghai", "C", dt(5)),
    # C was created on Jan 9: no version at the end of Jan 1, so its current one
    _customer("C", "Zhejiang", "B", dt(9)),
    _customer("D", "Hunan", "C", datetime(2025, 1, 1)),
]


@pytest.fixture(scope="module")
def bench_lake(spark, tmp_path_factory):
    from contactlake.lake import Lake

    root = tmp_path_factory.mktemp("bench")
    lake = Lake(str(root / "lake"), spark, lock_timeout_s=60)
    lake.write(
        spark.createDataFrame(ROWS, CONTACTS), "silver/contacts", partition_by=["contact_date"]
    )
    lake.write(spark.createDataFrame(CUSTOMER_ROWS, CUSTOMERS), "silver/customers")
    cfg = load_config("test", [f"lake.root={root / 'lake'}"], REPO / "conf")
    return root, lake, cfg


def test_duckdb_and_spark_agree_on_a_hand_built_lake(spark, bench_lake):
    root, lake, cfg = bench_lake
    # repeats=0: agreement only (the timed runs double the Spark work; the markdown test
    # below covers how times and ratios are reported)
    result = bench_duckdb.run(
        spark,
        cfg,
        run_date=RUN_DATE,
        name="test",
        repeats=0,
        kpi_days=KPI_DAYS,
        workdir=str(root / "scratch"),
    )
    by_name = {r["name"]: r for r in result["computations"]}
    assert list(by_name) == ["kpi_handling", "kpi_repeat", "kpi_concentration", "features_contacts"]
    for r in result["computations"]:
        assert r["agree"], (r["name"], r["differing_values"], r["examples"])
        assert r["rows_spark"] == r["rows_duckdb"] > 0
        assert r["spark_median_s"] is None and r["ratio"] is None
    # Jan 1..10 has contacts on 5 dates (Jan 1, 2, 5, 8, 9): at least a file each
    assert by_name["kpi_handling"]["inputs"][0]["files"] >= 5
    # the concentration also reads the 29 days before Jan 1: the 9 rows of January + D's 3,
    # and the 5 customer rows (its base: CRM customers, kpis.customer_base)
    assert by_name["kpi_concentration"]["rows_read"] == 12 + 5
    assert result["totals"]["agree"]
    md = bench_duckdb.markdown(result)
    assert "| `kpi_repeat`" in md and "| - | - | - | yes |" in md


def test_duckdb_values_worked_out_by_hand(bench_lake):
    _, lake, cfg = bench_lake
    catalog = kpis.load_catalog(REPO / "conf" / "kpis")
    comps, sources = bench_duckdb.computations(None, lake, cfg, catalog, RUN_DATE, KPI_DAYS)
    con = bench_duckdb.duck_connect(sources)
    for c in comps:
        con.execute(f"CREATE TEMP TABLE duck_{c.name} AS {c.sql}")

    def kpi(table, kpi_id, day, dim="all", value="all"):
        rows = con.execute(
            f"SELECT numerator, denominator, value FROM duck_{table} WHERE kpi_id = ? "
            "AND kpi_date = ? AND dimension = ? AND dimension_value = ?",
            [kpi_id, day, dim, value],
        ).fetchall()
        assert len(rows) == 1, (kpi_id, day, dim, value, rows)
        return rows[0]

    jan1 = date(2026, 1, 1)
    # AHT Jan 1: a1 300 + 30 + 60 = 390 s, b1 100 + 20 = 120 s -> 510 / 2 = 255 s
    assert kpi("kpi_handling", "average_handle_time", jan1) == (510.0, 2.0, 255.0)
    # ASA Jan 1: answered a1 (10 s) and b1 (40 s) -> 25 s
    assert kpi("kpi_handling", "average_speed_of_answer", jan1) == (50.0, 2.0, 25.0)
    # abandon rate Jan 1: offered a1, b1, v4 (c1 abandoned after 3 s < 5 s is not offered);
    # v4 abandoned -> 1 / 3
    assert kpi("kpi_handling", "abandon_rate", jan1) == (1.0, 3.0, pytest.approx(1 / 3))
    # channel mix Jan 1: a1, b1, c1, v4 voice of 5 inbound (x1 web) -> 0.8
    assert kpi("kpi_handling", "channel_mix", jan1, "channel", "voice") == (4.0, 5.0, 0.8)
    # repeat Jan 1: a1 repeated by a2 (3 d 23 h), b1 not (b2 8 d + 1 s later), c1 not; the
    # anonymous v4 and x1 are left out -> 1 / 3
    assert kpi("kpi_repeat", "repeat_contact_rate", jan1) == (1.0, 3.0, pytest.approx(1 / 3))
    # by region as of the end of Jan 1: B's Beijing version, C's current (Zhejiang)
    assert kpi("kpi_repeat", "repeat_contact_rate", jan1, "region", "Beijing") == (0.0, 1.0, 0.0)
    assert kpi("kpi_repeat", "repeat_contact_rate", jan1, "region", "Zhejiang") == (0.0, 1.0, 0.0)
    # FCR Jan 1 (unknown = resolved): a1 repeated -> 0, b1 not resolved -> 0, c1 unknown and
    # not repeated -> 1: 1 / 3
    assert kpi("kpi_repeat", "first_contact_resolution", jan1)[:2] == (1.0, 3.0)
    # concentration Jan 10, calls of Dec 12 .. Jan 10: D 3, A 2 (a1, a3), B 2 (b1, b2), C 1
    # = 8 calls by 4 customers. Top 14% = 0.56 customers: 0.56 x D's 3 = 1.68 -> 0.21;
    # top 20% = 0.8 customers: 2.4 -> 0.3
    top14 = kpi("kpi_concentration", "contact_concentration", RUN_DATE, "top_share", "0.14")
    assert top14 == (pytest.approx(1.68), 8.0, pytest.approx(0.21))
    top20 = kpi("kpi_concentration", "contact_concentration", RUN_DATE, "top_share", "0.2")
    assert top20 == (pytest.approx(2.4), 8.0, pytest.approx(0.3))

    features = {
        r[0]: dict(zip([d[0] for d in con.description], r, strict=True))
        for r in con.execute("SELECT * FROM duck_features_contacts ORDER BY 1").fetchall()
    }
    a = features["A"]
    # 7-day window from Jan 4: a2 (app), a3 (voice); 30 days: a1 too
    assert (a["contacts_voice_7d"], a["contacts_app_7d"], a["contacts_voice_30d"]) == (1, 1, 2)
    # repeats: a1 -> a2 (3 d 23 h), a2 -> a3 (3 d); in 7 days only a2
    assert (a["repeat_contacts_30d"], a["repeat_contacts_7d"]) == (2, 1)
    assert (a["days_since_last_contact"], a["abandons_90d"]) == (2, 1)  # last: Jan 8
    assert a[f"top_channel_{max(cfg.features.windows_days)}d"] == "voice"
    # B: b1 -> b2 is 8 d + 1 s: no repeat; 3 contacts (one outbound), 2 inbound
    b = features["B"]
    assert (b["repeat_contacts_30d"], b["contacts_30d"], b["inbound_contacts_30d"]) == (0, 3, 2)
    assert b["transfers_90d"] == 1 and b["days_since_last_contact"] == 1
    assert b["mean_wait_s_90d"] == pytest.approx(22.5)  # (40 + 5) / 2; o1 has no wait
    assert features["D"]["days_since_last_contact"] == 19  # Dec 22
    con.close()


# ------------------------------------------------------------------ writers
PIPELINE_RESULT = {
    "scale": "tiny",
    "status": "succeeded",
    "customers": 5000,
    "days": 182,
    "run_date": "2025-07-04",
    "jobs": [
        {
            "job": "generate",
            "status": "succeeded",
            "seconds": 100.0,
            "rows_in": 0,
            "rows_out": 125000,
            "rows_per_second": 1250,
            "peak_memory_mib": 3000,
        },
        {
            "job": "ingest",
            "status": "succeeded",
            "seconds": 50.0,
            "rows_in": 125000,
            "rows_out": 124000,
            "rows_per_second": 2500,
            "peak_memory_mib": 3500,
        },
        {"job": "report", "status": "not run"},
    ],  # fmt: skip
    "totals": {
        "jobs_seconds": 150.0,
        "wall_seconds": 170.0,
        "rows_in": 125000,
        "rows_out": 249000,
        "peak_memory_mib": 3500,
    },
    "spark_start": {"seconds": 20.0},
    "engine": {
        "spark": "4.2.0",
        "pyspark": "4.2.0",
        "java": "17",
        "master": "local[*]",
        "shuffle_partitions": "8",
        "driver_memory": "8g",
    },
    "machine_at_start": {"cores": 2, "memory_gib": 23.0, "memory_available_gib": 18.0},
    "load_average_start": [2.5, 2.0, 1.0],
    "load_average_end": [3.0, 2.0, 1.0],
}


def test_pipeline_markdown_and_json(tmp_path):
    md = bench_pipeline.markdown(PIPELINE_RESULT)
    lines = md.splitlines()
    assert "| job | status | seconds | rows in | rows out | rows/s | peak memory MiB |" in lines
    assert "| generate | succeeded | 100.0 | 0 | 125,000 | 1,250 | 3,000 |" in lines
    assert "| ingest | succeeded | 50.0 | 125,000 | 124,000 | 2,500 | 3,500 |" in lines
    assert "| report | not run |  |  |  |  |  |" in lines
    assert "| **total** | | **150.0** | 125,000 | 249,000 | | **3,500** (max) |" in lines
    assert "2 cores" in md and "load average (1 min) 2.5 at start, 3.0 at end" in md
    path = save("pipeline-tiny", PIPELINE_RESULT, md, results_dir=tmp_path)
    saved = json.loads(path.read_text())
    assert saved["jobs"][1]["rows_per_second"] == 2500
    assert {"cores", "memory_gib", "load_average", "python"} <= set(saved["machine"])
    assert (tmp_path / "pipeline-tiny.md").read_text() == md + "\n"


def test_duckdb_markdown_reports_ratio_and_disagreement():
    comp = {
        "name": "kpi_repeat",
        "description": "repeat rate",
        "inputs": [{"table": "silver/contacts", "version": 3, "files": 2, "bytes": 2**20}],
        "rows_read": 1000,
        "rows_spark": 10,
        "rows_duckdb": 10,
        "spark_median_s": 2.0,
        "duckdb_median_s": 0.1,
        "ratio": 20.0,
        "agree": False,
        "only_spark": 0,
        "only_duckdb": 1,
        "differing_values": {"value": 2},
        "columns_on_one_side": [],
        "examples": [{"kpi_id": "repeat_contact_rate", "value": {"spark": 0.5, "duckdb": 0.25}}],
    }
    result = {
        "name": "demo",
        "run_date": "2026-01-03",
        "repeats": 3,
        "tolerance": 1e-9,
        "spark_action": "noop",
        "duckdb_action": "temp table",
        "computations": [comp],
        "totals": {"spark_s": 2.0, "duckdb_s": 0.1, "ratio": 20.0, "agree": False},
        "engines": {
            "spark": {"spark": "4.2.0", "master": "local[*]", "shuffle_partitions": "8"},
            "duckdb": {"version": "2.0.0", "threads": 2},
        },
        "cores": 2,
        "load_average_start": [1.0, 1.0, 1.0],
        "load_average_end": [1.0, 1.0, 1.0],
    }
    md = bench_duckdb.markdown(result)
    row = next(line for line in md.splitlines() if line.startswith("| `kpi_repeat`"))
    assert row.startswith("| `kpi_repeat`: repeat rate | 1,000 | 10 | 2.00 | 0.100 | 20.0x |")
    assert "**no**: rows only in Spark 0, DuckDB 1; value: 2 differ" in row
    assert "silver/contacts v3: 2 files, 1.0 MB" in md
    assert "- `kpi_repeat` differs:" in md


# ------------------------------------------------------------------ run plan
def test_run_plan_of_the_demo_matches_the_local_config():
    local = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    plan = bench_pipeline.plan_run(date(2025, 1, 1), 365, 50_000, 3, 3, 30)
    assert plan.run_date == local["pipeline"]["default_run_date"]
    assert plan.extra_snapshots == local["features"]["extra_snapshots"]
    # tiny (182 days): churn validation May 31 (outcome known by Jul 4 - 30 d), training
    # Apr 30; campaigns launch Feb 15, Apr 2, May 17 -> Jan 31, Mar 31, Apr 30
    tiny = bench_pipeline.plan_run(date(2025, 1, 1), 182, 5000, 3, 3, 30)
    assert tiny.run_date == date(2025, 7, 4)
    assert tiny.extra_snapshots == [date(2025, 1, 31), date(2025, 3, 31), date(2025, 4, 30),
                                    date(2025, 5, 31)]  # fmt: skip
    assert "ingest.lookback_days=185" in tiny.overrides()


def _scale(customers, jobs):
    return {"customers": customers, "jobs": jobs, "peak_memory_mib": 1000}


def test_scaling_fit_and_large_prediction_worked_out_by_hand():
    # generate: 100 s + rows / 50,000; ingest: 50 s + rows / 20,000; unify: 30 s + rows / 10,000
    scales = [
        _scale(
            n,
            {
                "generate": {"rows": 100 * n, "seconds": 100 + 100 * n / 50_000},
                "ingest": {"rows": 100 * n, "seconds": 50 + 100 * n / 20_000},
                "unify": {"rows": 50 * n, "seconds": 30 + 50 * n / 10_000},
            },
        )
        for n in (10_000, 20_000, 40_000)
    ]
    got = bench_scaling.analyse(scales, ["generate", "ingest", "unify"], 2_000_000, cores=2)
    gen, ing, uni = (got["jobs"][j] for j in ("generate", "ingest", "unify"))
    assert gen["fixed_s"] == pytest.approx(100)
    assert gen["marginal_rows_per_s"] == pytest.approx(50_000)
    assert gen["large_rows"] == 200_000_000
    assert gen["large_seconds"] == pytest.approx(100 + 4_000)
    assert ing["large_seconds"] == pytest.approx(50 + 10_000)
    assert uni["large_rows"] == 100_000_000
    assert uni["large_seconds"] == pytest.approx(30 + 10_000)
    targets = got["targets"]
    assert set(targets) == {"generate", "ingest+unify"}  # no kpis/features/tags measured
    # 4,000 s of marginal work on 2 cores into the 500 s the fixed part leaves: 16 cores
    assert targets["generate"]["cores_for_target"] == pytest.approx(16)
    # 20,000 s of marginal work into 1,200 - 80 s
    assert targets["ingest+unify"]["cores_for_target"] == pytest.approx(2 * 20_000 / 1_120)
    assert targets["ingest+unify"]["large_seconds"] == pytest.approx(80 + 20_000)

    md = bench_scaling.markdown(
        {
            "scales": scales,
            "job_names": ["generate", "ingest", "unify"],
            "cores": 2,
            "large_customers": 2_000_000,
            "analysis": got,
        }
    )
    assert "| 40,000 | 180 (22,222) | 250 (16,000) | 230 (8,696) | 1000 |" in md
    assert "| generate | 100 | 50,000 | 25,000 | 200,000,000 | 68 min |" in md
    assert "| ingest+unify | 20 min | 335 min | 36 |" in md


def _hold(ready, release):
    ready.set()
    release.wait(30)


def _grown_mib_with_forked_children(block_mib: int, results) -> None:
    """In a process of its own (no Spark JVM or workers below it, whose memory would move
    meanwhile): how much PeakMemory grows with a block shared by three forked children."""
    before = PeakMemory.now()
    block = b"x" * (block_mib << 20)  # written, so resident in this process
    fork = multiprocessing.get_context("fork")
    release = fork.Event()
    children = []
    for _ in range(3):
        ready = fork.Event()
        child = fork.Process(target=_hold, args=(ready, release))
        child.start()
        ready.wait(30)
        children.append(child)
    try:
        with PeakMemory() as memory:
            pass
    finally:
        release.set()
        for child in children:
            child.join(30)
    results.put(((memory.peak_bytes - before) / 2**20, len(block)))


def test_peak_memory_counts_pages_shared_with_forked_children_once():
    """Spark forks its Python workers, which share the daemon's pages: summing RSS counted
    them once per process (a 47 GiB "peak" on a 24 GiB machine)."""
    block_mib = 256
    fork = multiprocessing.get_context("fork")
    results = fork.Queue()
    measuring = fork.Process(target=_grown_mib_with_forked_children, args=(block_mib, results))
    measuring.start()
    grown_mib, block_bytes = results.get(timeout=60)
    measuring.join(30)
    assert block_bytes == block_mib << 20
    # each child maps the block too: RSS would add it four times (~1024 MiB)
    assert block_mib * 0.9 < grown_mib < block_mib * 1.6, grown_mib
