"""jobs.train_segments, jobs.train_churn and jobs.score against a real MLflow sqlite store.

One scenario (module fixture) on a hand-built feature table of 90 customers in 3 clearly
separated groups and 2 snapshots:
  segments: 3 of the columns (tenure as ln(1 + days)), k in 2..4, the model registered and
  champion, assignments written;
  churn v1 on a noise feature only (first model: champion), v2 on every feature (better:
  champion), v3 on noise again (worse: stays challenger);
  score twice for the same date (replaces, never duplicates).
"""

from __future__ import annotations

from datetime import date

import pytest
from mlflow import MlflowClient

from contactlake.lake import Lake
from contactlake.ml.metrics import METRIC_NAMES
from contactlake.schemas import SUBSCRIPTIONS
from jobs import score, train_churn, train_segments

TRAIN_SNAP, VALID_SNAP = date(2026, 1, 31), date(2026, 3, 2)  # 30 days apart
RUN_DATE = "2026-04-01"  # = VALID_SNAP + 30 days: validation outcomes are known
GROUPS = ("heavy", "loyal", "digital")  # customers 0-29, 30-59, 60-89
TRAIN_CHURNERS = range(0, 10)  # leave 2026-02-10, within 30 days of TRAIN_SNAP
VALID_CHURNERS = range(10, 20)  # leave 2026-03-12, within 30 days of VALID_SNAP
FEATURES = (
    "customer_key string, snapshot_date date, voice_contacts_30d int, tenure_days int, "
    "app_sessions_30d double, complaints_90d long, noise double"
)
SEGMENT_FEATURES = "[voice_contacts_30d, tenure_days, app_sessions_30d]"
FAST = (
    "ml.segments.k_values=[2, 3, 4]",
    "ml.segments.max_iter=5",
    "ml.segments.restarts=2",
    "ml.churn.logistic.max_iter=10",
    "ml.churn.gbt.max_iter=[5]",
    "ml.churn.gbt.max_depth=[2]",
    "ml.score.models=[churn, segments]",  # no uplift model in this scenario (test_uplift)
)


def _feature_rows():
    base = {"heavy": (11, 150, 2.0), "loyal": (0, 2200, 5.0), "digital": (2, 900, 35.0)}
    rows = []
    for snap, churners, days in ((TRAIN_SNAP, TRAIN_CHURNERS, 0), (VALID_SNAP, VALID_CHURNERS, 30)):
        for i in range(90):
            voice, tenure, app = base[GROUPS[i // 30]]
            # the churn signal: complaints; some quiet customers have none recorded (null)
            complaints = 3 if i in churners else (None if i >= 30 and i % 7 == 0 else 0)
            rows.append(
                (
                    f"c{i:02d}",
                    snap,
                    voice + i % 3,
                    tenure + 7 * (i % 5) + days,
                    app + i % 4,
                    complaints,
                    (i * 37 % 11) / 10,  # no relation to churn
                )
            )
    return rows


def _subscription_rows():
    rows = []
    for i in range(90):
        end = None
        if i in TRAIN_CHURNERS:
            end = date(2026, 2, 10)
        elif i in VALID_CHURNERS:
            end = date(2026, 3, 12)
        rows.append(
            (f"c{i:02d}", f"crm{i}", f"acc{i}", "basic", 30.0, date(2024, 1, 1), end,
             end is not None, f"r{i}", None)
        )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def scenario(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    lake = Lake(str(root / "lake"), spark, lock_timeout_s=60)
    features = spark.createDataFrame(_feature_rows(), FEATURES)
    lake.write(features, "gold/customer_features", partition_by=["snapshot_date"])
    lake.write(spark.createDataFrame(_subscription_rows(), SUBSCRIPTIONS), "silver/subscriptions")
    sets = [
        f"lake.root={root / 'lake'}",
        f"landing.root={root / 'landing'}",
        f"truth.root={root / 'truth'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlflow.db'}",
        f"mlflow.artifact_location={root / 'mlruns'}",
        f"quality.docs_dir={root / 'quality'}",
        # the shipped churn feature list names gold/customer_features columns: this table
        # has others, so ml.features.feature_columns (or every numeric column) applies
        "ml.churn.feature_columns=[]",
        *FAST,
    ]

    def argv(*extra: str) -> list[str]:
        return ["--env", "test", "--run-date", RUN_DATE] + [
            a for s in (*sets, *extra) for a in ("--set", s)
        ]

    noise_only = (
        "ml.features.feature_columns=[noise]",
        "ml.churn.models=[logistic]",
        "ml.churn.logistic.reg_param=[0.0]",
    )
    codes = {
        "segments": train_segments.main(
            argv(
                f"ml.segments.feature_columns={SEGMENT_FEATURES}",
                "ml.segments.log_columns=[tenure_days]",
            ),
            spark=spark,
        ),
        "churn_v1": train_churn.main(argv(*noise_only), spark=spark),
        # every feature; a 2-point logistic grid exercises the TrainValidationSplit
        "churn_v2": train_churn.main(argv("ml.churn.logistic.reg_param=[0.0, 0.01]"), spark=spark),
        "churn_v3": train_churn.main(argv(*noise_only), spark=spark),
        "score": score.main(argv(), spark=spark),
    }
    versions = {"after_first_score": lake.version("gold/churn_scores")}
    codes["rescore"] = score.main(argv(), spark=spark)
    codes["no_champion"] = score.main(argv("ml.churn.model_name=never-trained"), spark=spark)
    versions["after_rescore"] = lake.version("gold/churn_scores")
    return {
        "codes": codes,
        "lake": lake,
        "client": MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"),
        "versions": versions,
    }


def parent_and_child_runs(client, experiment: str):
    """The experiment's parent runs, oldest first, and the nested runs of each."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {
        p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
        for p in parents
    }
    return parents, children


def _artifacts(client, run_id: str, folder: str) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, folder)}


def test_jobs_exit_codes(scenario):
    codes = scenario["codes"]
    assert codes.pop("no_champion") == 1  # no models:/never-trained@champion: fails clearly
    assert codes == {k: 0 for k in codes}


def test_segments_run_nested_k_and_registered_champion(scenario):
    client = scenario["client"]
    parents, children = parent_and_child_runs(client, "contactlake-segments")
    assert len(parents) == 1
    parent = parents[0]
    nested = children[parent.info.run_id]
    by_k = {int(r.data.params["k"]): r.data.metrics["silhouette"] for r in nested}
    assert sorted(by_k) == [2, 3, 4]
    for run in nested:  # each k keeps the better of its two starts (seeds 7 and 8)
        starts = {
            m.step: m.value
            for m in client.get_metric_history(run.info.run_id, "silhouette_by_seed")
        }
        assert sorted(starts) == [7, 8]
        assert run.data.metrics["silhouette"] == max(starts.values())
        assert starts[int(run.data.params["seed"])] == max(starts.values())
    # three well separated groups: k=3 has the best silhouette and is chosen
    assert max(by_k, key=by_k.get) == 3
    assert parent.data.params["k"] == "3"
    assert parent.data.params["features"] == "voice_contacts_30d,tenure_days,app_sessions_30d"
    assert parent.data.params["log_columns"] == "tenure_days"
    assert parent.data.metrics["silhouette"] == pytest.approx(by_k[3])
    assert _artifacts(client, parent.info.run_id, "charts") == {
        "charts/silhouette.png",
        "charts/segment_profile.png",
    }
    assert {"segments/profile.csv", "segments/profile.json"} <= _artifacts(
        client, parent.info.run_id, "segments"
    )
    champion = client.get_model_version_by_alias("contactlake-segments", "champion")
    assert (int(champion.version), champion.run_id) == (1, parent.info.run_id)
    assert parent.data.tags["promotion_reason"] == "first model"


def test_segments_table_recovers_the_groups(scenario):
    rows = scenario["lake"].read("gold/segments").collect()
    assert len(rows) == 90
    assert {(r.snapshot_date, r.model_name, r.model_version) for r in rows} == {
        (VALID_SNAP, "contactlake-segments", "1")
    }
    segment_of = {r.customer_key: r.segment_id for r in rows}
    name_of = {r.segment_id: r.segment_name for r in rows}
    group_segments = [
        {segment_of[f"c{i:02d}"] for i in range(g * 30, g * 30 + 30)} for g in range(3)
    ]
    assert all(len(s) == 1 for s in group_segments)
    assert len(set.union(*group_segments)) == 3
    heavy, loyal, digital = (next(iter(s)) for s in group_segments)
    # names from the 2 most distinctive features against the population
    assert name_of[loyal].startswith("high tenure_days")
    assert "high voice_contacts_30d" in name_of[heavy]
    assert name_of[digital].startswith("high app_sessions_30d")


def test_churn_runs_log_stable_metrics_charts_and_inputs(scenario):
    client = scenario["client"]
    parents, children = parent_and_child_runs(client, "contactlake-churn")
    assert len(parents) == 3
    full = parents[1]
    nested = {r.data.tags["mlflow.runName"]: r for r in children[full.info.run_id]}
    assert set(nested) == {"logistic_regression", "gradient_boosted_trees"}
    for run in (full, *nested.values()):
        assert set(METRIC_NAMES) <= set(run.data.metrics)
        assert _artifacts(client, run.info.run_id, "charts") == {
            f"charts/{c}.png" for c in ("roc", "pr", "lift", "calibration", "feature_importance")
        }
    metrics, params = full.data.metrics, full.data.params
    assert metrics["roc_auc"] >= 0.95  # complaints separate the churners
    assert (metrics["rows_train"], metrics["positives_train"]) == (90, 10)
    # the 10 customers who left in February are not active at the validation snapshot
    assert (metrics["rows_validation"], metrics["positives_validation"]) == (80, 10)
    assert (params["train_snapshot"], params["validation_snapshot"]) == (
        str(TRAIN_SNAP),
        str(VALID_SNAP),
    )
    assert params["input.gold/customer_features"].endswith("gold/customer_features@v0")
    assert params["input.silver/subscriptions"].endswith("silver/subscriptions@v0")
    assert params["positive_weight"] == "8.0"  # 80 negatives / 10 positives
    assert len(full.data.tags["git_commit"]) == 40
    assert "tuning_roc_auc" in nested["logistic_regression"].data.metrics  # 2-point grid


def test_challenger_is_promoted_only_when_better(scenario):
    client = scenario["client"]
    (v1, v2, v3), _ = parent_and_child_runs(client, "contactlake-churn")
    assert [r.data.tags["model_version"] for r in (v1, v2, v3)] == ["1", "2", "3"]
    assert [r.data.tags["promoted"] for r in (v1, v2, v3)] == ["true", "true", "false"]
    assert v1.data.tags["promotion_reason"] == "first model"
    # v2 (every feature) against the noise-only champion v1, both on the validation snapshot
    assert v2.data.metrics["champion_roc_auc"] < v2.data.metrics["challenger_roc_auc"]
    assert v2.data.metrics["champion_roc_auc"] == pytest.approx(v1.data.metrics["roc_auc"])
    # v3 (noise again) against the champion v2
    assert v3.data.metrics["champion_roc_auc"] == pytest.approx(v2.data.metrics["roc_auc"])
    assert v3.data.metrics["challenger_roc_auc"] < v3.data.metrics["champion_roc_auc"]
    assert v3.data.tags["previous_champion_version"] == "2"
    name = "contactlake-churn"
    assert int(client.get_model_version_by_alias(name, "champion").version) == 2
    assert int(client.get_model_version_by_alias(name, "challenger").version) == 3
    assert client.get_model_version(name, "3").tags["promoted"] == "false"


def test_scores_carry_the_champion_and_rescoring_replaces(scenario):
    lake, versions = scenario["lake"], scenario["versions"]
    assert versions["after_rescore"] == versions["after_first_score"] + 1  # replaced, one commit
    rows = lake.read("gold/churn_scores").collect()
    assert len(rows) == 90
    assert len({r.customer_key for r in rows}) == 90
    assert {(r.snapshot_date, r.model_name, r.model_version) for r in rows} == {
        (VALID_SNAP, "contactlake-churn", "2")
    }
    prob = {r.customer_key: r.churn_probability for r in rows}
    assert all(0.0 <= p <= 1.0 for p in prob.values())
    churners = [prob[f"c{i:02d}"] for i in VALID_CHURNERS]
    stayers = [prob[f"c{i:02d}"] for i in range(20, 90)]
    assert min(churners) > max(stayers)
    segments = lake.read("gold/segments").collect()
    assert len(segments) == 90
    assert {r.model_version for r in segments} == {"1"}
