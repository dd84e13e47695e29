"""Dates, times and amounts of generated records as text, as SQL expressions.

The text is what ``date_format``, ``CAST(date AS STRING)`` and ``CAST(double AS STRING)``
write, but assembled from literal arrays (the dates of the range, two-digit numbers,
cents) rather than formatted: Java's DateTimeFormatter and shortest-digits algorithm took
a fifth and a tenth of the billing rows' CPU. Times are seconds from the range start, read
as naive local times (the session time zone is UTC).
"""

from __future__ import annotations

from datetime import date, timedelta

from contactlake.generate.model import DAY_S
from contactlake.generate.params import Params
from contactlake.generate.rand import array_sql

# days after the last landing day that are looked up too (bill due dates fall after it)
SPARE_DAYS = 31
_TWO_DIGITS = array_sql([f"{n:02d}" for n in range(60)])
# the digits after the point of a whole number of cents, as Double.toString writes them
_CENTS = array_sql([f"{c // 10}" if c % 10 == 0 else f"{c:02d}" for c in range(100)])


def epoch(p: Params) -> int:
    """Range start as epoch seconds of the naive local time."""
    return (p.start - date(1970, 1, 1)).days * DAY_S


def day_sql(p: Params, day: str) -> str:
    """SQL text: the date ``day`` (an integer SQL expression) days after the range start."""
    n = len(p.landing_days) + SPARE_DAYS
    dates = array_sql([(p.start + timedelta(days=d)).isoformat() for d in range(n)])
    fallback = f"CAST(date_add(DATE'{p.start.isoformat()}', CAST({day} AS INT)) AS STRING)"
    # get() is null outside the array, and coalesce evaluates the fallback only then
    return f"coalesce(get({dates}, CAST({day} AS INT)), {fallback})"


def ts_sql(p: Params, t: str, iso: bool = False) -> str:
    """SQL text: the local time ``t`` (integer seconds from the range start, SQL text) as
    ``yyyy-MM-dd HH:mm:ss``, or with ``iso`` as ``yyyy-MM-dd'T'HH:mm:ss'+08:00'``."""
    sod = f"pmod({t}, {DAY_S})"
    day = f"(({t}) - {sod}) DIV {DAY_S}"
    sep, zone = ("'T'", "'+08:00'") if iso else ("' '", "''")
    return (
        f"concat({day_sql(p, day)}, {sep}, get({_TWO_DIGITS}, CAST({sod} DIV 3600 AS INT)), ':',"
        f" get({_TWO_DIGITS}, CAST(({sod} DIV 60) % 60 AS INT)), ':',"
        f" get({_TWO_DIGITS}, CAST({sod} % 60 AS INT)), {zone})"
    )


def money_sql(x: str, cents: str | None = None) -> str:
    """SQL text: the amount ``x`` (a double of whole cents) as ``CAST(x AS STRING)`` writes
    it (58.0, 58.5, 58.05). Amounts from 0 to 10^7 are written from their cents (``cents``,
    SQL text of the amount in cents when the caller has it); others (E notation, minus
    sign) are cast."""
    cents = cents or f"CAST(({x}) * 100.0D + 0.5D AS BIGINT)"
    digits = (
        f"concat(CAST({cents} DIV 100 AS STRING), '.', get({_CENTS}, CAST({cents} % 100 AS INT)))"
    )
    return (
        f"CASE WHEN ({x}) >= 0.0D AND ({x}) < 1.0E7D THEN {digits} ELSE CAST(({x}) AS STRING) END"
    )
