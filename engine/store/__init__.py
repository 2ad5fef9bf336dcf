"""SQLite run store: schema + migrations, one batching writer task, tailing readers."""

from engine.store.records import Event, JobRow, RunRow
from engine.store.schema import SCHEMA_VERSION
from engine.store.store import RUN_STATUSES, Store, new_id, pid_alive

__all__ = ["Event", "JobRow", "RunRow", "RUN_STATUSES", "SCHEMA_VERSION", "Store", "new_id", "pid_alive"]
