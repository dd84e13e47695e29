"""MLflow from config: tracking and registry URI, experiments, inputs, artifacts, and the
challenger/champion promotion of registered models.

Models are Spark MLlib PipelineModels logged with the spark flavor under the artifact path
``model``; a new version gets the alias ``challenger`` and takes ``champion`` only when it
beats the current champion re-scored on the same data (the first version always does).
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pyspark
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from pyspark.ml import PipelineModel

from contactlake.config import MlflowConfig

CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_PATH = "model"
log = logging.getLogger("contactlake.ml")


def configure(cfg: MlflowConfig) -> None:
    """Point MLflow tracking and registry at ``mlflow.tracking_uri``; no telemetry."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.tracking_uri)


def experiment_id(name: str, artifact_location: str | None) -> str:
    """The experiment's id, created on first use with artifacts under
    ``<artifact_location>/<name>`` (None: the tracking server's default)."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if artifact_location:
        root = artifact_location.rstrip("/")
        location = f"{root}/{name}" if "://" in root else Path(root, name).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


def git_commit() -> str | None:
    """HEAD of the checkout the code runs from, when it is one (else None)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def log_run_context(lake, reads: dict[str, int], job: str, run_date) -> None:
    """Inputs (table path and Delta version), job, run date and git commit on the active run."""
    params = {"job": job, "run_date": str(run_date)}
    for table, version in sorted(reads.items()):
        params[f"input.{table}"] = f"{lake.uri(table)}@v{version}"
        params[f"input_version.{table}"] = version
    mlflow.log_params(params)
    commit = git_commit()
    tags = {"job": job, "run_date": str(run_date)}
    if commit:
        tags["git_commit"] = commit
    mlflow.set_tags(tags)


def log_table(table, path: str) -> None:
    """Log a pandas DataFrame as ``<path>.csv`` and ``<path>.json`` (records) artifacts."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    mlflow.log_text(buffer.getvalue(), f"{path}.csv")
    mlflow.log_text(table.to_json(orient="records", date_format="iso", indent=1), f"{path}.json")


def log_figure(figure, path: str) -> None:
    """Log a matplotlib figure as a PNG artifact and free it."""
    import matplotlib.pyplot as plt

    mlflow.log_figure(figure, path)
    plt.close(figure)


def load_json_artifact(run_id: str, path: str):
    """A JSON artifact of a run (e.g. the segment profiles of a registered model's run)."""
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    return json.loads(Path(local).read_text())


def float_param(run_id: str, name: str, default: float) -> float:
    """A numeric parameter logged on a run (e.g. the ``positive_weight`` a churn model was
    trained with), or ``default`` when the run did not log it."""
    value = MlflowClient().get_run(run_id).data.params.get(name)
    return default if value is None else float(value)


def register(model: PipelineModel, model_name: str) -> int:
    """Log ``model`` on the active run and register it as a new version of ``model_name``."""
    # Explicit requirements: inferring them loads the model in a subprocess (slow).
    info = mlflow.spark.log_model(
        model,
        MODEL_PATH,
        registered_model_name=model_name,
        pip_requirements=[f"pyspark=={pyspark.__version__}"],
    )
    return int(info.registered_model_version)


def champion(model_name: str) -> ModelVersion | None:
    """The version holding the ``champion`` alias, or None (no model or no alias yet)."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST) or "not found" in str(exc):
            return None
        raise


def load_champion(model_name: str) -> tuple[int, str, PipelineModel]:
    """Version, run id and Spark model of ``models:/<model_name>@champion``.

    Raises:
        LookupError: there is no champion yet (train the model first).
    """
    version = champion(model_name)
    if version is None:
        raise LookupError(f"no champion for model {model_name!r}: run its training job first")
    model = mlflow.spark.load_model(f"models:/{model_name}@{CHAMPION}")
    return int(version.version), version.run_id, model


def beats(challenger: float, incumbent: float | None, lower_is_better: bool) -> bool:
    """Strictly better (a tie keeps the champion); anything beats no champion."""
    if incumbent is None:
        return True
    return challenger < incumbent if lower_is_better else challenger > incumbent


@dataclass
class Promotion:
    model_name: str
    version: int
    promoted: bool
    previous_champion: int | None
    challenger_value: float
    champion_value: float | None
    reason: str


def promote_if_better(
    model_name: str,
    version: int,
    metric: str,
    challenger_value: float,
    score_champion: Callable[[PipelineModel], float],
    *,
    lower_is_better: bool,
) -> Promotion:
    """Alias ``version`` challenger; make it champion if it beats the champion re-scored by
    ``score_champion`` on the same data. Logs the comparison on the active run.

    Metrics ``challenger_<metric>`` and ``champion_<metric>``; tags ``promoted``,
    ``previous_champion_version``, ``promotion_reason``; the same as model version tags.
    """
    client = MlflowClient()
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    current = champion(model_name)
    champion_value = None
    previous = None if current is None else int(current.version)
    if current is None:
        promoted, reason = True, "first model"
    else:
        model = mlflow.spark.load_model(f"models:/{model_name}@{CHAMPION}")
        try:
            champion_value = float(score_champion(model))
        except Exception as exc:  # e.g. the champion needs feature columns that are gone
            log.warning("champion v%s of %s could not be scored: %s", previous, model_name, exc)
            promoted, reason = False, f"champion could not be scored: {type(exc).__name__}"
        else:
            promoted = beats(challenger_value, champion_value, lower_is_better)
            reason = f"{metric} {challenger_value:.6f} vs champion v{previous} {champion_value:.6f}"
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    mlflow.log_metric(f"challenger_{metric}", challenger_value)
    if champion_value is not None:
        mlflow.log_metric(f"champion_{metric}", champion_value)
    tags = {
        "promoted": str(promoted).lower(),
        "previous_champion_version": "" if previous is None else str(previous),
        "promotion_reason": reason,
        "model_name": model_name,
        "model_version": str(version),
    }
    mlflow.set_tags(tags)
    for key in ("promoted", "previous_champion_version", "promotion_reason"):
        client.set_model_version_tag(model_name, str(version), key, tags[key])
    client.set_model_version_tag(model_name, str(version), metric, f"{challenger_value:.6f}")
    log.info(
        "%s v%d: %s -> %s", model_name, version, reason, "champion" if promoted else "challenger"
    )
    return Promotion(
        model_name, version, promoted, previous, challenger_value, champion_value, reason
    )
