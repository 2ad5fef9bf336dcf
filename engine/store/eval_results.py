"""Per-problem evaluation results in the run store (table ``eval_results``, migration 4).

An evaluation is identified by its ``eval_key``, a fingerprint of what it evaluates
(solvers, datasets, base, artifacts, decoding): running the same `bdc eval` again, or
`bdc jobs run JOB`, finds the results already there and continues. The evaluation runs in
a worker thread with its own event loop, so this module uses a plain ``sqlite3``
connection (WAL + busy timeout lets it write beside the store's writer task); each result
is committed as it lands, so a crash loses at most the problems in flight.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from engine.evaluation.tables import ProblemResult

_COLUMNS = (
    "problem_id",
    "dataset",
    "difficulty",
    "status",
    "pass_rate",
    "passed",
    "scored",
    "program",
    "error",
    "attempts",
)
# what an evaluation's results depend on; batch size, retries and output folders do not change them
KEY_FIELDS = (
    "solvers",
    "datasets",
    "base",
    "artifacts",
    "quant",
    "max_new_tokens",
    "samples",
    "samples_sha256",
    "model_files",
)


def eval_key(config: dict[str, Any]) -> str:
    """Fingerprint of the evaluation a job config describes (``model_files``: a fingerprint
    of the model files it reads, engine/evaluation/job.py)."""
    picked = {k: config.get(k) for k in KEY_FIELDS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


class EvalResults:
    """Reader/writer of one store's ``eval_results``; use from a single thread."""

    def __init__(self, db: str | Path) -> None:
        self.conn = sqlite3.connect(str(db), timeout=10.0, isolation_level=None)
        self.conn.execute("PRAGMA busy_timeout = 10000")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> EvalResults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, key: str, solver: str) -> dict[str, ProblemResult]:
        """The stored results of ``solver`` in evaluation ``key``, by problem id."""
        rows = self.conn.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM eval_results WHERE eval_key=? AND solver=?", (key, solver)
        ).fetchall()
        out = {}
        for row in rows:
            d = dict(zip(_COLUMNS, row))
            d["passed"], d["scored"] = bool(d["passed"]), bool(d["scored"])
            out[d["problem_id"]] = ProblemResult(**d)
        return out

    def save(self, key: str, job_id: str | None, solver: str, r: ProblemResult) -> None:
        """Insert or replace one result (committed at once)."""
        self.conn.execute(
            f"INSERT OR REPLACE INTO eval_results (eval_key, job_id, solver, {', '.join(_COLUMNS)}, ts) "
            f"VALUES (?,?,?,{','.join('?' * len(_COLUMNS))},?)",
            (
                key,
                job_id,
                solver,
                r.problem_id,
                r.dataset,
                r.difficulty,
                r.status,
                float(r.pass_rate),
                int(r.passed),
                int(r.scored),
                r.program or "",
                r.error,
                int(r.attempts),
                time.time(),
            ),
        )

    def clear(self, key: str) -> int:
        """Forget evaluation ``key`` (``bdc eval --fresh``); returns the rows removed."""
        return self.conn.execute("DELETE FROM eval_results WHERE eval_key=?", (key,)).rowcount

    def statuses(self, key: str) -> dict[str, dict[str, int]]:
        """{solver: {status: count}} of evaluation ``key``."""
        out: dict[str, dict[str, int]] = {}
        for solver, status, n in self.conn.execute(
            "SELECT solver, status, COUNT(*) FROM eval_results WHERE eval_key=? GROUP BY solver, status", (key,)
        ):
            out.setdefault(solver, {})[status] = n
        return out
