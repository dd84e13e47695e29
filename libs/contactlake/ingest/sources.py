"""Source specifications: ``conf/sources/<source>.yaml``, one per landing source.

A spec says how a source's files are laid out (format, delimiter, header), which columns
it is known to carry and which are required, and what to do when a file brings a column
nobody has seen before (schema drift policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contactlake.config import ConfigError, format_validation_error


class SourceSpec(BaseModel):
    """How one landing source is read into ``bronze/<name>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str
    format: Literal["csv", "jsonl", "parquet"]
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    header: bool = True
    columns: list[str] = Field(min_length=1)
    required: list[str] = Field(min_length=1)
    # "add": a new column becomes a new nullable bronze column; "reject": the file stops.
    drift: Literal["add", "reject"] = "add"
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _required_are_known(self) -> SourceSpec:
        unknown = [c for c in self.required if c not in self.columns]
        if unknown:
            raise ValueError(f"required columns {unknown} are not in columns")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("columns repeat a name")
        if self.format == "csv" and not self.header:
            raise ValueError("csv sources need a header line (columns are matched by name)")
        return self


def load_sources(conf_dir: str | Path) -> dict[str, SourceSpec]:
    """Every ``<conf_dir>/sources/*.yaml``, validated; the file name is the source name."""
    folder = Path(conf_dir) / "sources"
    specs: dict[str, SourceSpec] = {}
    for path in sorted(folder.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
            spec = SourceSpec.model_validate({"name": path.stem, **raw})
        except ValidationError as exc:
            raise ConfigError(f"{path}: {format_validation_error(exc)}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        specs[spec.name] = spec
    if not specs:
        raise ConfigError(f"no source specs in {folder}")
    return specs
