"""The run store: one SQLite file shared by the engine, the CLI and the TUI.

Why this shape:

* **One writer task** owns the write connection. Callers enqueue writes without waiting
  (``emit``, ``record_llm_call`` ...) or await a write when they need it to be durable
  (``create_run``, ``flush``). The task drains everything queued, groups consecutive
  rows of the same statement into one ``executemany`` and commits once per batch: a
  search emitting thousands of events a second costs a handful of commits.
* **Readers have their own connection** (read-only when the file is written by another
  process), so the TUI can tail a run that a headless ``bdc search`` is writing.
* **WAL mode** lets those readers proceed while the writer commits; ``busy_timeout``
  absorbs brief lock contention between processes.
* Event ``seq`` numbers are dense per run and assigned in memory at ``emit`` time, so the
  caller knows an event's position at once and a reader can tail "after seq N".
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

import aiosqlite

from engine.errors import StoreError
from engine.paths import private_store
from engine.store.records import Event, JobRow, RunRow
from engine.store.schema import SCHEMA_VERSION, migrate

RUN_STATUSES = ("pending", "running", "finished", "interrupted", "failed", "cancelled")

_EVENT_SQL = (
    "INSERT INTO events (run_id, seq, ts, kind, problem_id, node_id, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_LLM_SQL = (
    "INSERT INTO llm_calls (run_id, problem_id, node_id, policy, model, prompt_hash, "
    "reply_hash, tokens_in, tokens_out, cost, latency_s, retries, cached, error, ts) "
    "VALUES (:run_id, :problem_id, :node_id, :policy, :model, :prompt_hash, :reply_hash, "
    ":tokens_in, :tokens_out, :cost, :latency_s, :retries, :cached, :error, :ts)"
)
_SANDBOX_SQL = (
    "INSERT INTO sandbox_runs (run_id, problem_id, node_id, policy, passed, total, "
    "pass_rate, time_s, peak_memory_kb, verdicts, ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def new_id(prefix: str) -> str:
    """Sortable, readable ids: ``r-20261122-001503-3fa2c1``."""
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


class Store:
    """Async facade over the run store. Create with ``await Store.open(path)``."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._wconn: aiosqlite.Connection | None = None
        self._rconn: aiosqlite.Connection | None = None
        self._queue: asyncio.Queue = asyncio.Queue()
        self._writer: asyncio.Task | None = None
        self._seq: dict[str, int] = {}
        self._write_error: BaseException | None = None
        self.batch_limit = 5000
        # write-through map so this process sees its own cache puts before they commit
        self._pending_cache: dict[str, dict] = {}

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, path: str | Path, *, readonly: bool = False) -> "Store":
        path = Path(path).expanduser()
        store = cls(path, readonly)
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(f"no run store at {path}")
                store._rconn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
                await store._rconn.execute("PRAGMA busy_timeout = 5000")
                version = (await (await store._rconn.execute("PRAGMA user_version")).fetchone())[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{path} has schema version {version}, newer than this bdc "
                        f"understands ({SCHEMA_VERSION}); upgrade bdc"
                    )
                if version < SCHEMA_VERSION:
                    raise StoreError(f"{path} has an older schema ({version}); open it once read-write to migrate")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                private_store(path)  # 0600 before SQLite creates it: its -wal/-shm copy the mode
                await asyncio.to_thread(store._migrate_sync)
                store._wconn = await aiosqlite.connect(path, isolation_level=None)
                await store._configure(store._wconn)
                store._rconn = await aiosqlite.connect(path)
                await store._configure(store._rconn)
                store._writer = asyncio.create_task(store._write_loop(), name="bdc-store-writer")
        except sqlite3.DatabaseError as e:
            await store.close()
            raise StoreError(f"cannot open run store {path}: {e}") from e
        except BaseException:
            await store.close()
            raise
        return store

    def _migrate_sync(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(conn)
        finally:
            conn.close()

    @staticmethod
    async def _configure(conn: aiosqlite.Connection) -> None:
        await conn.execute("PRAGMA busy_timeout = 10000")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = NORMAL")

    async def close(self) -> None:
        if self._writer is not None:
            await self.flush()
            self._queue.put_nowait(None)
            await self._writer
            self._writer = None
        for conn in (self._wconn, self._rconn):
            if conn is not None:
                await conn.close()
        self._wconn = self._rconn = None

    async def __aenter__(self) -> "Store":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the writer task
    def _enqueue(self, sql: str, params: Any) -> None:
        if self.readonly:
            raise StoreError("this store was opened read-only")
        if self._write_error is not None:
            raise StoreError(f"the store writer failed: {self._write_error}")
        self._queue.put_nowait((sql, params))

    async def _write_durable(self, sql: str, params: Any = ()) -> None:
        """Enqueue a write and wait until it is committed."""
        self._enqueue(sql, params)
        await self.flush()

    async def flush(self) -> None:
        """Wait until everything enqueued so far is committed."""
        if self._writer is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(fut)
        await fut

    async def _write_loop(self) -> None:
        assert self._wconn is not None
        conn = self._wconn
        while True:
            item = await self._queue.get()
            batch = [item]
            while len(batch) < self.batch_limit:
                try:
                    batch.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            stop = False
            waiters: list[asyncio.Future] = []
            groups: list[tuple[str, list]] = []
            for it in batch:
                if it is None:
                    stop = True
                elif isinstance(it, asyncio.Future):
                    waiters.append(it)
                else:
                    sql, params = it
                    if groups and groups[-1][0] == sql:
                        groups[-1][1].append(params)
                    else:
                        groups.append((sql, [params]))
            if groups:
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                    for sql, rows in groups:
                        await conn.executemany(sql, rows)
                    await conn.execute("COMMIT")
                except Exception as e:  # keep the loop alive; surface the error to waiters
                    self._write_error = e
                    try:
                        await conn.execute("ROLLBACK")
                    except Exception:
                        pass
                    for w in waiters:
                        if not w.done():
                            w.set_exception(StoreError(f"store write failed: {e}"))
                    waiters = []
                    self._write_error = None
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            if stop:
                return

    # ------------------------------------------------------------------ runs
    async def create_run(
        self,
        *,
        dataset: str | None,
        strategy: str | None,
        agents: Iterable[str],
        config: dict[str, Any],
        problems: Iterable[Any] = (),
        kind: str = "search",
        name: str | None = None,
        run_id: str | None = None,
    ) -> str:
        run_id = run_id or new_id("r")
        self._enqueue(
            "INSERT INTO runs (id, name, kind, status, dataset, strategy, agents, config, created_at) "
            "VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
            (run_id, name, kind, dataset, strategy, _dumps(list(agents)), _dumps(config), time.time()),
        )
        for idx, p in enumerate(problems):
            self._enqueue(
                "INSERT INTO run_problems (run_id, idx, problem_id, difficulty, problem) VALUES (?,?,?,?,?)",
                (run_id, idx, p.id, p.difficulty, p.to_json()),
            )
        self._seq[run_id] = 0
        await self.flush()
        return run_id

    async def claim_run(self, run_id: str) -> None:
        """Mark a run as running in this process (pid, host) and load its event counter."""
        await self._write_durable(
            "UPDATE runs SET status='running', pid=?, host=?, started_at=COALESCE(started_at, ?), "
            "error=NULL WHERE id=?",
            (os.getpid(), socket.gethostname(), time.time(), run_id),
        )
        await self._load_seq(run_id)

    async def _load_seq(self, run_id: str) -> None:
        assert self._rconn is not None
        cur = await self._rconn.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?", (run_id,))
        self._seq[run_id] = max(self._seq.get(run_id, 0), (await cur.fetchone())[0])

    async def set_run_status(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        finished = time.time() if status in ("finished", "failed", "cancelled", "interrupted") else None
        await self._write_durable(
            "UPDATE runs SET status=?, error=?, finished_at=COALESCE(?, finished_at) WHERE id=?",
            (status, error, finished, run_id),
        )

    def update_run_totals(self, run_id: str, totals: dict[str, Any]) -> None:
        self._enqueue("UPDATE runs SET totals=? WHERE id=?", (_dumps(totals), run_id))

    def set_problem_result(self, run_id: str, problem_id: str, status: str, result: dict | None) -> None:
        self._enqueue(
            "UPDATE run_problems SET status=?, result=? WHERE run_id=? AND problem_id=?",
            (status, _dumps(result) if result is not None else None, run_id, problem_id),
        )

    async def delete_run(self, run_id: str) -> None:
        await self._write_durable("DELETE FROM runs WHERE id=?", (run_id,))
        for table in ("llm_calls", "sandbox_runs", "metrics"):
            self._enqueue(f"DELETE FROM {table} WHERE run_id=?", (run_id,))
        await self.flush()
        self._seq.pop(run_id, None)

    async def mark_dead_runs_interrupted(self) -> list[str]:
        """Runs and jobs left 'running' by a process on this host that has died -> interrupted."""
        host = socket.gethostname()
        dead: list[str] = []
        for table in ("runs", "jobs"):
            rows = await self._fetchall(f"SELECT id, pid, host FROM {table} WHERE status='running'")
            for rid, pid, rhost in rows:
                if rhost == host and not pid_alive(pid) and pid != os.getpid():
                    self._enqueue(
                        f"UPDATE {table} SET status='interrupted', finished_at=? WHERE id=?",
                        (time.time(), rid),
                    )
                    dead.append(rid)
        await self.flush()
        return dead

    # ------------------------------------------------------------------ events
    def emit(
        self,
        run_id: str,
        kind: str,
        payload: dict[str, Any],
        *,
        problem_id: str | None = None,
        node_id: str | None = None,
    ) -> int:
        """Append one event (not yet durable: ``await flush()`` for that). Returns its seq."""
        if run_id not in self._seq:
            raise StoreError(f"run {run_id} was not created or claimed by this store")
        seq = self._seq[run_id] + 1
        self._seq[run_id] = seq
        self._enqueue(_EVENT_SQL, (run_id, seq, time.time(), kind, problem_id, node_id, _dumps(payload)))
        return seq

    async def events(
        self,
        run_id: str,
        *,
        after: int = 0,
        until: int | None = None,
        kinds: Iterable[str] | None = None,
        problem_id: str | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[Event]:
        """Events of a run with ``after < seq <= until`` in order (tail: pass the last seq seen).

        ``newest`` with ``limit`` keeps the last ``limit`` matching events instead of the first,
        still returned in order: a viewer opens a long run at its end without decoding the rest."""
        sql = "SELECT run_id, seq, ts, kind, problem_id, node_id, payload FROM events WHERE run_id=? AND seq>?"
        params: list[Any] = [run_id, after]
        if until is not None:
            sql += " AND seq<=?"
            params.append(until)
        if kinds:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        if problem_id is not None:
            sql += " AND problem_id=?"
            params.append(problem_id)
        sql += " ORDER BY seq DESC" if newest else " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = await self._fetchall(sql, params)
        return [Event.from_row(r) for r in (reversed(rows) if newest else rows)]

    async def event_rows(self, run_id: str, *, after: int = 0) -> list[tuple]:
        """Like ``events`` but raw ``(run_id, seq, ts, kind, problem_id, node_id, payload_json)``
        rows: a viewer that folds only part of a long run (the TUI replay) decodes what it uses."""
        return await self._fetchall(
            "SELECT run_id, seq, ts, kind, problem_id, node_id, payload FROM events WHERE run_id=? AND seq>? ORDER BY seq",
            (run_id, after),
        )

    async def last_seq(self, run_id: str) -> int:
        row = await self._fetchone("SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?", (run_id,))
        return row[0]

    # ------------------------------------------------------------------ LLM calls, cache, sandbox
    def record_llm_call(self, rec: Any) -> None:
        """Record one LLM call (an ``LLMCallRecord`` or a dict with its columns)."""
        row = dict(rec.to_row() if hasattr(rec, "to_row") else rec)
        row["cached"] = int(bool(row.get("cached", False)))
        row.setdefault("ts", time.time())
        for key in ("run_id", "problem_id", "node_id", "policy", "model", "prompt_hash", "reply_hash", "error"):
            row.setdefault(key, None)
        for key in ("tokens_in", "tokens_out", "cost", "latency_s", "retries"):
            row[key] = row.get(key) or 0
        self._enqueue(_LLM_SQL, row)

    async def cache_get(self, key: str) -> dict | None:
        row = await self._fetchone("SELECT value FROM llm_cache WHERE key=?", (key,))
        if row is not None:
            return json.loads(row[0])
        # a value put a moment ago may still be queued: it is in the pending map
        return self._pending_cache.get(key)

    def cache_put(self, key: str, model: str, value: dict) -> None:
        self._pending_cache[key] = value
        self._enqueue(
            "INSERT OR REPLACE INTO llm_cache (key, model, value, created_at) VALUES (?,?,?,?)",
            (key, model, _dumps(value), time.time()),
        )

    def record_sandbox_run(
        self,
        *,
        run_id: str | None,
        problem_id: str | None,
        node_id: str | None,
        policy: str | None,
        result: Any,
    ) -> None:
        """Record an ``engine.sandbox.ExecutionResult`` (or its dict)."""
        d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        tests = d.get("results", [])
        passed = sum(1 for t in tests if t.get("verdict") == "passed")
        self._enqueue(
            _SANDBOX_SQL,
            (
                run_id, problem_id, node_id, policy, passed, len(tests),
                passed / len(tests) if tests else 0.0,
                sum(t.get("time_s", 0) or 0 for t in tests),
                max((t.get("peak_memory_kb", 0) or 0 for t in tests), default=0),
                _dumps(tests), time.time(),
            ),
        )

    async def llm_calls(self, run_id: str, *, problem_id: str | None = None, node_id: str | None = None) -> list[dict]:
        return await self._rows_of_run("llm_calls", run_id, problem_id, node_id)

    async def sandbox_runs(self, run_id: str, problem_id: str | None = None, node_id: str | None = None) -> list[dict]:
        """Sandbox results recorded for a run (optionally one problem / node), oldest first.

        ``verdicts`` is decoded back to the per-test list ``record_sandbox_run`` stored
        (an undecodable value reads as ``[]`` so a viewer never fails on one bad row).
        """
        rows = await self._rows_of_run("sandbox_runs", run_id, problem_id, node_id)
        for r in rows:
            try:
                r["verdicts"] = json.loads(r.get("verdicts") or "[]")
            except ValueError:
                r["verdicts"] = []
        return rows

    async def llm_totals(self, run_id: str) -> dict[str, float]:
        row = await self._fetchone(
            "SELECT COUNT(*), COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0), COALESCE(SUM(cost),0), "
            "COALESCE(SUM(cached),0) FROM llm_calls WHERE run_id=?",
            (run_id,),
        )
        return dict(zip(("calls", "tokens_in", "tokens_out", "cost", "cached"), row))

    # ------------------------------------------------------------------ jobs and metrics
    async def create_job(self, kind: str, config: dict[str, Any], *, run_id: str | None = None, job_id: str | None = None) -> str:
        job_id = job_id or new_id("j")
        await self._write_durable(
            "INSERT INTO jobs (id, kind, status, run_id, config, created_at) VALUES (?,?,?,?,?,?)",
            (job_id, kind, "pending", run_id, _dumps(config), time.time()),
        )
        return job_id

    async def claim_job(self, job_id: str) -> None:
        await self._write_durable(
            "UPDATE jobs SET status='running', pid=?, host=?, started_at=COALESCE(started_at, ?), error=NULL WHERE id=?",
            (os.getpid(), socket.gethostname(), time.time(), job_id),
        )

    def job_progress(self, job_id: str, progress: float, message: str | None = None) -> None:
        self._enqueue("UPDATE jobs SET progress=?, message=COALESCE(?, message) WHERE id=?", (progress, message, job_id))

    async def finish_job(self, job_id: str, status: str, *, result: Any = None, error: str | None = None) -> None:
        await self._write_durable(
            "UPDATE jobs SET status=?, result=COALESCE(?, result), error=?, finished_at=? WHERE id=?",
            (status, _dumps(result) if result is not None else None, error, time.time(), job_id),
        )

    def metric(self, name: str, value: float, *, step: int | None = None, job_id: str | None = None, run_id: str | None = None) -> None:
        self._enqueue(
            "INSERT INTO metrics (job_id, run_id, name, step, value, ts) VALUES (?,?,?,?,?,?)",
            (job_id, run_id, name, step, float(value), time.time()),
        )

    async def jobs(self, *, kind: str | None = None) -> list[JobRow]:
        sql = f"SELECT {JobRow.COLUMNS} FROM jobs"
        params: list[Any] = []
        if kind:
            sql += " WHERE kind=?"
            params.append(kind)
        return [JobRow.from_row(r) for r in await self._fetchall(sql + " ORDER BY created_at DESC", params)]

    async def job(self, job_id: str) -> JobRow | None:
        row = await self._fetchone(f"SELECT {JobRow.COLUMNS} FROM jobs WHERE id=?", (job_id,))
        return JobRow.from_row(row) if row else None

    async def metrics(self, job_id: str, name: str | None = None, *, after_id: int = 0) -> list[dict]:
        sql = "SELECT id, name, step, value, ts FROM metrics WHERE job_id=? AND id>?"
        params: list[Any] = [job_id, after_id]
        if name:
            sql += " AND name=?"
            params.append(name)
        return await self._fetchdicts(sql + " ORDER BY id", params)

    # ------------------------------------------------------------------ run readers
    async def runs(self, *, kind: str | None = None) -> list[RunRow]:
        sql = f"SELECT {RunRow.COLUMNS} FROM runs"
        params: list[Any] = []
        if kind:
            sql += " WHERE kind=?"
            params.append(kind)
        return [RunRow.from_row(r) for r in await self._fetchall(sql + " ORDER BY created_at DESC", params)]

    async def run(self, run_id: str) -> RunRow:
        row = await self._fetchone(f"SELECT {RunRow.COLUMNS} FROM runs WHERE id=?", (run_id,))
        if row is None:
            # allow unambiguous prefixes, as git does
            rows = await self._fetchall(f"SELECT {RunRow.COLUMNS} FROM runs WHERE id LIKE ?", (run_id + "%",))
            if len(rows) != 1:
                raise StoreError(f"no run {run_id!r} in {self.path}" if not rows else f"run id {run_id!r} is ambiguous")
            row = rows[0]
        return RunRow.from_row(row)

    async def run_problems(self, run_id: str) -> list[dict]:
        rows = await self._fetchdicts(
            "SELECT idx, problem_id, difficulty, problem, status, result FROM run_problems WHERE run_id=? ORDER BY idx",
            (run_id,),
        )
        for r in rows:
            r["problem"] = json.loads(r["problem"])
            r["result"] = json.loads(r["result"]) if r["result"] else None
        return rows

    # ------------------------------------------------------------------ helpers
    async def _rows_of_run(self, table: str, run_id: str, problem_id: str | None, node_id: str | None) -> list[dict]:
        """Rows of a per-run record table, optionally of one problem / node, oldest first."""
        sql = f"SELECT * FROM {table} WHERE run_id=?"
        params: list[Any] = [run_id]
        for column, value in (("problem_id", problem_id), ("node_id", node_id)):
            if value is not None:
                sql += f" AND {column}=?"
                params.append(value)
        return await self._fetchdicts(sql + " ORDER BY id", params)

    async def _fetchall(self, sql: str, params: Any = ()) -> list[tuple]:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Any = ()) -> tuple | None:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetchdicts(self, sql: str, params: Any = ()) -> list[dict]:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in await cur.fetchall()]
