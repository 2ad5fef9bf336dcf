"""Start engine work in its own process, detached from whoever asked for it.

A search, training or evaluation started from the TUI runs as ``bdc --db DB resume RUN``
(or ``bdc jobs run JOB``) in a new session: closing the TUI does not stop it, and the TUI
follows it through the store exactly as it follows a headless ``bdc search`` started on a
server. The process's output goes to its log file (``engine.logs.log_dir``), where the
process's own log records go too.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.logs import log_dir
from engine.paths import open_private
from engine.store import pid_alive

__all__ = ["cancel", "launch_job", "launch_run", "log_dir"]

log = logging.getLogger(__name__)


def _spawn(db_path: str | Path, args: list[str], log_name: str) -> int:
    log_file = log_dir(db_path) / log_name
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    with open_private(log_file, "ab") as out:  # owner-only: it holds what the run logged
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "--db", str(db_path), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    log.info("started `bdc %s` as pid %d, logging to %s", " ".join(args), proc.pid, log_file)
    return proc.pid


def launch_run(db_path: str | Path, run_id: str) -> int:
    """Run (or continue) a stored run in a detached process; returns its pid."""
    return _spawn(db_path, ["resume", run_id], f"{run_id}.log")


def launch_job(db_path: str | Path, job_id: str) -> int:
    """Run a stored train/eval/cluster job in a detached process; returns its pid."""
    return _spawn(db_path, ["jobs", "run", job_id], f"{job_id}.log")


def cancel(pid: int | None) -> bool:
    """Ask a run or job process to stop (SIGTERM: it marks itself cancelled). False if gone."""
    if not pid or not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
