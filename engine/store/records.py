"""Plain rows read back from the store (what the CLI, TUI and resume consume)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One entry of a run's append-only log. ``seq`` is dense and starts at 1 per run."""

    run_id: str
    seq: int
    ts: float
    kind: str
    problem_id: str | None
    node_id: str | None
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: tuple) -> "Event":
        run_id, seq, ts, kind, problem_id, node_id, payload = row
        return cls(run_id, seq, ts, kind, problem_id, node_id, json.loads(payload))


@dataclass
class RunRow:
    id: str
    name: str | None
    kind: str
    status: str
    dataset: str | None
    strategy: str | None
    agents: list[str]
    config: dict[str, Any]
    pid: int | None
    host: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    totals: dict[str, Any] = field(default_factory=dict)

    COLUMNS = (
        "id, name, kind, status, dataset, strategy, agents, config, pid, host, "
        "created_at, started_at, finished_at, error, totals"
    )

    @classmethod
    def from_row(cls, row: tuple) -> "RunRow":
        r = list(row)
        r[6] = json.loads(r[6])
        r[7] = json.loads(r[7])
        r[14] = json.loads(r[14])
        return cls(*r)


@dataclass
class JobRow:
    id: str
    kind: str
    status: str
    run_id: str | None
    config: dict[str, Any]
    progress: float
    message: str | None
    pid: int | None
    host: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result: Any
    error: str | None

    COLUMNS = (
        "id, kind, status, run_id, config, progress, message, pid, host, created_at, "
        "started_at, finished_at, result, error"
    )

    @classmethod
    def from_row(cls, row: tuple) -> "JobRow":
        r = list(row)
        r[4] = json.loads(r[4])
        r[12] = json.loads(r[12]) if r[12] else None
        return cls(*r)
