"""Hash-based randomness as Column expressions: same seed and keys, same numbers.

``u(seed, salt, *keys)`` maps ``xxhash64(seed, salt, keys...)`` to [0, 1); it does not
depend on partitioning or execution order, so any row can be recomputed anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

_MASK53 = (1 << 53) - 1
_SCALE = float(1 << 53)


def _c(x) -> Column:
    return x if isinstance(x, Column) else F.lit(x)


def u(seed: int, salt: str, *keys) -> Column:
    """Uniform double in [0, 1) keyed by (seed, salt, keys)."""
    h = F.xxhash64(F.lit(seed), F.lit(salt), *[_c(k) for k in keys])
    return h.bitwiseAND(F.lit(_MASK53)).cast("double") / F.lit(_SCALE)


def uint(seed: int, salt: str, n, *keys) -> Column:
    """Uniform integer in [0, n)."""
    return F.floor(u(seed, salt, *keys) * _c(n)).cast("long")


def normal(seed: int, salt: str, *keys) -> Column:
    """Standard normal by Box-Muller from two uniforms."""
    u1 = F.lit(1.0) - u(seed, salt + "#1", *keys)  # (0, 1]
    u2 = u(seed, salt + "#2", *keys)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def pick(index: Column, values: Sequence) -> Column:
    """``values[index]`` for a small literal list (0-based index)."""
    return F.element_at(F.array(*[F.lit(v) for v in values]), index.cast("int") + 1)


def categorical(uniform: Column, weights: Sequence[float]) -> Column:
    """Index drawn from ``weights`` (normalised here) with the given uniform."""
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights[:-1]:
        acc += w / total
        cum.append(acc)
    idx = F.lit(0)
    for c in cum:
        idx = idx + (uniform >= F.lit(c)).cast("int")
    return idx


def categorical_by(uniform: Column, row: Column, table: Sequence[Sequence[float]]) -> Column:
    """Index drawn from the weight row ``table[row]`` (rows normalised here)."""
    ncol = len(table[0])
    cums = []
    for weights in table:
        total = float(sum(weights))
        acc, cum = 0.0, []
        for w in weights[:-1]:
            acc += w / total
            cum.append(acc)
        cums.append(cum)
    idx = F.lit(0)
    for j in range(ncol - 1):
        idx = idx + (uniform >= pick(row, [c[j] for c in cums])).cast("int")
    return idx


def perm(x: Column, modulus: int, mult: int, add: int) -> Column:
    """Bijection of [0, modulus) (mult must be coprime to modulus): unique ids that look random."""
    return (x * F.lit(mult) + F.lit(add)) % F.lit(modulus)
