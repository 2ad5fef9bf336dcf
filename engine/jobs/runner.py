"""Run one stored job (cluster, train, eval) to completion in this process.

The job's work is a blocking function (torch, scikit-learn) run in a worker thread so the
event loop keeps the store writer flushing progress. SIGTERM (``engine.jobs.cancel``) asks
the work to stop at its next checkpoint; the job is then marked ``cancelled`` and a later
``bdc jobs run JOB`` resumes it from that checkpoint.

Each job logs to its own file (``logs/<job id>.log`` beside the store), tracebacks included;
the store keeps the one-line reason the CLI and the TUI show.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import traceback
from collections.abc import Callable
from typing import Any

from engine.errors import BdcError
from engine.jobs.reporter import JobReporter
from engine.logs import log_dir, log_exception, log_file
from engine.store import Store

log = logging.getLogger(__name__)

Work = Callable[[dict[str, Any], JobReporter], Any]


def job_kinds() -> dict[str, Work]:
    """Kinds of jobs and the function that runs each (imported lazily: torch is heavy)."""
    from engine.jobs import kinds

    return kinds.KINDS


async def execute_job(
    store: Store, job_id: str, *, echo: Callable[[dict[str, Any]], None] | None = None
) -> tuple[str, Any]:
    """Run job ``job_id``; returns its final status (finished, cancelled, failed) and result.

    ``echo`` also receives every progress event (the CLI draws a Rich progress bar with it).
    """
    job = await store.job(job_id)
    if job is None:
        raise BdcError(f"no job {job_id!r} in {store.path}")
    kinds = job_kinds()
    if job.kind not in kinds:
        raise BdcError(f"job {job_id} has unknown kind {job.kind!r}; known: {', '.join(kinds)}")
    with log_file(log_dir(store.path) / f"{job_id}.log"):
        return await _execute(store, job_id, job.kind, job.config, kinds[job.kind], echo)


async def _execute(
    store: Store,
    job_id: str,
    kind: str,
    config: dict[str, Any],
    work: Work,
    echo: Callable[[dict[str, Any]], None] | None,
) -> tuple[str, Any]:
    loop = asyncio.get_running_loop()
    reporter = JobReporter(store, job_id, loop, echo=echo)
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, reporter.stop_event.set)
            previous[sig] = True
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    await store.claim_job(job_id)
    log.info("job %s (%s) started: %s", job_id, kind, config)
    try:
        result = await asyncio.to_thread(work, config, reporter)
    except BdcError as e:
        log.error("job %s failed: %s", job_id, e, exc_info=True, extra={"console": False})
        await store.finish_job(job_id, "failed", error=str(e))
        return "failed", str(e)
    except Exception as e:  # the job failed; its error is kept for the UI, not raised
        log_exception(e)
        error = f"{type(e).__name__}: {e}"
        await store.finish_job(job_id, "failed", error=f"{error}\n{traceback.format_exc(limit=5)}")
        return "failed", error
    finally:
        for sig in previous:
            loop.remove_signal_handler(sig)
    await store.flush()
    status = "cancelled" if reporter.should_stop() else "finished"
    if status == "finished":
        store.job_progress(job_id, 1.0)
    await store.finish_job(job_id, status, result=result)
    log.info("job %s %s", job_id, status)
    return status, result
