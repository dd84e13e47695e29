"""Configuration: conf/base.yaml + conf/<env>.yaml + --set overrides, validated by pydantic.

Every section is a pydantic model with ``extra="forbid"``, so a misspelt key stops the job
with a message naming it (``ConfigError: lake.rot: Extra inputs are not permitted``).
Later capabilities add their own section models here.
"""

from __future__ import annotations

import importlib.util
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from contactlake.generate.config import GenerateConfig

ENVS = ("local", "test", "cluster")


class ConfigError(ValueError):
    """Raised for a missing file, a bad --set, or a key/value the schema rejects."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute(value: str) -> str:
    """Local paths become absolute (jobs may chdir); URIs (scheme://) are kept."""
    if "://" in value:
        return value
    return str(Path(value).expanduser().resolve())


StoragePath = Annotated[str, AfterValidator(_absolute)]


class LakeConfig(_Section):
    root: StoragePath
    lock_timeout_s: float = Field(gt=0)
    vacuum_retention_hours: int = Field(ge=0)
    optimize_target_mb: int = Field(gt=0)
    stats_max_string_length: int = Field(gt=0)


class PathConfig(_Section):
    root: StoragePath


class SparkConfig(_Section):
    master: str | None
    app_name: str
    shuffle_partitions: int = Field(gt=0)
    driver_memory: str = Field(pattern=r"^\d+[kmgt]$")
    log_level: str = Field(pattern=r"^(ALL|DEBUG|INFO|WARN|ERROR|FATAL|OFF)$")
    jvm_options: list[Annotated[str, Field(pattern=r"^-\S+$")]]
    conf: dict[str, str]

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        # YAML turns "false"/"8" into bool/int; Spark wants strings.
        if isinstance(v, dict):
            return {str(k): str(x).lower() if isinstance(x, bool) else str(x) for k, x in v.items()}
        return v


class MlflowConfig(_Section):
    tracking_uri: str
    artifact_location: StoragePath | None


class PipelineConfig(_Section):
    jobs: list[str] = Field(min_length=1)
    default_run_date: date | None  # used when --run-date is not given; null means today (UTC)

    @field_validator("jobs")
    @classmethod
    def _jobs_exist(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if importlib.util.find_spec(f"jobs.{n}") is None]
        if unknown:
            raise ValueError(f"no job module jobs.{unknown[0]} (unknown jobs: {unknown})")
        return names


class IngestConfig(_Section):
    # Sources to ingest (names of conf/sources/*.yaml); empty means all of them.
    sources: list[str]
    # Date folders from run date - lookback_days to the run date are scanned for new files.
    lookback_days: int = Field(ge=0)


class UnifyConfig(_Section):
    phone_region: str = Field(pattern=r"^[A-Z]{2}$")  # country of numbers without a prefix
    max_duration_s: int = Field(gt=0)  # longer contacts are quarantined as ABSURD_DURATION
    duplicate_tolerance_s: int = Field(ge=0)  # same call from two systems: starts this close
    hub_max_customers: int = Field(gt=0)  # an identifier of more customers is a hub


class QualityConfig(_Section):
    docs_dir: StoragePath  # Great Expectations project and Data Docs site
    failure_examples: int = Field(ge=0)  # unexpected values shown per failed check


class ReportConfig(_Section):
    """jobs.report: the run report, one self-contained HTML page per run date."""

    dir: StoragePath  # the page of run date D is <dir>/<D>/index.html
    title: str = Field(min_length=1)
    trend_days: int = Field(gt=0)  # trends over the N days ending on the run date
    # KPI ids drawn as trends, in order; empty = every catalog KPI with an "all" value
    # (but the channel KPIs, drawn in their own section); checked against the catalog by the job
    kpis: list[str]
    alerts_listed: int = Field(ge=0)  # rows of the run date's alert table
    lorenz_compare_days: int = Field(ge=0)  # compare the Lorenz curve with N days before; 0: no
    segment_features: int = Field(gt=0)  # features in the segment profile heat map
    score_bins: int = Field(ge=2)  # churn score histogram bins over [0, 1]
    roc_decimals: int = Field(ge=1, le=6)  # realised ROC/PR: scores rounded to this many decimals

    @field_validator("kpis")
    @classmethod
    def _unique_kpis(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"KPI ids listed twice: {v}")
        return v


class KpisConfig(_Section):
    """jobs.kpis (owned by the KPI work; KPI definitions and targets live in conf/kpis/)."""

    repeat_window_days: int = Field(gt=0)  # a contact followed by another within N days
    # FCR when a contact's `resolved` is unknown (voice CTI never reports it): "resolved"
    # (no repeat is the evidence), "unresolved", or "excluded" from the FCR base
    fcr_unknown_resolved: str = Field(pattern=r"^(resolved|unresolved|excluded)$")
    # contacts of the KPIs that follow a customer (repeat, FCR, concentration, shift):
    # "crm" (customer_key of a CRM customer) or "any_key" (any key, device-only ones too)
    customer_base: str = Field(pattern=r"^(crm|any_key)$")
    short_abandon_s: float = Field(ge=0)  # abandons after a shorter wait are not counted
    service_level_s: float = Field(gt=0)  # answered within T seconds
    concentration_window_days: int = Field(gt=0)  # trailing window of the concentration KPI
    concentration_channels: list[str] = Field(min_length=1)  # contacts counted ("calls")
    concentration_top_shares: list[float] = Field(min_length=1)  # e.g. 0.14: top 14%
    lorenz_points: int = Field(gt=0)  # Lorenz curve points at 1/n, 2/n, ... 1
    shift_window_days: int = Field(gt=0)  # hotline -> digital (and back) within N days
    hotline_channels: list[str] = Field(min_length=1)
    digital_channels: list[str] = Field(min_length=1)
    region_attribute: str = Field(min_length=1)  # silver/customers column used as region
    alert_history_days: int = Field(gt=0)  # trailing kpi_daily history for anomalies
    alert_min_history: int = Field(ge=2)  # fewer complete history points: no anomaly test
    alert_z: float = Field(gt=0)  # anomaly when |value - mean| > z * standard deviation
    alert_min_denominator: float = Field(ge=0)  # smaller groups raise no alert (noise)

    @field_validator("concentration_top_shares")
    @classmethod
    def _shares(cls, shares: list[float]) -> list[float]:
        bad = [s for s in shares if not 0 < s < 1]
        if bad:
            raise ValueError(f"top shares must be between 0 and 1 (exclusive), got {bad}")
        return shares

    @field_validator("digital_channels")
    @classmethod
    def _disjoint(cls, digital: list[str], info) -> list[str]:
        both = sorted(set(digital) & set(info.data.get("hotline_channels") or []))
        if both:
            raise ValueError(f"channels {both} are both hotline and digital")
        return digital


class FeaturesConfig(_Section):
    """jobs.features."""

    windows_days: list[int] = Field(min_length=1)  # contact counts/durations over these windows
    channels: list[str] = Field(min_length=1)  # one count/duration column pair per channel
    digital_channels: list[str]  # contacts on these count as digital (adoption share)
    repeat_window_days: int = Field(gt=0)  # a contact followed by another this soon is a repeat
    experience_days: int = Field(gt=0)  # waits, abandons, complaints, surveys, campaigns
    long_wait_s: float = Field(gt=0)  # a contact waiting longer in queue is a long wait
    revenue_months: int = Field(gt=0)  # revenue = bills of the last N months
    rfm_days: int = Field(gt=0)  # RFM frequency/monetary over payments of the last N days
    abc_shares: list[float] = Field(min_length=3, max_length=3)  # revenue shares of A, B, C
    lookback_days: int = Field(gt=0)  # contacts older than this are not read
    # earlier snapshots to compute as well when the table lacks them (model training needs
    # a train and a validation snapshot); the run date's snapshot is always computed
    extra_snapshots: list[date]

    @field_validator("windows_days")
    @classmethod
    def _positive_unique(cls, v: list[int]) -> list[int]:
        if any(d <= 0 for d in v) or len(set(v)) != len(v):
            raise ValueError(f"windows must be distinct positive day counts, got {v}")
        return sorted(v)

    @field_validator("channels")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not c.isidentifier() or c != c.lower()]
        if bad or len(set(v)) != len(v):
            raise ValueError(f"channels must be distinct lower-case identifiers, got {v}")
        return v

    @field_validator("abc_shares")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v) or abs(sum(v) - 1.0) > 1e-9:
            raise ValueError(f"A/B/C shares must be positive and sum to 1, got {v}")
        return v

    @field_validator("digital_channels")
    @classmethod
    def _digital_known(cls, v: list[str], info) -> list[str]:
        unknown = [c for c in v if c not in info.data.get("channels", v)]
        if unknown:
            raise ValueError(f"{unknown} are not in features.channels")
        return v

    @field_validator("lookback_days")
    @classmethod
    def _covers_windows(cls, v: int, info) -> int:
        longest = max([*info.data.get("windows_days", []), info.data.get("experience_days", 0)])
        if v < longest:
            raise ValueError(f"must cover the longest window ({longest} days), got {v}")
        return v


class TagsConfig(_Section):
    """jobs.tags (the tag catalog lives in conf/tags/)."""

    catalog_dir: str  # folder of tag YAML files; relative paths are under the conf folder


class MlFeaturesConfig(_Section):
    """The feature table the models train on and score (any table with a key and snapshots)."""

    table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    key: str
    snapshot_column: str
    feature_columns: list[str]  # empty: every numeric column but key, snapshot and label
    exclude_columns: list[str]  # never used as features (ids, leaky columns)


class MlSegmentsConfig(_Section):
    model_name: str  # registered model
    experiment: str
    algorithm: Literal["kmeans", "bisecting_kmeans", "gaussian_mixture"]
    # the columns segments are built on; empty: ml.features.feature_columns (and when that
    # is empty too, every numeric column of the feature table)
    feature_columns: list[str]
    # features clustered as ln(1 + x) (heavy-tailed counts, amounts, durations); must be
    # among feature_columns when those are listed
    log_columns: list[str]
    k_values: list[int] = Field(min_length=1)  # candidates; the best silhouette wins
    max_iter: int = Field(gt=0)
    seed: int
    # fits per k from seeds seed, seed+1, ...; the best silhouette is that k's model
    # (k-means only finds a local optimum, and one bad start can cost a k its place)
    restarts: int = Field(gt=0)
    impute_strategy: Literal["mean", "median"]
    name_features: int = Field(gt=0)  # a segment's name lists its most distinctive features
    promote_metric: Literal["silhouette"]

    @field_validator("feature_columns", "log_columns", "k_values")
    @classmethod
    def _no_duplicates(cls, v: list) -> list:
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise ValueError(f"listed twice: {twice}")
        return v

    @field_validator("log_columns")
    @classmethod
    def _logs_are_features(cls, logs: list[str], info) -> list[str]:
        features = info.data.get("feature_columns") or []
        unknown = [c for c in logs if c not in features]
        if features and unknown:
            raise ValueError(f"{unknown} are not in ml.segments.feature_columns")
        return logs

    @field_validator("k_values")
    @classmethod
    def _k_at_least_two(cls, ks: list[int]) -> list[int]:
        if min(ks) < 2:
            raise ValueError(f"every k must be at least 2, got {ks}")
        return ks


class MlLogisticConfig(_Section):
    max_iter: int = Field(gt=0)
    reg_param: list[float] = Field(min_length=1)  # grid, tuned by the validation split
    elastic_net_param: list[float] = Field(min_length=1)


class MlGbtConfig(_Section):
    max_iter: list[int] = Field(min_length=1)  # grids, tuned by the validation split
    max_depth: list[int] = Field(min_length=1)
    step_size: list[float] = Field(min_length=1)


class MlChurnConfig(_Section):
    model_name: str  # registered model
    experiment: str
    horizon_days: int = Field(gt=0)  # churn = a cancelled period ends within this after snapshot
    label_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")  # subscriptions (label source)
    label_column: str | None  # a 0/1 column of the feature table; null = build from label_table
    # the columns the models learn from; empty: ml.features.feature_columns (and when that
    # is empty too, every numeric column of the feature table)
    feature_columns: list[str]
    active_only: bool  # built labels: only customers with an active subscription at snapshot
    train_snapshot: date | None  # null: validation snapshot - horizon_days (or the latest before)
    validation_snapshot: date | None  # null: latest snapshot <= run date - horizon_days
    class_weight: Literal["balanced", "none"]
    tuning_train_ratio: float = Field(gt=0, lt=1)  # TrainValidationSplit inside the train snapshot
    seed: int
    models: list[Literal["logistic", "gbt"]] = Field(min_length=1)
    logistic: MlLogisticConfig
    gbt: MlGbtConfig
    calibration_bins: int = Field(gt=1)
    promote_metric: Literal["roc_auc", "pr_auc", "lift_top_decile", "brier"]

    @field_validator("feature_columns")
    @classmethod
    def _no_duplicates(cls, v: list[str]) -> list[str]:
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise ValueError(f"listed twice: {twice}")
        return v


class MlUpliftGbtConfig(_Section):
    max_iter: int = Field(gt=0)
    max_depth: int = Field(gt=0)
    step_size: float = Field(gt=0, le=1)
    min_instances_per_node: int = Field(gt=0)
    subsampling_rate: float = Field(gt=0, le=1)


class MlUpliftLogisticConfig(_Section):
    max_iter: int = Field(gt=0)
    reg_param: float = Field(ge=0)
    elastic_net_param: float = Field(ge=0, le=1)


class MlUpliftConfig(_Section):
    """jobs.train_uplift (and the uplift scores of jobs.score)."""

    model_name: str  # registered model
    experiment: str
    campaigns_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")  # attempts and holdouts
    campaigns: list[str]  # train on these; empty = every campaign usable by the rules below
    # a campaign is used once its outcome is known: last attempt + response_days <= run date
    response_days: int = Field(ge=0)
    # features: the latest snapshot before the first attempt, at most this many days before it
    max_snapshot_age_days: int = Field(gt=0)
    methods: list[Literal["two_model", "class_transformation"]] = Field(min_length=1)
    # string columns of the feature table one-hot encoded as inputs (numeric ones come from
    # ml.features); the campaign id always is
    categorical_columns: list[str]
    classifier: Literal["gbt", "logistic"]
    gbt: MlUpliftGbtConfig
    logistic: MlUpliftLogisticConfig
    validation_share: float = Field(gt=0, lt=1)  # customers held out (all their campaigns)
    min_group_rows: int = Field(ge=1)  # treated and control rows a campaign needs per side
    seed: int
    curve_points: int = Field(ge=2)  # points of the logged Qini curves
    promote_metric: Literal[
        "qini_coefficient", "auuc", "uplift_at_10", "uplift_at_20", "uplift_at_30"
    ]
    score_campaigns: list[str]  # jobs.score: campaigns scored; empty = all the model knows

    @field_validator("methods", "campaigns", "score_campaigns", "categorical_columns")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicates in {v}")
        return v


class MlScoreConfig(_Section):
    models: list[Literal["churn", "segments", "uplift"]] = Field(min_length=1)
    snapshot_date: date | None  # null: latest feature snapshot <= run date


class MlConfig(_Section):
    """jobs.train_segments, jobs.train_churn, jobs.train_uplift, jobs.score."""

    features: MlFeaturesConfig
    segments: MlSegmentsConfig
    churn: MlChurnConfig
    uplift: MlUpliftConfig
    score: MlScoreConfig
    segments_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    churn_scores_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    uplift_scores_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")


ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]  # local HH:MM


class PublishChannelConfig(_Section):
    """One touchpoint of jobs.publish (times are local, publish.timezone)."""

    consent_column: str | None  # silver/customers flag a marketing audience needs; null: none
    send_window: list[ClockTime] = Field(min_length=2, max_length=2)  # [start, end)
    quiet_hours: list[ClockTime] | None = Field(min_length=2, max_length=2)  # [start, end)
    frequency_capped: bool  # its marketing contacts count toward (and obey) the caps
    export_phone: bool  # the export carries the phone number (outbound_call only)


class PublishFrequencyCap(_Section):
    days: int = Field(gt=0)  # rolling window ending on the contact date
    max_contacts: int = Field(ge=0)


class PublishConfig(_Section):
    """jobs.publish (audience definitions live in conf/audiences/)."""

    audiences_dir: str  # folder of audience YAML files; relative paths are under the conf folder
    timezone: str  # business time zone: run-date cut-off, send windows, quiet hours
    contact_lag_days: int = Field(ge=0)  # audiences published for D are contacted on D + lag
    pseudonym_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")  # env var holding the key
    pseudonym_key_min_bytes: int = Field(gt=0)
    profiling_consent_column: str | None  # needed for any tag-based use; null: not required
    do_not_contact_table: str = Field(pattern=r"^[a-z0-9_]+/[a-z0-9_]+$")
    do_not_contact_required: bool  # true: a missing table stops the job
    frequency_caps: list[PublishFrequencyCap]
    unresolved_repeat_days: int = Field(gt=0)  # 2+ inbound contacts this recent, last unresolved
    published_tags: list[str]  # portrait tags in gold/marketing_tags; empty = all of them
    export_dir: StoragePath  # <export_dir>/<run date>/<channel>/<audience id>.csv
    pii_guard: bool  # scan every output for phones, id-card numbers and names before writing
    channels: dict[str, PublishChannelConfig] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("channels")
    @classmethod
    def _phone_only_to_dialer(
        cls, v: dict[str, PublishChannelConfig]
    ) -> dict[str, PublishChannelConfig]:
        bad = sorted(name for name, c in v.items() if c.export_phone and name != "outbound_call")
        if bad:
            raise ValueError(f"only the outbound_call dialer export may carry phones, not {bad}")
        return v


class Config(_Section):
    env: str
    conf_dir: str  # the folder this config was loaded from (source specs live under it)
    lake: LakeConfig
    landing: PathConfig
    truth: PathConfig
    spark: SparkConfig
    mlflow: MlflowConfig
    pipeline: PipelineConfig
    generate: GenerateConfig
    ingest: IngestConfig
    quality: QualityConfig
    report: ReportConfig
    unify: UnifyConfig
    kpis: KpisConfig
    features: FeaturesConfig
    tags: TagsConfig
    ml: MlConfig
    publish: PublishConfig


def default_conf_dir() -> Path:
    """$CONTACTLAKE_CONF_DIR, else ./conf, else the conf/ of the source checkout."""
    env_dir = os.environ.get("CONTACTLAKE_CONF_DIR")
    if env_dir:
        return Path(env_dir)
    if Path("conf/base.yaml").is_file():
        return Path("conf")
    return Path(__file__).resolve().parents[2] / "conf"


def deep_merge(base: dict, overlay: dict) -> dict:
    """Overlay wins; nested dicts merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def apply_override(raw: dict, assignment: str) -> dict:
    """Apply one ``a.b.c=value`` (value parsed as YAML, so 3 is an int and true a bool).

    Under ``spark.conf.`` the rest of the path is one Spark setting's name.
    """
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key.path=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment!r}: value is not valid YAML: {exc}") from exc
    node: dict = {}
    overlay = node
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        # Spark's own keys are dotted: spark.conf.spark.eventLog.enabled sets one entry
        parts = [*parts[:2], ".".join(parts[2:])]
    for part in parts[:-1]:
        node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return deep_merge(raw, overlay)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"{where}: {err['msg']}")
    return "invalid configuration: " + "; ".join(lines)


def load_config(
    env: str = "local", overrides: list[str] | tuple[str, ...] = (), conf_dir: Path | None = None
) -> Config:
    """Load base + env overlay + overrides and validate.

    Raises:
        ConfigError: naming the file, the key or the value that is wrong.
    """
    conf_dir = Path(conf_dir) if conf_dir else default_conf_dir()
    if env not in ENVS and not (conf_dir / f"{env}.yaml").is_file():
        raise ConfigError(f"unknown env {env!r}: no {conf_dir / (env + '.yaml')}")
    raw = deep_merge(_read_yaml(conf_dir / "base.yaml"), _read_yaml(conf_dir / f"{env}.yaml"))
    raw["env"] = env
    raw["conf_dir"] = str(conf_dir.resolve())
    for assignment in overrides:
        raw = apply_override(raw, assignment)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
