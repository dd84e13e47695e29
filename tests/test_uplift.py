"""Uplift: metrics worked out by hand, point-in-time training rows, and jobs.train_uplift +
jobs.score against a real MLflow sqlite store and a real Delta lake in tmp_path.

The job scenario (module fixture): 200 customers, 2 campaigns, each with 160 customers
split half treatment, half control. Every 4th customer (``app_user`` = 1) is persuadable:
contacted, 80% respond, else 10%; everybody else responds 10% either way. So the only
treatment effect is in one identifiable group.
  uplift v1 on a noise feature only (logistic, first model: champion), v2 on every feature
  (gradient-boosted trees, both methods; better: champion), v3 on noise again (worse: stays
  challenger); score twice for the same date
  (replaces, never duplicates); score a campaign the model does not know (fails).
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from mlflow import MlflowClient
from pyspark.sql import functions as F

from contactlake.config import ConfigError, load_config
from contactlake.lake import Lake
from contactlake.ml import metrics, uplift
from contactlake.ml.data import MlDataError
from contactlake.publish import SCORE_SOURCES
from contactlake.schemas import CAMPAIGN_CONTACTS
from jobs import score, train_uplift
from tests.test_ml_jobs import parent_and_child_runs

SCORED = "campaign_id string, treated double, label double, score double"
D = date.fromisoformat


def _scored(spark, rows, campaign="A"):
    """(treated, responded, score) -> a scored DataFrame of one campaign."""
    return spark.createDataFrame(
        [(campaign, float(t), float(y), float(s)) for t, y, s in rows], SCORED
    )


# ------------------------------------------------------------------ metrics by hand
def test_uplift_curve_and_areas_by_hand(spark):
    # N = 4 rows, N_t = 2 treated. Down the ranking (cumulative n_t n_c r_t r_c):
    #  0.4 T y=1: 1 0 1 0  qini = (1 - 0) / 2 = 0.5            gain = (1/1 - 0) * 1/4 = 0.25
    #  0.3 C y=0: 1 1 1 0  qini = (1 - 0 * 1/1) / 2 = 0.5      gain = (1 - 0) * 2/4 = 0.5
    #  0.2 T y=0: 2 1 1 0  qini = (1 - 0) / 2 = 0.5            gain = (1/2 - 0) * 3/4 = 0.375
    #  0.1 C y=1: 2 2 1 1  qini = (1 - 1 * 2/2) / 2 = 0         gain = (1/2 - 1/2) * 1 = 0
    df = _scored(spark, [(1, 1, 0.4), (0, 0, 0.3), (1, 0, 0.2), (0, 1, 0.1)])
    curve = metrics.uplift_curve(df, "treated", "label", "score").select("fraction", "qini", "gain")
    expected = spark.createDataFrame(
        [(0.25, 0.5, 0.25), (0.5, 0.5, 0.5), (0.75, 0.5, 0.375), (1.0, 0.0, 0.0)],
        "fraction double, qini double, gain double",
    )
    assert_approx_df_equality(curve, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)
    row = metrics.uplift_areas(df, "treated", "label", "score").first()
    # Qini area, trapezoids of width 0.25: (0 + .5)/2 + .5 + .5 + (.5 + 0)/2 = 1.5 -> 0.375;
    # the random line ends at qini 0, so the coefficient is the area.
    assert row.qini_coefficient == pytest.approx(0.375)
    # AUUC: 0.25 * ((0 + .25)/2 + (.25 + .5)/2 + (.5 + .375)/2 + (.375 + 0)/2) = 0.28125
    assert row.auuc == pytest.approx(0.28125)
    # overall: 1/2 of the treated and 1/2 of the controls respond
    assert (row.ate, row.rows, row.treated, row.control) == (0.0, 4.0, 2.0, 2.0)


def test_uplift_at_counts_a_tied_group_in_proportion(spark):
    # Scores 0.9 (T y=1), 0.9 (C y=0), 0.5 (T y=0), 0.1 (C y=1); quarters of 1 row each.
    # Top 25%: half of the tied 0.9 group: treated 0.5 (0.5 responders), control 0.5 (0)
    #   -> uplift 0.5/0.5 - 0/0.5 = 1; qini (0.5 - 0) / 2 treated = 0.25.
    # Top 50%: the whole tied group: 1/1 - 0/1 = 1; qini 1/2 = 0.5.
    # Top 75%: + T y=0: 1/2 - 0/1 = 0.5; qini (1 - 0) / 2 = 0.5.
    # Top 100%: 1/2 - 1/2 = 0; qini (1 - 1 * 2/2) / 2 = 0.
    df = _scored(spark, [(1, 1, 0.9), (0, 0, 0.9), (1, 0, 0.5), (0, 1, 0.1)])
    got = metrics.uplift_at(df, "treated", "label", "score", bins=4).select(
        "bin", "rows_targeted", "treated", "control", "uplift", "qini"
    )
    expected = spark.createDataFrame(
        [
            (1, 1.0, 0.5, 0.5, 1.0, 0.25),
            (2, 2.0, 1.0, 1.0, 1.0, 0.5),
            (3, 3.0, 2.0, 1.0, 0.5, 0.5),
            (4, 4.0, 2.0, 2.0, 0.0, 0.0),
        ],
        "bin int, rows_targeted double, treated double, control double, uplift double, qini double",
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_nullable=True)


def test_uplift_metrics_per_campaign(spark):
    # Campaign A, 10 rows, scores 1.0 .. 0.1, N_t = N_c = 5, 2 responders in each group:
    ranked = [(1, 1), (0, 0), (1, 1), (0, 0), (1, 0), (0, 0), (1, 0), (0, 1), (1, 0), (0, 1)]
    a = _scored(spark, [(t, y, (10 - i) / 10) for i, (t, y) in enumerate(ranked)], "A")
    # Campaign B, every score tied (no ranking): 4 treated (2 respond), 4 control (1 responds).
    b = _scored(
        spark, [(1, 1, 0.5)] * 2 + [(1, 0, 0.5)] * 2 + [(0, 1, 0.5)] + [(0, 0, 0.5)] * 3, "B"
    )
    got = {
        r.campaign_id: r.asDict()
        for r in metrics.uplift_metrics(
            a.unionByName(b), "treated", "label", "score", by=["campaign_id"]
        ).collect()
    }
    # A, cumulative (n_t n_c r_t r_c) after each row and qini = (r_t - r_c n_t / n_c) / 5:
    #  1 0 1 0 .2 | 1 1 1 0 .2 | 2 1 2 0 .4 | 2 2 2 0 .4 | 3 2 2 0 .4 | 3 3 2 0 .4 |
    #  4 3 2 0 .4 | 4 4 2 1 (2 - 1)/5 = .2 | 5 4 2 1 (2 - 5/4)/5 = .15 | 5 5 2 2 0
    qini = [0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.2, 0.15, 0.0]
    # gain = (r_t/n_t - r_c/n_c) * k/10
    gain = [0.1, 0.2, 0.3, 0.4, 2 / 3 * 0.5, 2 / 3 * 0.6, 0.5 * 0.7, 0.25 * 0.8, 0.15 * 0.9, 0]
    trapezoids = [0.1 * (p + q) / 2 for p, q in zip([0.0, *qini], qini, strict=False)]
    gain_trapezoids = [0.1 * (p + q) / 2 for p, q in zip([0.0, *gain], gain, strict=False)]
    assert sum(trapezoids) == pytest.approx(0.275)  # 0.1 * 2.75
    assert got["A"]["qini_coefficient"] == pytest.approx(0.275)  # ends at 0: area only
    assert got["A"]["auuc"] == pytest.approx(sum(gain_trapezoids))  # 0.24183...
    assert got["A"]["uplift_at_10"] is None  # the top row is treated: no control to compare
    assert got["A"]["uplift_at_20"] == pytest.approx(1.0)  # T y=1 vs C y=0
    assert got["A"]["uplift_at_30"] == pytest.approx(1.0)  # 2/2 vs 0/1
    assert got["A"]["ate"] == pytest.approx(0.0)  # 2/5 - 2/5
    # B: one tied group: the curve is the random line (Qini 0), AUUC = ate / 2, and any
    # top k% holds k% of each group: uplift at k = ate = 2/4 - 1/4.
    assert got["B"]["qini_coefficient"] == pytest.approx(0.0)
    assert got["B"]["auuc"] == pytest.approx(0.125)
    for k in ("uplift_at_10", "uplift_at_20", "uplift_at_30", "ate"):
        assert got["B"][k] == pytest.approx(0.25)
    assert (got["B"]["rows"], got["B"]["treated"], got["B"]["control"]) == (8.0, 4.0, 4.0)


# ------------------------------------------------------------------ training data
def test_training_snapshots_are_before_the_first_attempt():
    snapshots = [D("2026-01-31"), D("2026-02-28"), D("2026-03-31")]
    campaigns = {
        "A": (D("2026-02-10"), D("2026-02-12")),  # -> 01-31
        "B": (D("2026-03-05"), D("2026-03-07")),  # -> 02-28, not 03-31 (after the campaign)
        "SAME_DAY": (D("2026-02-28"), D("2026-03-01")),  # 02-28 already sees day one: 01-31
        "RECENT": (D("2026-03-25"), D("2026-03-27")),  # 03-27 + 14 days > run date
        "EARLY": (D("2026-01-20"), D("2026-01-22")),  # no snapshot before it
    }
    run = D("2026-04-01")
    chosen, skipped = uplift.training_snapshots(
        campaigns, snapshots, run, response_days=14, max_age_days=40
    )
    assert chosen == {"A": D("2026-01-31"), "B": D("2026-02-28"), "SAME_DAY": D("2026-01-31")}
    assert set(skipped) == {"RECENT", "EARLY"}
    assert "outcome not known" in skipped["RECENT"]
    assert "no feature snapshot before" in skipped["EARLY"]
    # a stale snapshot (28 days before SAME_DAY) is refused
    chosen, skipped = uplift.training_snapshots(
        campaigns, snapshots, run, response_days=14, max_age_days=20, wanted=["SAME_DAY", "B"]
    )
    assert chosen == {"B": D("2026-02-28")}
    assert "more than 20 days earlier" in skipped["SAME_DAY"]
    with pytest.raises(MlDataError, match=r"no attempts of \['NOPE'\]"):
        uplift.training_snapshots(
            campaigns, snapshots, run, response_days=14, max_age_days=20, wanted=["NOPE"]
        )


def _attempt(campaign, key, group, no, day, responded):
    ts = None if no == 0 else datetime.combine(D(day), time(10))
    return (
        f"{campaign}-{key}-{no}", campaign, "OFFER", "call", key, f"crm-{key}", group, no, ts,
        D(day), no > 0, "holdout" if no == 0 else "declined", responded,
    )  # fmt: skip


def test_outcomes_join_the_features_of_the_campaign_snapshot(spark):
    contacts = spark.createDataFrame(
        [
            _attempt("C1", "k1", "treatment", 1, "2026-02-10", False),
            _attempt("C1", "k1", "treatment", 2, "2026-02-11", True),  # responded later on
            _attempt("C1", "k2", "control", 0, "2026-02-10", False),
            _attempt("C1", "k3", "treatment", 1, "2026-02-10", True),  # in both groups: out
            _attempt("C1", "k3", "control", 0, "2026-02-10", True),
            _attempt("C1", None, "treatment", 1, "2026-02-10", True),  # no customer key: out
            _attempt("C1", "k9", "treatment", 1, "2026-02-10", True),  # no features then: out
            _attempt("C2", "k1", "control", 0, "2026-03-05", True),
            _attempt("C3", "k1", "treatment", 1, "2026-03-20", True),  # not chosen
        ],
        CAMPAIGN_CONTACTS,
    )
    features = spark.createDataFrame(
        [
            ("k1", D("2026-01-31"), 1.0),
            ("k2", D("2026-01-31"), 2.0),
            ("k1", D("2026-02-28"), 10.0),
            ("k2", D("2026-02-28"), 20.0),
            ("k9", D("2026-02-28"), 90.0),  # a customer since February
        ],
        "customer_key string, snapshot_date date, x double",
    )
    snapshots = {"C1": D("2026-01-31"), "C2": D("2026-02-28")}
    rows = uplift.training_rows(
        uplift.campaign_outcomes(contacts),
        features,
        snapshots,
        key="customer_key",
        snapshot_column="snapshot_date",
    ).select("campaign_id", "customer_key", "snapshot_date", "treated", "label", "x")
    expected = spark.createDataFrame(
        [
            ("C1", "k1", D("2026-01-31"), 1.0, 1.0, 1.0),
            ("C1", "k2", D("2026-01-31"), 0.0, 0.0, 2.0),
            ("C2", "k1", D("2026-02-28"), 0.0, 1.0, 10.0),
        ],
        "campaign_id string, customer_key string, snapshot_date date, treated double, "
        "label double, x double",
    )
    assert_df_equality(rows, expected, ignore_row_order=True, ignore_nullable=True)
    summary = {r.campaign_id: r for r in uplift.campaign_summary(contacts).collect()}
    assert (summary["C1"].first_attempt_date, summary["C1"].last_attempt_date) == (
        D("2026-02-10"),
        D("2026-02-11"),
    )
    assert (summary["C1"].treated, summary["C1"].control, summary["C1"].responders) == (3, 2, 3)


def test_class_transformation_target_and_weights(spark):
    # One campaign, 1 treated and 3 control rows: treated weigh 0.5 / (1/4) = 2,
    # controls 0.5 / (3/4) = 2/3, so each group weighs 2 in all. z = treated responder
    # or control non-responder.
    rows = spark.createDataFrame(
        [("A", 1.0, 1.0), ("A", 0.0, 0.0), ("A", 0.0, 1.0), ("A", 0.0, 0.0)],
        "campaign_id string, treated double, label double",
    )
    got = uplift.with_transformed_target(rows)
    expected = spark.createDataFrame(
        [
            ("A", 1.0, 1.0, 1.0, 2.0),
            ("A", 0.0, 0.0, 1.0, 2 / 3),
            ("A", 0.0, 1.0, 0.0, 2 / 3),
            ("A", 0.0, 0.0, 1.0, 2 / 3),
        ],
        "campaign_id string, treated double, label double, z double, weight double",
    )
    assert_approx_df_equality(got, expected, 1e-9, ignore_row_order=True, ignore_nullable=True)


def test_split_keeps_a_customer_on_one_side(spark):
    rows = spark.createDataFrame(
        [(f"k{i}", c) for i in range(400) for c in ("A", "B")], "customer_key string, c string"
    )
    split = uplift.split_by_customer(rows, key="customer_key", share=0.3, seed=7)
    sides = split.groupBy("customer_key").agg(F.collect_set("is_validation").alias("s"))
    assert sides.where(F.size("s") > 1).count() == 0
    share = split.where("is_validation").count() / split.count()
    assert 0.22 < share < 0.38
    again = uplift.split_by_customer(rows, key="customer_key", share=0.3, seed=7)
    assert_df_equality(split, again, ignore_row_order=True)


def test_uplift_config_is_validated():
    cfg = load_config("test")
    assert cfg.ml.uplift.model_name == cfg.ml.uplift.experiment == "contactlake-uplift"
    assert "uplift" in cfg.ml.score.models
    assert cfg.ml.uplift_scores_table == SCORE_SOURCES["uplift"][0]
    with pytest.raises(ConfigError, match=r"ml\.uplift\.method: Extra inputs are not permitted"):
        load_config("test", ["ml.uplift.method=two_model"])
    with pytest.raises(ConfigError, match=r"ml\.uplift\.methods\.0: Input should be"):
        load_config("test", ["ml.uplift.methods=[three_model]"])
    with pytest.raises(ConfigError, match=r"ml\.uplift\.validation_share"):
        load_config("test", ["ml.uplift.validation_share=1.5"])
    with pytest.raises(ConfigError, match=r"ml\.uplift\.methods: Value error, duplicates"):
        load_config("test", ["ml.uplift.methods=[two_model, two_model]"])


# ------------------------------------------------------------------ jobs
SNAPSHOTS = (D("2026-01-31"), D("2026-02-28"), D("2026-03-31"))
CAMPAIGNS = {"CMP1": D("2026-02-10"), "CMP2": D("2026-03-05")}  # snapshots 01-31, 02-28
RUN_DATE = "2026-04-01"
CUSTOMERS = 200
FEATURES = (
    "customer_key string, snapshot_date date, app_user int, tenure_days int, noise double, "
    "plan string"
)
PLANS = ("basic", "plus", None, "max")  # unrelated to the effect; one-hot, nulls kept
FAST = (
    "ml.uplift.gbt.max_iter=10",
    "ml.uplift.gbt.max_depth=2",
    "ml.uplift.logistic.max_iter=20",
    "ml.uplift.gbt.min_instances_per_node=20",
    "ml.uplift.gbt.subsampling_rate=1.0",
    "ml.uplift.min_group_rows=10",
    "ml.uplift.curve_points=10",
    "ml.uplift.categorical_columns=[plan]",
    "ml.score.models=[uplift]",
)


def _persuadable(i: int) -> bool:
    return i % 4 == 0


def _responds(i: int, c: int, treated: bool) -> bool:
    draw = (i * 7919 + c * 104729 + 13) % 1000 / 1000  # well spread over [0, 1)
    rate = 0.8 if treated and _persuadable(i) else 0.1
    return draw < rate


def _feature_rows():
    return [
        (
            f"k{i:03d}",
            snap,
            int(_persuadable(i)),
            100 + (i * 37) % 500,
            (i * 53 % 97) / 97,
            PLANS[(i // 3) % 4],
        )
        for snap in SNAPSHOTS
        for i in range(CUSTOMERS)
    ]


def _contact_rows():
    rows = []
    for c, (campaign, start) in enumerate(CAMPAIGNS.items()):
        for i in range(CUSTOMERS):
            if (i + c) % 5 == 4:  # 4 in 5 customers are in each campaign
                continue
            treated = (i // 4 + c) % 2 == 0  # half of each group, persuadable or not
            responded = _responds(i, c, treated)
            key = f"k{i:03d}"
            if treated:
                ts = datetime.combine(start, time(10))
                rows.append(
                    (f"{campaign}-{key}-1", campaign, "OFFER", "call", key, f"crm{i}",
                     "treatment", 1, ts, start, True,
                     "accepted" if responded else "declined", responded)
                )  # fmt: skip
            else:
                rows.append(
                    (f"{campaign}-{key}-0", campaign, "OFFER", "call", key, f"crm{i}",
                     "control", 0, None, start, False, "holdout", responded)
                )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("uplift")
    lake = Lake(str(root / "lake"), spark, lock_timeout_s=60)
    lake.write(
        spark.createDataFrame(_feature_rows(), FEATURES),
        "gold/customer_features",
        partition_by=["snapshot_date"],
    )
    lake.write(
        spark.createDataFrame(_contact_rows(), CAMPAIGN_CONTACTS), "silver/campaign_contacts"
    )
    sets = [
        f"lake.root={root / 'lake'}",
        f"landing.root={root / 'landing'}",
        f"truth.root={root / 'truth'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"mlflow.artifact_location={root / 'mlruns'}",
        f"quality.docs_dir={root / 'quality'}",
        *FAST,
    ]

    def argv(*extra: str) -> list[str]:
        return ["--env", "test", "--run-date", RUN_DATE] + [
            a for s in (*sets, *extra) for a in ("--set", s)
        ]

    noise_only = (
        "ml.features.feature_columns=[noise]",
        "ml.uplift.methods=[two_model]",
        "ml.uplift.classifier=logistic",
    )
    codes = {
        "uplift_v1": train_uplift.main(argv(*noise_only), spark=spark),
        "uplift_v2": train_uplift.main(
            argv("ml.uplift.methods=[two_model, class_transformation]"), spark=spark
        ),
        "uplift_v3": train_uplift.main(argv(*noise_only), spark=spark),
        "score": score.main(argv(), spark=spark),
    }
    versions = {"after_first_score": lake.version("gold/uplift_scores")}
    first_scores = lake.read("gold/uplift_scores").collect()
    codes["rescore"] = score.main(argv(), spark=spark)
    versions["after_rescore"] = lake.version("gold/uplift_scores")
    codes["unknown_campaign"] = score.main(argv("ml.uplift.score_campaigns=[CMP9]"), spark=spark)
    codes["no_campaigns"] = train_uplift.main(
        argv("ml.uplift.max_snapshot_age_days=1"), spark=spark
    )
    return {
        "codes": codes,
        "lake": lake,
        "client": MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"),
        "versions": versions,
        "first_scores": first_scores,
    }


def test_jobs_exit_codes(scenario):
    codes = dict(scenario["codes"])
    assert codes.pop("unknown_campaign") == 1  # the champion never saw CMP9
    assert codes.pop("no_campaigns") == 1  # no snapshot within 1 day before any campaign
    assert codes == {k: 0 for k in codes}


def test_runs_log_metrics_charts_inputs_and_point_in_time_snapshots(scenario):
    client = scenario["client"]
    parents, children = parent_and_child_runs(client, "contactlake-uplift")
    assert len(parents) == 3
    full = parents[1]
    nested = {r.data.tags["mlflow.runName"]: r for r in children[full.info.run_id]}
    assert set(nested) == {"two_model", "class_transformation"}
    for run in (full, *nested.values()):
        assert set(metrics.UPLIFT_METRIC_NAMES) <= set(run.data.metrics)
        assert {f"qini_coefficient.{c}" for c in CAMPAIGNS} <= set(run.data.metrics)
        charts = {f.path for f in client.list_artifacts(run.info.run_id, "charts")}
        assert {"charts/qini.png", "charts/uplift_deciles.png"} <= charts
    roles = {
        "two_model": {"treated", "control"},
        "class_transformation": {"transformed"},
    }
    for method, run in nested.items():
        charts = {f.path for f in client.list_artifacts(run.info.run_id, "charts")}
        assert {f"charts/feature_importance_{r}.png" for r in roles[method]} <= charts
    params, m = full.data.params, full.data.metrics
    # features from the snapshot before each campaign's first attempt, none from after
    assert (params["snapshot.CMP1"], params["snapshot.CMP2"]) == ("2026-01-31", "2026-02-28")
    assert params["input.gold/customer_features"].endswith("gold/customer_features@v0")
    assert params["input.silver/campaign_contacts"].endswith("silver/campaign_contacts@v0")
    assert len(full.data.tags["git_commit"]) == 40
    assert m["rows_train"] + m["rows_validation"] == 2 * 160
    assert m["treated_train"] + m["control_train"] == m["rows_train"]
    assert 0.2 < m["rows_validation"] / (2 * 160) < 0.4
    # the planted group: a clear positive Qini on the held-out customers
    assert m["qini_coefficient"] > 0.03
    assert params["method"] in nested


def test_challenger_is_promoted_only_when_better(scenario):
    client = scenario["client"]
    (v1, v2, v3), _ = parent_and_child_runs(client, "contactlake-uplift")
    assert [r.data.tags["model_version"] for r in (v1, v2, v3)] == ["1", "2", "3"]
    assert [r.data.tags["promoted"] for r in (v1, v2, v3)] == ["true", "true", "false"]
    assert v1.data.tags["promotion_reason"] == "first model"
    metric = "qini_coefficient"
    assert v2.data.metrics[f"champion_{metric}"] == pytest.approx(v1.data.metrics[metric])
    assert v2.data.metrics[f"challenger_{metric}"] > v2.data.metrics[f"champion_{metric}"]
    assert v3.data.metrics[f"champion_{metric}"] == pytest.approx(v2.data.metrics[metric])
    assert v3.data.metrics[f"challenger_{metric}"] < v3.data.metrics[f"champion_{metric}"]
    name = "contactlake-uplift"
    assert int(client.get_model_version_by_alias(name, "champion").version) == 2
    assert int(client.get_model_version_by_alias(name, "challenger").version) == 3


def test_scores_follow_the_contract_and_rescoring_replaces(spark, scenario):
    lake, versions = scenario["lake"], scenario["versions"]
    assert versions["after_rescore"] == versions["after_first_score"] + 1  # one replace commit
    table = lake.read("gold/uplift_scores")
    contract = spark.createDataFrame([], SCORE_SOURCES["uplift"][1]).schema
    assert_df_equality(table.limit(0), spark.createDataFrame([], contract), ignore_nullable=True)
    rows = table.collect()
    # every customer of the latest snapshot <= run date, once per campaign of the model
    assert len(rows) == CUSTOMERS * len(CAMPAIGNS)
    assert len({(r.customer_key, r.campaign_id) for r in rows}) == len(rows)
    assert {(r.snapshot_date, r.model_name, r.model_version) for r in rows} == {
        (SNAPSHOTS[-1], "contactlake-uplift", "2")
    }
    assert sorted(rows) == sorted(scenario["first_scores"])  # the re-run wrote the same rows


def test_the_planted_group_is_ranked_first(scenario):
    rows = scenario["lake"].read("gold/uplift_scores").collect()
    for campaign in CAMPAIGNS:
        ranked = sorted((r for r in rows if r.campaign_id == campaign), key=lambda r: -r.uplift)
        planted = [_persuadable(int(r.customer_key[1:])) for r in ranked]
        quarter = len(ranked) // 4  # the size of the planted group
        # the top quarter is (almost) the planted group; 220 training rows and noise
        # features (tenure, noise, plan) leave a little noise in the estimates
        assert sum(planted[:quarter]) >= 0.9 * quarter, campaign
        persuadable = [r.uplift for r, p in zip(ranked, planted, strict=True) if p]
        others = [r.uplift for r, p in zip(ranked, planted, strict=True) if not p]
        # and the estimates are about right: +0.7 for the planted group, 0 for the others
        assert sum(persuadable) / len(persuadable) > 0.4, campaign
        assert abs(sum(others) / len(others)) < 0.15, campaign
