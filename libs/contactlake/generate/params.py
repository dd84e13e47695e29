"""Everything the generator derives from the configuration before touching data."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

from contactlake.generate.calibrate import (
    GIVE_UP_BAD,
    REFERENCE_FEE,
    Calibration,
    ChurnModel,
    calibrate,
)
from contactlake.generate.catalog import PERSONAS, PLANS
from contactlake.generate.config import GenerateConfig


@dataclass(frozen=True)
class Params:
    seed: int
    customers: int
    days: int
    partitions: int
    landing_partitions: int
    start: date
    weights: tuple[float, ...]
    calib: Calibration
    snapshots: tuple[int, ...]  # day offsets (end of day) of month-end churn snapshots
    snapshot_next: tuple[int, ...]  # end of each snapshot's outcome period
    hubs: int
    incident_days: tuple[int, ...]
    drift_day: int
    cfg: GenerateConfig = field(repr=False)

    def day(self, offset: int) -> date:
        return self.start + timedelta(days=offset)

    @property
    def landing_days(self) -> range:
        """Day offsets a landing file can be dated: late records arrive up to
        ``late_max_days`` after the last day (plus one spare day)."""
        return range(self.days + self.cfg.late_max_days + 1)

    @property
    def months(self) -> float:
        return self.days / 30.0


def _month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


# first abandons, long first waits and complaints: about this much experience score per
# issue besides its follow-ups and give-ups (see model.issues); the demo truth has 0.29
# (abandoned first contacts 0.18 + 0.5 x long waits 0.04 + 2 x complaints 0.043)
OTHER_BAD_PER_ISSUE = 0.3


def churn_model(cfg: GenerateConfig, days: int) -> ChurnModel:
    """The churn hazard of ``model.churn`` at each persona's typical plan mix and tenure
    (halfway through the range), for the calibration replica."""
    cc = cfg.churn

    def base(p) -> float:
        value = sum(
            mix * (fee / REFERENCE_FEE) ** -cc.value_weight
            for mix, (_, fee) in zip(p.plan, PLANS, strict=True)
        )
        tenure_years = (p.tenure_months * 30 + 30 + days / 2) / 365.0
        return p.churn * cc.scale * value * tenure_years**-cc.tenure_weight

    return ChurnModel(
        base=tuple(base(p) for p in PERSONAS),
        bad_per_issue=tuple(GIVE_UP_BAD * p.giveup + OTHER_BAD_PER_ISSUE for p in PERSONAS),
        experience_weight=cc.experience_weight,
        lookback_days=cc.lookback_days,
    )


def resolve(cfg: GenerateConfig) -> Params:
    """Resolve preset, calibration, snapshot calendar and incident days."""
    scale = cfg.resolved_scale()
    weights = tuple(cfg.weights())
    calib = calibrate(
        weights,
        tuple(p.activity for p in PERSONAS),
        tuple(p.voice for p in PERSONAS),
        churn_model(cfg, scale.days),
        cfg.contacts_per_customer_month,
        scale.days,
        cfg.digital_shift,
        float(cfg.repeat_window_days),
        cfg.concentration.top_share,
        cfg.concentration.call_share,
        cfg.repeat_share,
    )
    start = cfg.start_date
    end = start + timedelta(days=scale.days - 1)
    snaps = [start - timedelta(days=1)]
    d = _month_end(start)
    while d <= end:
        if d != snaps[-1]:
            snaps.append(d)
        d = _month_end(d + timedelta(days=1))
    offsets = [(s - start).days for s in snaps]
    nxt = [(_month_end(s + timedelta(days=1)) - start).days for s in snaps]
    # incident days spread over the range, never the first or last week
    n_inc = cfg.incident_days if scale.days > 21 else 0
    incidents = tuple(
        7 + (i * 7919 + cfg.seed * 31) % max(1, scale.days - 14) for i in range(n_inc)
    )
    return Params(
        seed=cfg.seed,
        customers=scale.customers,
        days=scale.days,
        partitions=scale.partitions,
        landing_partitions=scale.landing_partitions,
        start=start,
        weights=weights,
        calib=calib,
        snapshots=tuple(offsets),
        snapshot_next=tuple(nxt),
        hubs=max(3, round(scale.customers * cfg.hubs_per_100k / 100_000)),
        incident_days=incidents,
        drift_day=int(scale.days * cfg.schema_drift.from_fraction),
        cfg=cfg,
    )
