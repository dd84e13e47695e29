"""Settings of the data generator (the ``generate:`` section of the configuration)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleConfig(_Section):
    """Size of the generated center; ``None`` fields come from the preset."""

    customers: int | None = Field(default=None, gt=0)
    days: int | None = Field(default=None, gt=0, le=731)
    partitions: int | None = Field(default=None, gt=0)
    landing_partitions: int | None = Field(default=None, gt=0)


class Scale(_Section):
    customers: int
    days: int
    partitions: int  # of the generated rows
    # tasks that sort and write each landing source (a date's rows go to one task): at
    # large, 64 rather than 16 made billing's write 55 -> 40 s, smaller sorts per task
    landing_partitions: int


PRESETS: dict[str, Scale] = {
    "tiny": Scale(customers=5_000, days=182, partitions=2, landing_partitions=2),
    "demo": Scale(customers=50_000, days=365, partitions=4, landing_partitions=8),
    "large": Scale(customers=2_000_000, days=365, partitions=16, landing_partitions=64),
}


class ConcentrationConfig(_Section):
    """``call_share`` of voice calls come from the top ``top_share`` of calling customers."""

    top_share: float = Field(default=0.14, gt=0, lt=1)
    call_share: float = Field(default=0.51, gt=0, lt=1)


class ChurnConfig(_Section):
    """Monthly churn hazard = persona base x exp(experience + value + tenure effects)."""

    scale: float = Field(default=1.0, ge=0)
    experience_weight: float = Field(default=0.35, ge=0)
    value_weight: float = Field(default=0.3, ge=0)
    tenure_weight: float = Field(default=0.25, ge=0)
    lookback_days: int = Field(default=90, gt=0)


class CampaignConfig(_Section):
    count: int = Field(default=3, ge=0, le=6)
    eligible_share: float = Field(default=0.3, gt=0, le=1)
    treatment_share: float = Field(default=0.5, gt=0, lt=1)
    max_attempts: int = Field(default=3, ge=1, le=5)


class SchemaDriftConfig(_Section):
    """From ``from_fraction`` of the date range on, ``source`` files carry ``column``."""

    source: Literal["voice"] = "voice"
    column: str = "asr_sentiment"
    from_fraction: float = Field(default=0.6, ge=0, le=1)


class GenerateConfig(_Section):
    seed: int = 7
    preset: Literal["tiny", "demo", "large"] = "demo"
    scale: ScaleConfig = ScaleConfig()
    start_date: date = date(2025, 1, 1)
    contacts_per_customer_month: float = Field(default=0.8, gt=0)
    concentration: ConcentrationConfig = ConcentrationConfig()
    repeat_share: float = Field(default=0.27, gt=0, lt=1)
    repeat_window_days: int = Field(default=7, gt=0)
    digital_shift: float = Field(default=0.3, ge=0, lt=1)
    weekend_factor: float = Field(default=0.6, gt=0, le=1)
    incident_days: int = Field(default=2, ge=0)
    incident_share: float = Field(default=0.02, ge=0, lt=1)
    persona_weights: dict[str, float] = Field(default_factory=dict)
    tenure_spread: float = Field(default=0.35, ge=0, le=2)
    hubs_per_100k: float = Field(default=5.0, ge=0)
    churn: ChurnConfig = ChurnConfig()
    campaigns: CampaignConfig = CampaignConfig()
    survey_rate: float = Field(default=0.08, ge=0, le=1)
    defect_rate: float = Field(default=0.01, ge=0, le=0.5)
    late_max_days: int = Field(default=3, ge=1)
    schema_drift: SchemaDriftConfig = SchemaDriftConfig()

    @model_validator(mode="after")
    def _known_personas(self) -> GenerateConfig:
        from contactlake.generate.catalog import PERSONAS

        names = {p.name for p in PERSONAS}
        unknown = set(self.persona_weights) - names
        if unknown:
            raise ValueError(f"unknown personas {sorted(unknown)}; known: {sorted(names)}")
        if any(w < 0 for w in self.persona_weights.values()):
            raise ValueError("persona weights must be >= 0")
        return self

    def resolved_scale(self) -> Scale:
        """The preset's scale with any ``scale.*`` override applied."""
        base = PRESETS[self.preset]
        return Scale(
            customers=self.scale.customers or base.customers,
            days=self.scale.days or base.days,
            partitions=self.scale.partitions or base.partitions,
            landing_partitions=self.scale.landing_partitions or base.landing_partitions,
        )

    def weights(self) -> list[float]:
        """Persona weights (catalog order), normalised to sum 1."""
        from contactlake.generate.catalog import PERSONAS

        raw = [self.persona_weights.get(p.name, p.weight) for p in PERSONAS]
        total = sum(raw)
        if total <= 0:
            raise ValueError("persona weights sum to 0")
        return [w / total for w in raw]
