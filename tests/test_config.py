"""Configuration loading, overlays, overrides and validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from contactlake.config import ConfigError, apply_override, load_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_env_overlay_and_set_overrides():
    cfg = load_config("test", ["spark.shuffle_partitions=3", "lake.root=/tmp/elsewhere"], CONF)
    assert cfg.env == "test"
    assert cfg.spark.master == "local[2]"  # from test.yaml
    assert cfg.spark.shuffle_partitions == 3  # from --set, parsed as an int
    assert cfg.lake.root == "/tmp/elsewhere"
    assert cfg.lake.vacuum_retention_hours == 168  # from base.yaml


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config("local", ["lake.root=./here"], CONF)
    assert cfg.lake.root == str(tmp_path / "here")
    assert (
        load_config("local", ["lake.root=s3://bucket/lake"], CONF).lake.root == "s3://bucket/lake"
    )


def test_cluster_leaves_master_to_spark_submit():
    assert load_config("cluster", [], CONF).spark.master is None


def test_spark_conf_values_become_strings():
    cfg = load_config("test", ["spark.conf.spark.ui.enabled=false"], CONF)
    assert cfg.spark.conf["spark.ui.enabled"] == "false"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lake.rot=/x", r"lake\.rot: Extra inputs are not permitted"),
        (
            "spark.shuffle_partitions=0",
            r"spark\.shuffle_partitions: Input should be greater than 0",
        ),
        (
            "spark.shuffle_partitions=many",
            r"spark\.shuffle_partitions: Input should be a valid integer",
        ),
        ("spark.log_level=LOUD", r"spark\.log_level: String should match pattern"),
        ("spark.jvm_options=[Xmx2g]", r"spark\.jvm_options\.0: String should match pattern"),
        ("nonsense.key=1", r"nonsense: Extra inputs are not permitted"),
    ],
)
def test_bad_keys_and_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("test", [override], CONF)


def test_bad_override_syntax_and_unknown_env():
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config("test", ["no-equals-sign"], CONF)
    with pytest.raises(ConfigError, match="unknown env 'prod'"):
        load_config("prod", [], CONF)


def test_broken_yaml_names_the_file(tmp_path):
    (tmp_path / "base.yaml").write_text("lake: [unclosed\n")
    (tmp_path / "local.yaml").write_text("{}\n")
    with pytest.raises(ConfigError, match="base.yaml: not valid YAML"):
        load_config("local", [], tmp_path)


def test_apply_override_builds_nested_keys():
    assert apply_override({"a": {"b": 1, "c": 2}}, "a.b=[1, 2]") == {"a": {"b": [1, 2], "c": 2}}


def test_set_spark_conf_takes_a_dotted_spark_key():
    cfg = load_config("test", ["spark.conf.spark.eventLog.enabled=true"], CONF)
    assert cfg.spark.conf == {
        "spark.ui.enabled": "false",  # conf/test.yaml's entries are kept
        "spark.sql.adaptive.enabled": "true",
        "spark.eventLog.enabled": "true",
    }


def test_pipeline_jobs_must_exist():
    with pytest.raises(ConfigError, match=r"pipeline\.jobs: Value error, no job module jobs\.nope"):
        load_config("test", ["pipeline.jobs=[maintain, nope]"], CONF)


def test_segment_features_and_log_columns():
    cfg = load_config("test", [], CONF).ml.segments
    assert cfg.log_columns and set(cfg.log_columns) <= set(cfg.feature_columns)
    # no features listed: the log columns are checked against the table when the job runs
    cfg = load_config(
        "test", ["ml.segments.feature_columns=[]", "ml.segments.log_columns=[calls]"], CONF
    ).ml.segments
    assert (cfg.feature_columns, cfg.log_columns) == ([], ["calls"])
    with pytest.raises(
        ConfigError,
        match=r"ml\.segments\.log_columns: Value error, \['x'\] are not in ml\.segments\."
        r"feature_columns",
    ):
        load_config(
            "test", ["ml.segments.feature_columns=[a, b]", "ml.segments.log_columns=[a, x]"], CONF
        )
    with pytest.raises(
        ConfigError, match=r"ml\.segments\.feature_columns: Value error, listed twice: \['a'\]"
    ):
        load_config("test", ["ml.segments.feature_columns=[a, b, a]"], CONF)
    with pytest.raises(ConfigError, match=r"ml\.segments\.k_values: Value error, listed twice"):
        load_config("test", ["ml.segments.k_values=[6, 6]"], CONF)
    with pytest.raises(ConfigError, match=r"features\.long_wait_s: Input should be greater than 0"):
        load_config("test", ["features.long_wait_s=0"], CONF)
    with pytest.raises(ConfigError, match=r"ml\.churn\.feature_columns: Value error, listed twice"):
        load_config("test", ["ml.churn.feature_columns=[age, age]"], CONF)
