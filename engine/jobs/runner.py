"""Run one stored job (cluster, train, eval) to completion in this process.

The job's work is a blocking function (torch, scikit-learn) run in a worker thread so the
event loop keeps the store writer flushing progress. SIGTERM (``engine.jobs.cancel``) asks
the work to stop at its next checkpoint; the job is then marked ``cancelled`` and a later
``bdc jobs run JOB`` resumes it from that checkpoint.
"""

from __future__ import annotations

import asyncio
import signal
import traceback
from typing import Any, Callable

from engine.errors import BdcError
from engine.jobs.reporter import JobReporter
from engine.store import Store

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
    try:
        result = await asyncio.to_thread(kinds[job.kind], job.config, reporter)
    except BdcError as e:
        await store.finish_job(job_id, "failed", error=str(e))
        return "failed", str(e)
    except Exception as e:  # the job failed; its error is kept for the UI, not raised
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
    return status, result
