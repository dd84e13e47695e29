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
from typing import Annotated, Any

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


class KpisConfig(_Section):
    """jobs.kpis (owned by the KPI work; KPI definitions and targets live in conf/kpis/)."""


class FeaturesConfig(_Section):
    """jobs.features."""


class TagsConfig(_Section):
    """jobs.tags (the tag catalog lives in conf/tags/)."""


class MlConfig(_Section):
    """jobs.train_segments, jobs.train_churn, jobs.score."""


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
    unify: UnifyConfig
    kpis: KpisConfig
    features: FeaturesConfig
    tags: TagsConfig
    ml: MlConfig


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
    """Apply one ``a.b.c=value`` (value parsed as YAML, so 3 is an int and true a bool)."""
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
