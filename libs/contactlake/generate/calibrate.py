"""Solve the heavy-tail and repeat parameters for the configured targets (driver, numpy).

The contact model (see :mod:`contactlake.generate.contacts`) has two free parameters:

* ``sigma``: spread of the log-normal activity weight per customer; it sets how concentrated
  calls are (share of calls from the top ``top_share`` of calling customers).
* ``q``: probability that a contact is followed by a repeat within the repeat window
  (an unresolved contact); with coincidental contacts it sets the measured repeat share.

Both targets are what the KPIs measure: over inbound contacts (the agent's callbacks on
voice follow-ups are outbound) of customers still there (churn ends a customer's
contacts, and more so for busy customers with bad experiences, which thins out the
coincidental repeats).

A small Monte-Carlo replica of the model (25k customers, fixed seed) is bisected for both;
it runs in about a second on the driver and is cached per parameter set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

MAX_FOLLOWUPS = 6
MAX_ISSUES = 400
GAP_MIN_H = 1.0
GAP_SPAN_H = 150.0  # follow-up gap hours = GAP_MIN_H + GAP_SPAN_H * u^2 (< 7 days)
CALLBACK_SHARE = 0.08  # voice follow-ups that are the agent calling back (outbound)
MAX_BAD = 8.0  # the experience score's cap in the churn hazard
GIVE_UP_BAD = 2.0  # experience score of an issue the customer gave up on
REFERENCE_FEE = 59.0  # monthly fee at which the churn hazard's value effect is 1


@dataclass(frozen=True)
class ChurnModel:
    """What the replica needs of the churn hazard (see ``model.churn``), per persona.

    ``base``: monthly hazard before the experience effect (persona base x value and tenure
    effects at the persona's typical plan and tenure); ``bad_per_issue``: expected
    experience score of an issue besides its follow-ups; the hazard is
    ``base * exp(experience_weight * min(expected score over lookback_days, MAX_BAD))``.
    """

    base: tuple[float, ...]
    bad_per_issue: tuple[float, ...]
    experience_weight: float
    lookback_days: int


@dataclass(frozen=True)
class Calibration:
    sigma: float
    q: float
    issues_per_month: float  # per unit of (normalised) activity
    mean_weight: float  # E[activity * exp(sigma Z)]
    sim_concentration: float
    sim_repeat_share: float


def chain_mean(q: float) -> float:
    """Expected contacts per issue: 1 + q + ... + q^MAX_FOLLOWUPS."""
    return sum(q**n for n in range(MAX_FOLLOWUPS + 1))


def mean_weight(weights, activity, sigma: float) -> float:
    return float(
        sum(w * a for w, a in zip(weights, activity, strict=True)) * math.exp(sigma**2 / 2)
    )


def _churn_days(churn: ChurnModel, p, issues_per_day, q, days, rng) -> np.ndarray:
    """Day each simulated customer leaves (``inf``: stays), month by month at its expected
    hazard; the experience score counts issues of the range only, so it builds up over the
    first ``lookback_days`` (the generator's first snapshots see no earlier issues)."""
    per_day = issues_per_day * (np.asarray(churn.bad_per_issue)[p] + chain_mean(q) - 1.0)
    base = np.asarray(churn.base)[p]
    leaves = np.full(p.size, np.inf)
    for start in range(0, int(days), 30):
        bad = per_day * min(start, churn.lookback_days)
        monthly = base * np.exp(churn.experience_weight * np.minimum(bad, MAX_BAD))
        leaving = np.isinf(leaves) & (rng.random(p.size) < 1.0 - np.exp(-monthly))
        leaves[leaving] = start + 30.0 * rng.random(int(leaving.sum()))
    return leaves


def _simulate(
    weights,
    activity,
    voice,
    churn,
    sigma,
    q,
    rate,
    days,
    shift,
    window,
    top_share,
    n=25_000,
    seed=12345,
):
    rng = np.random.default_rng(seed)
    months = days / 30.0
    p = rng.choice(len(weights), size=n, p=np.asarray(weights))
    z = rng.standard_normal(n)
    w = np.asarray(activity)[p] * np.exp(sigma * z)
    lam = rate / chain_mean(q) * months * w / mean_weight(weights, activity, sigma)
    leaves = _churn_days(churn, p, lam / days, q, days, rng)
    m = np.minimum(np.floor(lam + rng.random(n)).astype(np.int64), MAX_ISSUES)
    cust = np.repeat(np.arange(n), m)
    j = np.arange(cust.size) - np.repeat(np.cumsum(m) - m, m)
    t0 = (j + rng.random(cust.size)) / m[cust] * days
    ui = 1.0 - rng.random(cust.size)
    k = np.minimum(MAX_FOLLOWUPS, np.floor(np.log(ui) / math.log(q)) if q > 0 else 0)
    reps = (k + 1).astype(np.int64)
    ci = np.repeat(np.arange(cust.size), reps)
    pos = np.arange(ci.size) - np.repeat(np.cumsum(reps) - reps, reps)
    gaps = (GAP_MIN_H + GAP_SPAN_H * rng.random(ci.size) ** 2) / 24.0
    gaps[pos == 0] = 0.0
    cs = np.cumsum(gaps)
    starts = np.cumsum(reps) - reps
    cs = cs - np.repeat(cs[starts], reps)
    t = t0[ci] + cs
    cc = cust[ci]
    pv = np.clip(np.asarray(voice)[p[cc]] * (1 + shift * (0.5 - t / days)), 0.02, 0.98)
    is_voice = rng.random(t.size) < pv
    callback = is_voice & (pos > 0) & (rng.random(t.size) < CALLBACK_SHARE)
    keep = (t < days) & (t < leaves[cc]) & ~callback
    t, cc, is_voice = t[keep], cc[keep], is_voice[keep]
    order = np.lexsort((t, cc))
    t, cc, is_voice = t[order], cc[order], is_voice[order]
    same = np.r_[False, cc[1:] == cc[:-1]]
    dt = np.r_[np.inf, np.diff(t)]
    repeat = float(np.mean(same & (dt <= window))) if t.size else 0.0
    counts = np.bincount(cc[is_voice], minlength=n)
    callers = np.sort(counts[counts > 0])[::-1]
    top = max(1, math.ceil(top_share * callers.size))
    conc = float(callers[:top].sum() / max(1, callers.sum()))
    return conc, repeat


@lru_cache(maxsize=32)
def calibrate(
    weights: tuple,
    activity: tuple,
    voice: tuple,
    churn: ChurnModel,
    rate: float,
    days: int,
    shift: float,
    window: float,
    top_share: float,
    call_share: float,
    repeat_share: float,
) -> Calibration:
    """Find (sigma, q) whose simulated concentration and repeat share hit the targets."""
    sigma, q = 1.0, 0.15

    def sim(s, qq):
        return _simulate(
            weights, activity, voice, churn, s, qq, rate, days, shift, window, top_share
        )

    for _ in range(2):
        lo, hi = 0.2, 2.2
        for _ in range(10):
            mid = (lo + hi) / 2
            if sim(mid, q)[0] < call_share:
                lo = mid
            else:
                hi = mid
        sigma = (lo + hi) / 2
        lo, hi = 0.0, 0.6
        for _ in range(10):
            mid = (lo + hi) / 2
            if sim(sigma, mid)[1] < repeat_share:
                lo = mid
            else:
                hi = mid
        q = (lo + hi) / 2
    conc, rep = sim(sigma, q)
    return Calibration(
        sigma=round(sigma, 6),
        q=round(q, 6),
        issues_per_month=rate / chain_mean(q),
        mean_weight=mean_weight(weights, activity, sigma),
        sim_concentration=conc,
        sim_repeat_share=rep,
    )
