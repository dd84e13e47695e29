"""Errors raised by the lake layer; each message names the table and what is wrong."""


class LakeError(Exception):
    """Base class of every lake-layer error."""


class TableNotFoundError(LakeError):
    pass


class SchemaMismatchError(LakeError):
    pass


class PartitionMismatchError(LakeError):
    pass


class InvalidDataFileError(LakeError):
    """A data file that must not be committed (INT96 timestamps, missing, unreadable)."""


class ConcurrentWriteError(LakeError):
    """Another writer changed the table in a way that conflicts with this commit."""


class LockTimeoutError(LakeError):
    pass


class UnsupportedTableError(LakeError):
    """A Delta table using features the Spark reader here cannot honour."""
