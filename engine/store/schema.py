"""Schema of the run store and its ordered migrations.

The schema version lives in ``PRAGMA user_version``. Migration *i* (1-based) upgrades a
database from version *i-1* to *i*; a fresh file runs them all. A database whose version
is newer than ``SCHEMA_VERSION`` was written by a newer bdc and is refused rather than
guessed at.
"""

from __future__ import annotations

import sqlite3

from engine.errors import StoreError

MIGRATIONS: list[str] = [
    # 1: runs, the problems of a run, and the append-only event log (the spine)
    """
    CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        name        TEXT,
        kind        TEXT NOT NULL DEFAULT 'search',
        status      TEXT NOT NULL,
        dataset     TEXT,
        strategy    TEXT,
        agents      TEXT NOT NULL DEFAULT '[]',
        config      TEXT NOT NULL DEFAULT '{}',
        pid         INTEGER,
        host        TEXT,
        created_at  REAL NOT NULL,
        started_at  REAL,
        finished_at REAL,
        error       TEXT,
        totals      TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE run_problems (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        problem_id  TEXT NOT NULL,
        difficulty  TEXT,
        problem     TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending',
        result      TEXT,
        PRIMARY KEY (run_id, problem_id)
    );
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        seq         INTEGER NOT NULL,
        ts          REAL NOT NULL,
        kind        TEXT NOT NULL,
        problem_id  TEXT,
        node_id     TEXT,
        payload     TEXT NOT NULL,
        UNIQUE (run_id, seq)
    );
    CREATE INDEX events_by_kind ON events (run_id, kind, seq);
    """,
    # 2: what the search pays for and executes: LLM calls, the reply cache, sandbox runs
    """
    CREATE TABLE llm_calls (
        id          INTEGER PRIMARY KEY,
        run_id      TEXT,
        problem_id  TEXT,
        node_id     TEXT,
        policy      TEXT,
        model       TEXT,
        prompt_hash TEXT,
        reply_hash  TEXT,
        tokens_in   INTEGER NOT NULL DEFAULT 0,
        tokens_out  INTEGER NOT NULL DEFAULT 0,
        cost        REAL NOT NULL DEFAULT 0,
        latency_s   REAL NOT NULL DEFAULT 0,
        retries     INTEGER NOT NULL DEFAULT 0,
        cached      INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        ts          REAL NOT NULL
    );
    CREATE INDEX llm_calls_by_node ON llm_calls (run_id, problem_id, node_id);
    CREATE TABLE llm_cache (
        key         TEXT PRIMARY KEY,
        model       TEXT,
        value       TEXT NOT NULL,
        created_at  REAL NOT NULL
    );
    CREATE TABLE sandbox_runs (
        id          INTEGER PRIMARY KEY,
        run_id      TEXT,
        problem_id  TEXT,
        node_id     TEXT,
        policy      TEXT,
        passed      INTEGER NOT NULL,
        total       INTEGER NOT NULL,
        pass_rate   REAL NOT NULL,
        time_s      REAL NOT NULL DEFAULT 0,
        peak_memory_kb INTEGER NOT NULL DEFAULT 0,
        verdicts    TEXT NOT NULL DEFAULT '[]',
        ts          REAL NOT NULL
    );
    CREATE INDEX sandbox_runs_by_node ON sandbox_runs (run_id, problem_id, node_id);
    """,
    # 3: background jobs (search, cluster, train, eval) and their metric series
    """
    CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        run_id      TEXT,
        config      TEXT NOT NULL DEFAULT '{}',
        progress    REAL NOT NULL DEFAULT 0,
        message     TEXT,
        pid         INTEGER,
        host        TEXT,
        created_at  REAL NOT NULL,
        started_at  REAL,
        finished_at REAL,
        result      TEXT,
        error       TEXT
    );
    CREATE TABLE metrics (
        id          INTEGER PRIMARY KEY,
        job_id      TEXT,
        run_id      TEXT,
        name        TEXT NOT NULL,
        step        INTEGER,
        value       REAL NOT NULL,
        ts          REAL NOT NULL
    );
    CREATE INDEX metrics_by_job ON metrics (job_id, name, step);
    """,
    # 4: per-problem evaluation results, so `bdc eval` resumes and retries only what failed
    # (engine/store/eval_results.py); eval_key fingerprints what is evaluated
    """
    CREATE TABLE eval_results (
        eval_key    TEXT NOT NULL,
        job_id      TEXT,
        solver      TEXT NOT NULL,
        problem_id  TEXT NOT NULL,
        dataset     TEXT,
        difficulty  TEXT,
        status      TEXT NOT NULL,
        pass_rate   REAL NOT NULL DEFAULT 0,
        passed      INTEGER NOT NULL DEFAULT 0,
        scored      INTEGER NOT NULL DEFAULT 1,
        program     TEXT NOT NULL DEFAULT '',
        error       TEXT,
        attempts    INTEGER NOT NULL DEFAULT 1,
        ts          REAL NOT NULL,
        PRIMARY KEY (eval_key, solver, problem_id)
    );
    CREATE INDEX eval_results_by_job ON eval_results (job_id);
    """,
    # 5: facts about the store itself (e.g. demo = 1: every screen says it shows demo data)
    """
    CREATE TABLE meta (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
    );
    """,
    # 6: LLM calls in flight and their token count so far (engine/store/call_progress.py): a row
    # lives while its call runs and is updated at most once a second, so nothing per token
    # reaches the event log
    """
    CREATE TABLE call_progress (
        call_id     TEXT PRIMARY KEY,
        run_id      TEXT NOT NULL,
        problem_id  TEXT,
        node_id     TEXT,
        policy      TEXT,
        model       TEXT,
        kind        TEXT,
        tokens      INTEGER NOT NULL DEFAULT 0,
        started_at  REAL NOT NULL,
        updated_at  REAL NOT NULL
    );
    CREATE INDEX call_progress_by_run ON call_progress (run_id);
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


def check_version(conn: sqlite3.Connection) -> int:
    """``conn``'s schema version; a newer one than this bdc knows is refused (reading only)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"this database has schema version {version}, newer than this bdc understands "
            f"({SCHEMA_VERSION}); upgrade bdc or point --db at another file"
        )
    return version


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn``'s database to ``SCHEMA_VERSION``; refuse a newer one. Returns old version."""
    version = check_version(conn)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.executescript("BEGIN;\n" + MIGRATIONS[target - 1] + f"\nPRAGMA user_version = {target};\nCOMMIT;")
    return version
