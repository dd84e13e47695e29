"""Commit data files to a Delta table with delta-rs, under a per-table lock.

Spark-free: callers pass files already written (by Spark or pyarrow) inside the table
root. Overwrites are remove actions + add actions in one commit (never a directory
delete), schema and partition changes are checked here because delta-rs does not check
them in append mode, and app transactions make a re-run of the same job run a no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable, Field, Schema
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as _DeltaNotFound
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)

from contactlake.lake.errors import (
    ConcurrentWriteError,
    LockTimeoutError,
    PartitionMismatchError,
    SchemaMismatchError,
)
from contactlake.lake.files import DataFile

PartitionSpec = dict[str, str | None]
APPEND_RETRIES = 3


@dataclass(frozen=True)
class CommitResult:
    """What a write did: the new table version, or ``skipped`` for a repeated run."""

    table: str
    version: int
    files_added: int = 0
    files_removed: int = 0
    rows_added: int = 0
    skipped: bool = False


# ---------------------------------------------------------------- locking
@contextmanager
def table_lock(lock_dir: str, table: str, timeout_s: float) -> Iterator[None]:
    """Exclusive inter-process lock for one table (flock on a local file).

    Serialises commits, overwrites and merges of the same table by every writer on this
    machine. Writers on other machines are caught by delta-rs' conflict checks instead.
    """
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    name = table.replace("/", "__") + "-" + hashlib.sha1(table.encode()).hexdigest()[:8]
    fd = os.open(os.path.join(lock_dir, name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"{table}: another writer held the table lock for over {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


# ---------------------------------------------------------------- tables and schemas
def open_table(uri: str, version: int | None = None, timestamp=None) -> DeltaTable | None:
    """The table at the latest (or given) version; None if there is no table yet."""
    try:
        table = DeltaTable(uri, version=version)
    except _DeltaNotFound:
        return None
    if timestamp is not None:
        table.load_as_version(timestamp)
    return table


def _nullable(data_type):
    """Every field nullable, recursively (NOT NULL columns break delta-spark readers of
    timestamp_ntz tables and make schema evolution brittle: DESIGN pitfall 7)."""
    if isinstance(data_type, dict):
        kind = data_type.get("type")
        if kind == "struct":
            return {
                **data_type,
                "fields": [
                    {**f, "nullable": True, "type": _nullable(f["type"])}
                    for f in data_type["fields"]
                ],
            }
        if kind == "array":
            return {
                **data_type,
                "containsNull": True,
                "elementType": _nullable(data_type["elementType"]),
            }
        if kind == "map":
            return {
                **data_type,
                "valueContainsNull": True,
                "valueType": _nullable(data_type["valueType"]),
            }
    return data_type


def nullable_schema(schema_json: dict) -> dict:
    return _nullable(schema_json)


def table_schema_json(table: DeltaTable) -> dict:
    return json.loads(table.schema().to_json())


def _type_key(data_type) -> str:
    normalised = _nullable(data_type)
    return json.dumps(_strip_metadata(normalised), sort_keys=True)


def _strip_metadata(data_type):
    if isinstance(data_type, dict):
        return {k: _strip_metadata(v) for k, v in data_type.items() if k != "metadata"}
    if isinstance(data_type, list):
        return [_strip_metadata(v) for v in data_type]
    return data_type


def reconcile_schema(table: str, current: dict, incoming: dict, evolve: bool) -> list[dict]:
    """Compare an incoming schema with the table's; return the fields to add.

    Policy: the only evolution is adding nullable top-level columns, and only with
    ``evolve=True``. Missing or retyped columns are always an error.

    Raises:
        SchemaMismatchError: naming each offending column.
    """
    have = {f["name"]: f for f in current["fields"]}
    got = {f["name"]: f for f in incoming["fields"]}
    lower_have = {n.lower(): n for n in have}
    problems = []
    missing = [n for n in have if n not in got]
    if missing:
        problems.append(f"missing columns {missing}")
    retyped = [
        f"{n} ({_short(have[n]['type'])} -> {_short(got[n]['type'])})"
        for n in got
        if n in have and _type_key(have[n]["type"]) != _type_key(got[n]["type"])
    ]
    if retyped:
        problems.append(f"retyped columns {retyped}")
    added = [got[n] for n in got if n not in have]
    clashes = [f["name"] for f in added if f["name"].lower() in lower_have]
    if clashes:
        problems.append(f"columns differing only by case {clashes}")
    if added and not evolve:
        problems.append(
            f"new columns {[f['name'] for f in added]} (pass evolve_schema=True to add them)"
        )
    if problems:
        raise SchemaMismatchError(f"{table}: schema mismatch: " + "; ".join(problems))
    return [{**f, "nullable": True, "type": _nullable(f["type"])} for f in added]


def _short(data_type) -> str:
    return data_type if isinstance(data_type, str) else data_type.get("type", "?")


def _matches(values: PartitionSpec, spec: PartitionSpec) -> bool:
    return all(values.get(k) == v for k, v in spec.items())


# ---------------------------------------------------------------- commit
def _add_actions(files: list[DataFile]) -> list[AddAction]:
    return [
        AddAction(f.path, f.size, f.partition_values, f.modification_time, True, f.stats)
        for f in files
    ]


def _delta_string(value) -> str | None:
    """Partition value in the string form the Delta log stores."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def snapshot_files(table: DeltaTable) -> list[tuple[str, int, PartitionSpec]]:
    """(raw relative path, size, partition values) of every file in the snapshot.

    delta-rs reports paths URI-encoded as in the log; actions take the raw path.
    """
    rows = pa.table(table.get_add_actions(flatten=False)).to_pylist()
    return [
        (
            unquote(row["path"]),
            row["size_bytes"],
            {k: _delta_string(v) for k, v in (row.get("partition") or {}).items()},
        )
        for row in rows
    ]


def select_files(
    files: list[tuple[str, int, PartitionSpec]], replace: str | list[PartitionSpec]
) -> list[tuple[str, int, PartitionSpec]]:
    """The files a replace spec covers: "all", or those matching any partition spec."""
    if replace == "all":
        return files
    return [f for f in files if any(_matches(f[2], spec) for spec in replace)]


def _remove_actions(table: DeltaTable, replace: str | list[PartitionSpec]) -> list[RemoveAction]:
    now = int(time.time() * 1000)
    return [
        RemoveAction(path, True, now, size=size, partition_values=values)
        for path, size, values in select_files(snapshot_files(table), replace)
    ]


def _properties(app_id: str | None, txn_version: int, operation: str, max_retries: int | None):
    metadata = {"contactlake.operation": operation}
    if app_id:
        metadata["contactlake.app_id"] = app_id
    return CommitProperties(
        custom_metadata=metadata,
        app_transactions=[Transaction(app_id, txn_version)] if app_id else None,
        max_commit_retries=max_retries,
    )


def commit_files(
    uri: str,
    table: str,
    files: list[DataFile],
    schema_json: dict,
    partition_by: list[str],
    *,
    replace: str | list[PartitionSpec] | None = None,
    snapshot_version: int | None = None,
    app_id: str | None = None,
    evolve_schema: bool = False,
    operation: str = "WRITE",
) -> CommitResult:
    """Commit ``files`` (already inside the table root) as one Delta transaction.

    Call with the table lock held. ``replace`` is None (append), "all" (overwrite) or a
    list of partition specs whose files are removed in the same commit. For overwrites
    and merges pass ``snapshot_version``, the version the new data was computed from: if
    the table moved since, the commit fails instead of silently dropping rows.

    Raises:
        SchemaMismatchError, PartitionMismatchError, ConcurrentWriteError.
    """
    rows = sum(f.num_records for f in files)
    schema_json = nullable_schema(schema_json)
    latest = open_table(uri)
    if latest is None:
        create_table_with_add_actions(
            uri,
            Schema.from_json(json.dumps(schema_json)),
            _add_actions(files),
            mode="error",
            partition_by=partition_by or None,
            commit_properties=_properties(app_id, 1, operation, None),
        )
        return CommitResult(table, 0, len(files), 0, rows)

    previous_txn = latest.transaction_version(app_id) if app_id else None
    if replace is None and previous_txn is not None:
        return CommitResult(table, latest.version(), skipped=True)
    table_partitions = list(latest.metadata().partition_columns)
    if table_partitions != list(partition_by):
        raise PartitionMismatchError(
            f"{table}: partitioned by {table_partitions}, write asked for {list(partition_by)}"
        )
    if snapshot_version is not None and latest.version() != snapshot_version:
        raise ConcurrentWriteError(
            f"{table}: changed from version {snapshot_version} to {latest.version()} while "
            f"this {operation.lower()} ran; nothing was committed, re-run it"
        )
    new_fields = reconcile_schema(table, table_schema_json(latest), schema_json, evolve_schema)
    if new_fields:
        latest.alter.add_columns([Field.from_json(json.dumps(f)) for f in new_fields])
        latest = open_table(uri)
    txn_version = (previous_txn or 0) + 1
    exact = snapshot_version is not None
    for attempt in range(1 if exact else APPEND_RETRIES):
        removes = _remove_actions(latest, replace) if replace is not None else []
        try:
            latest.create_write_transaction(
                removes + _add_actions(files),
                mode="append",
                schema=latest.schema(),
                partition_by=partition_by or None,
                # Overwrite/merge must land right on the snapshot they read; appends may
                # be rebased by delta-rs over concurrent appends.
                commit_properties=_properties(app_id, txn_version, operation, 0 if exact else None),
            )
            break
        except CommitFailedError as exc:
            if exact or attempt == APPEND_RETRIES - 1:
                raise ConcurrentWriteError(
                    f"{table}: a concurrent writer conflicted with this {operation.lower()}: "
                    f"{str(exc).splitlines()[0]}; nothing was committed, re-run it"
                ) from exc
            latest = open_table(uri)
    committed = open_table(uri)
    return CommitResult(table, committed.version(), len(files), len(removes), rows)
