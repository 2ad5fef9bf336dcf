"""Plain rows read back from the store (what the CLI, TUI and resume consume)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class Event:
    """One entry of a run's append-only log. ``seq`` is dense and starts at 1 per run.

    The one event type of bdc: the store reads it, the search emits and folds it, viewers
    replay it. ``payload`` is the kind's declared type (``engine.search.events``), decoded
    from the stored JSON on first use: a replay holds every event of a run but folds and
    shows one problem at a time, and decoding 50,000 payloads up front would be most of
    the cost of opening it. A kind outside the vocabulary keeps a plain dict.
    """

    __slots__ = ("run_id", "seq", "ts", "kind", "problem_id", "node_id", "_raw", "_payload")

    def __init__(
        self, run_id: str, seq: int, ts: float, kind: str, problem_id: str | None, node_id: str | None, payload: Any
    ) -> None:
        """``payload``: the stored JSON text (decoded lazily), a dict or a typed payload."""
        self.run_id, self.seq, self.ts, self.kind = run_id, seq, ts, kind
        self.problem_id, self.node_id = problem_id, node_id
        self._raw: str | bytes | None
        if isinstance(payload, (str, bytes)):
            self._raw, self._payload = payload, None
        else:
            self._raw, self._payload = None, _events().payload_for(kind, payload)

    @classmethod
    def from_row(cls, row: tuple) -> Event:
        """From ``(run_id, seq, ts, kind, problem_id, node_id, payload_json)``: the store's read
        path, 55,000 times for a long run's replay, so it fills the slots without ``__init__``'s checks."""
        e = cls.__new__(cls)
        e.run_id, e.seq, e.ts, e.kind, e.problem_id, e.node_id, e._raw = row
        e._payload = None
        return e

    @property
    def payload(self) -> Any:
        if self._payload is None:
            self._payload = _events().decode_payload(self.kind, self._raw)
        return self._payload

    def release(self) -> None:
        """Forget the decoded payload of a stored event; the next use decodes it again.

        A replay folds tens of thousands of events once and keeps them to seek in: holding
        their decoded payloads would keep several tracked objects per event alive, which
        every later garbage collection walks (the JSON text is one untracked string)."""
        if self._raw is not None:
            self._payload = None

    def payload_dict(self) -> dict[str, Any]:
        """The payload in its stored JSON form."""
        return _events().payload_dict(self.payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.run_id, self.seq, self.ts, self.kind, self.problem_id, self.node_id, self.payload) == (
            other.run_id,
            other.seq,
            other.ts,
            other.kind,
            other.problem_id,
            other.node_id,
            other.payload,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Event({self.run_id!r}, seq={self.seq}, kind={self.kind!r}, problem={self.problem_id!r})"


def _events() -> Any:
    """``engine.search.events`` (the payload types), imported on first use: the store sits below the search."""
    global _events_module
    if _events_module is None:
        from engine.search import events

        _events_module = events
    return _events_module


_events_module: Any = None


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
    def from_row(cls, row: tuple) -> RunRow:
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
    def from_row(cls, row: tuple) -> JobRow:
        r = list(row)
        r[4] = json.loads(r[4])
        r[12] = json.loads(r[12]) if r[12] else None
        return cls(*r)
