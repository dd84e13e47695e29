"""Delta tables written by Spark and committed with delta-rs (see DESIGN.md)."""

from contactlake.lake.commit import CommitResult
from contactlake.lake.errors import (
    ConcurrentWriteError,
    InvalidDataFileError,
    LakeError,
    LockTimeoutError,
    PartitionMismatchError,
    SchemaMismatchError,
    TableNotFoundError,
    UnsupportedTableError,
)
from contactlake.lake.table import Lake

__all__ = [
    "CommitResult",
    "ConcurrentWriteError",
    "InvalidDataFileError",
    "Lake",
    "LakeError",
    "LockTimeoutError",
    "PartitionMismatchError",
    "SchemaMismatchError",
    "TableNotFoundError",
    "UnsupportedTableError",
]
