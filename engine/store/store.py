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
* **A failed write is sticky and loud.** When a batch cannot be committed, it is rolled back
  as a whole and the writer stops writing: every later write and flush raises
  ``StoreWriteError`` with the reason, and the runs this store claimed are marked failed with
  it. So the file always holds a dense prefix of every run's log (no later batch can commit
  past the hole), and nothing is lost without a word: the caller that emits next, the
  flush waiter and the run's status all say why. The rows that were not written stay in
  ``Store.unwritten`` for whoever handles the failure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiosqlite

from engine.errors import StoreError, StoreWriteError
from engine.gcpause import gc_paused
from engine.paths import private_store
from engine.store.records import Event, JobRow, RunRow
from engine.store.schema import SCHEMA_VERSION, check_version, migrate

log = logging.getLogger(__name__)

RUN_STATUSES = ("pending", "running", "finished", "interrupted", "failed", "cancelled")

_EVENT_SQL = "INSERT INTO events (run_id, seq, ts, kind, problem_id, node_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?)"
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


def _payload_json(kind: str, payload: Any) -> str:
    from engine.search.events import payload_dict, payload_for

    return _dumps(payload_dict(payload_for(kind, payload)))


def _ensure_directory(path: Path) -> None:
    """The store's directory must exist, except bdc's own data directory, which is created.

    A mistyped ``--db typo/dir/x.db`` must not silently make directories and an empty store."""
    from engine.paths import data_dir

    parent = path.parent
    if parent.is_dir():
        return
    if parent.resolve() == data_dir().resolve():
        parent.mkdir(parents=True, exist_ok=True)
        return
    raise StoreError(f"cannot open run store {path}: directory {parent} does not exist")


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
        self._write_error: StoreWriteError | None = None
        self._error_surfaced = False  # the sticky error was raised to some caller
        self._claimed: set[str] = set()  # runs this store writes: marked failed if the writer fails
        self.unwritten: list[tuple[str, Any]] = []  # rows a failed batch could not commit
        self.batch_limit = 5000
        # write-through map so this process sees its own cache puts before they commit
        self._pending_cache: dict[str, dict] = {}

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    async def open(cls, path: str | Path, *, readonly: bool = False) -> Store:
        path = Path(path).expanduser()
        store = cls(path, readonly)
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(f"no run store at {path}")
                store._rconn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True)
                await store._rconn.execute("PRAGMA busy_timeout = 5000")
                version = await _scalar(store._rconn, "PRAGMA user_version")
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{path} has schema version {version}, newer than this bdc "
                        f"understands ({SCHEMA_VERSION}); upgrade bdc"
                    )
                if version < SCHEMA_VERSION:
                    raise StoreError(f"{path} has an older schema ({version}); open it once read-write to migrate")
            else:
                _ensure_directory(path)
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
            # refuse a newer schema before anything changes the file (WAL rewrites its header)
            check_version(conn)
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
        """Flush and close. A writer failure nobody was told about yet is raised here."""
        surfaced = self._error_surfaced
        try:
            if self._writer is not None:
                try:
                    await self.flush()
                finally:
                    self._queue.put_nowait(None)
                    await self._writer
                    self._writer = None
        except StoreWriteError:
            if not surfaced:
                raise
        finally:
            for conn in (self._wconn, self._rconn):
                if conn is not None:
                    await conn.close()
            self._wconn = self._rconn = None

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ the writer task
    @property
    def write_error(self) -> StoreWriteError | None:
        """Why the writer stopped (None while it works)."""
        return self._write_error

    def _raise_write_error(self) -> None:
        assert self._write_error is not None
        self._error_surfaced = True
        raise self._write_error

    def _enqueue(self, sql: str, params: Any) -> None:
        if self.readonly:
            raise StoreError("this store was opened read-only")
        if self._write_error is not None:
            self._raise_write_error()
        self._queue.put_nowait((sql, params))

    async def _write_durable(self, sql: str, params: Any = ()) -> None:
        """Enqueue a write and wait until it is committed."""
        self._enqueue(sql, params)
        await self.flush()

    async def flush(self) -> None:
        """Wait until everything enqueued so far is committed."""
        if self._writer is None:
            return
        if self._write_error is not None:
            self._raise_write_error()
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(fut)
        try:
            await fut
        except StoreWriteError:
            self._error_surfaced = True
            raise

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
            if groups and self._write_error is None:
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                    for sql, rows in groups:
                        await conn.executemany(sql, rows)
                    await conn.execute("COMMIT")
                except Exception as e:  # sticky: nothing after a lost batch may commit
                    try:
                        await conn.execute("ROLLBACK")
                    except Exception:  # noqa: BLE001 - the rollback of a failed batch may fail too
                        pass
                    lost = [(sql, p) for sql, rows in groups for p in rows]
                    self.unwritten.extend(lost)
                    self._write_error = StoreWriteError(
                        f"the run store {self.path} could not be written ({type(e).__name__}: {e}); "
                        f"{len(lost)} queued writes were not saved and nothing more will be written"
                    )
                    log.error("%s", self._write_error)
                    await self._mark_claimed_runs_failed(conn)
            elif groups:  # queued before the failure was seen: kept, not written
                self.unwritten.extend((sql, p) for sql, rows in groups for p in rows)
            if self._write_error is not None:
                for w in waiters:
                    if not w.done():
                        w.set_exception(self._write_error)
                waiters = []
            for w in waiters:
                if not w.done():
                    w.set_result(None)
            if stop:
                return

    async def _mark_claimed_runs_failed(self, conn: aiosqlite.Connection) -> None:
        """Best effort after a failed batch: the runs this store was writing say why they stopped.

        Only the ``runs`` rows change (no event), so every log stays a dense prefix; if even this
        fails, the run stays 'running' with a dead pid and is later marked interrupted."""
        if not self._claimed:
            return
        try:
            await conn.execute("BEGIN IMMEDIATE")
            await conn.executemany(
                "UPDATE runs SET status='failed', error=?, finished_at=? WHERE id=? AND status='running'",
                [(str(self._write_error), time.time(), rid) for rid in sorted(self._claimed)],
            )
            await conn.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - the store is already failing; the first error is what counts
            log.error("could not mark runs failed after the write failure: %s", e)
            try:
                await conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001
                pass

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
        self._claimed.add(run_id)
        await self._load_seq(run_id)

    async def _load_seq(self, run_id: str) -> None:
        assert self._rconn is not None
        last = await _scalar(self._rconn, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?", (run_id,))
        self._seq[run_id] = max(self._seq.get(run_id, 0), last)

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
                    if table == "runs":  # its calls died with it
                        from engine.store.call_progress import clear_calls

                        clear_calls(self, rid)
                    dead.append(rid)
        await self.flush()
        return dead

    # ------------------------------------------------------------------ events
    def emit(
        self,
        run_id: str,
        kind: str,
        payload: Any,
        *,
        problem_id: str | None = None,
        node_id: str | None = None,
    ) -> int:
        """Append one event (not yet durable: ``await flush()`` for that). Returns its seq.

        ``payload`` is the kind's typed payload or a dict, which is validated against the
        kind's declared type (``engine.search.events``) before anything is queued."""
        if run_id not in self._seq:
            raise StoreError(f"run {run_id} was not created or claimed by this store")
        data = _payload_json(kind, payload)
        seq = self._seq[run_id] + 1
        self._enqueue(_EVENT_SQL, (run_id, seq, time.time(), kind, problem_id, node_id, data))
        self._seq[run_id] = seq  # only once queued: a refused event leaves no hole
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

        Payloads stay JSON until first used (``Event.payload``), so a viewer that folds only
        part of a long run decodes only what it uses.

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
        with gc_paused():  # tens of thousands of tracked objects at once; see engine/gcpause.py
            return [Event.from_row(r) for r in (reversed(rows) if newest else rows)]

    async def last_seq(self, run_id: str) -> int:
        assert self._rconn is not None, "store is closed"
        return int(await _scalar(self._rconn, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id=?", (run_id,)))

    # ------------------------------------------------------------------ LLM calls, cache, sandbox
    def record_llm_call(self, rec: Any) -> None:
        """Record one LLM call (an ``LLMCallRecord`` or a dict with its columns)."""
        row = dict(rec) if isinstance(rec, Mapping) else rec.to_row()
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
        d = dict(result) if isinstance(result, Mapping) else result.to_dict()
        tests = d.get("results", [])
        passed = sum(1 for t in tests if t.get("verdict") == "passed")
        self._enqueue(
            _SANDBOX_SQL,
            (
                run_id,
                problem_id,
                node_id,
                policy,
                passed,
                len(tests),
                passed / len(tests) if tests else 0.0,
                sum(t.get("time_s", 0) or 0 for t in tests),
                max((t.get("peak_memory_kb", 0) or 0 for t in tests), default=0),
                _dumps(tests),
                time.time(),
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
        assert row is not None  # an aggregate always has its one row
        return dict(zip(("calls", "tokens_in", "tokens_out", "cost", "cached"), row))

    # ------------------------------------------------------------------ jobs and metrics
    async def create_job(
        self, kind: str, config: dict[str, Any], *, run_id: str | None = None, job_id: str | None = None
    ) -> str:
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
        self._enqueue(
            "UPDATE jobs SET progress=?, message=COALESCE(?, message) WHERE id=?", (progress, message, job_id)
        )

    async def finish_job(self, job_id: str, status: str, *, result: Any = None, error: str | None = None) -> None:
        await self._write_durable(
            "UPDATE jobs SET status=?, result=COALESCE(?, result), error=?, finished_at=? WHERE id=?",
            (status, _dumps(result) if result is not None else None, error, time.time(), job_id),
        )

    def metric(
        self, name: str, value: float, *, step: int | None = None, job_id: str | None = None, run_id: str | None = None
    ) -> None:
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

    # ------------------------------------------------------------------ the store's own facts
    async def set_meta(self, key: str, value: str) -> None:
        await self._write_durable("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    async def meta(self, key: str) -> str | None:
        row = await self._fetchone("SELECT value FROM meta WHERE key=?", (key,))
        return row[0] if row else None

    async def is_demo(self) -> bool:
        """A store ``bdc_tui.demo`` built: what it shows is demo data, not a user's results."""
        return await self.meta("demo") == "1"

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

    async def _fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def _fetchone(self, sql: str, params: Any = ()) -> Any | None:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _fetchdicts(self, sql: str, params: Any = ()) -> list[dict]:
        assert self._rconn is not None, "store is closed"
        async with self._rconn.execute(sql, params) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in await cur.fetchall()]


async def _scalar(conn: aiosqlite.Connection, sql: str, params: Any = ()) -> Any:
    """The one value of a query that always returns one row (an aggregate, a PRAGMA)."""
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    assert row is not None, sql
    return row[0]
