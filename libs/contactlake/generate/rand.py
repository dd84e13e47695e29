"""Hash-based randomness as Column expressions: same seed and keys, same numbers.

``u(seed, salt, *keys)`` maps ``xxhash64(seed, salt, keys...)`` to [0, 1); it does not
depend on partitioning or execution order, so any row can be recomputed anywhere.

Keys and indexes may be given as SQL text (a column name such as ``"cust_idx"``, or an
expression) or as Python ints: the helpers then build the whole expression as SQL and
cross to the JVM once (``F.expr``). Building the same expression from Column operators
costs one Py4J round trip per operator and literal, which made planning take longer than
running on small data. Column keys still work (the slower path).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

_MASK53 = (1 << 53) - 1
_SCALE = float(1 << 53)

Key = Column | str | int


def _c(x) -> Column:
    return x if isinstance(x, Column) else F.lit(x)


def lit_sql(v) -> str:
    """A Python literal as Spark SQL text, with the type ``F.lit`` would give it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if -(2**31) <= v < 2**31 else f"{v}L"
    if isinstance(v, float):
        return f"{v!r}D"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {v!r}")


def array_sql(values: Sequence) -> str:
    return "array(" + ", ".join(lit_sql(v) for v in values) + ")"


def _sqlable(*xs) -> bool:
    return all(isinstance(x, str | int) for x in xs)


def _key_sql(k) -> str:
    return str(k) if isinstance(k, int) else f"({k})"


def u_sql(seed: int, salt: str, *keys: str | int) -> str:
    """SQL text of :func:`u` (keys: SQL text or ints)."""
    args = ", ".join([lit_sql(seed), lit_sql(salt), *[_key_sql(k) for k in keys]])
    return f"(CAST((xxhash64({args}) & {_MASK53}L) AS DOUBLE) / {_SCALE!r}D)"


def u(seed: int, salt: str, *keys: Key) -> Column:
    """Uniform double in [0, 1) keyed by (seed, salt, keys)."""
    if _sqlable(*keys):
        return F.expr(u_sql(seed, salt, *keys))
    h = F.xxhash64(F.lit(seed), F.lit(salt), *[_c(k) for k in keys])
    return h.bitwiseAND(F.lit(_MASK53)).cast("double") / F.lit(_SCALE)


def uint(seed: int, salt: str, n, *keys: Key) -> Column:
    """Uniform integer in [0, n)."""
    if isinstance(n, int) and _sqlable(*keys):
        return F.expr(f"CAST(FLOOR({u_sql(seed, salt, *keys)} * {n}) AS BIGINT)")
    return F.floor(u(seed, salt, *keys) * _c(n)).cast("long")


def normal(seed: int, salt: str, *keys: Key) -> Column:
    """Standard normal by Box-Muller from two uniforms."""
    if _sqlable(*keys):
        u1 = f"(1.0D - {u_sql(seed, salt + '#1', *keys)})"  # (0, 1]
        u2 = u_sql(seed, salt + "#2", *keys)
        return F.expr(f"SQRT(-2.0D * LN({u1})) * COS({2 * math.pi!r}D * {u2})")
    u1 = F.lit(1.0) - u(seed, salt + "#1", *keys)
    u2 = u(seed, salt + "#2", *keys)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def pick(index: Column | str, values: Sequence) -> Column:
    """``values[index]`` for a small literal list (0-based index)."""
    if isinstance(index, str):
        return F.expr(f"element_at({array_sql(values)}, CAST({index} AS INT) + 1)")
    return F.element_at(F.expr(array_sql(values)), index.cast("int") + 1)


def _cum(weights: Sequence[float]) -> list[float]:
    total = float(sum(weights))
    cum, acc = [], 0.0
    for w in weights[:-1]:
        acc += w / total
        cum.append(acc)
    return cum


def categorical_sql(uniform: str, weights: Sequence[float]) -> str:
    terms = [f"CAST(({uniform}) >= {c!r}D AS INT)" for c in _cum(weights)]
    return "(" + " + ".join(["0", *terms]) + ")"


def categorical(uniform: Column | str, weights: Sequence[float]) -> Column:
    """Index drawn from ``weights`` (normalised here) with the given uniform."""
    if isinstance(uniform, str):
        return F.expr(categorical_sql(uniform, weights))
    idx = F.lit(0)
    for c in _cum(weights):
        idx = idx + (uniform >= F.lit(c)).cast("int")
    return idx


def categorical_by(uniform: Column | str, row: Column | str, table) -> Column:
    """Index drawn from the weight row ``table[row]`` (rows normalised here)."""
    ncol = len(table[0])
    cums = [_cum(w) for w in table]
    if isinstance(uniform, str) and isinstance(row, str):
        terms = [
            f"CAST(({uniform}) >= element_at({array_sql([c[j] for c in cums])}, "
            f"CAST({row} AS INT) + 1) AS INT)"
            for j in range(ncol - 1)
        ]
        return F.expr("(" + " + ".join(["0", *terms]) + ")")
    uniform = F.expr(uniform) if isinstance(uniform, str) else uniform
    row = F.col(row) if isinstance(row, str) else row
    idx = F.lit(0)
    for j in range(ncol - 1):
        idx = idx + (uniform >= pick(row, [c[j] for c in cums])).cast("int")
    return idx


def perm(x: Column, modulus: int, mult: int, add: int) -> Column:
    """Bijection of [0, modulus) (mult must be coprime to modulus): unique ids that look random."""
    return (x * F.lit(mult) + F.lit(add)) % F.lit(modulus)
