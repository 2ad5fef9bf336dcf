"""Generate with a solver and score through the sandbox.

Generation is blocking torch work, so it runs in a worker thread (``asyncio.to_thread``)
while the event loop keeps scoring the previous batch in the sandbox.

A problem whose generation or sandbox run fails is recorded with status ``error`` and the
reason, and left out of PR/AC (never a silent 0). ``previous`` results (from the run store)
are kept, so an interrupted evaluation resumes; ``retry_errors`` re-runs the failures
(regenerating only when generation failed). ``generate_only`` stops after generation
(status ``generated``): a later call with those results as ``previous`` scores them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.evaluation.codegen import build_program
from engine.evaluation.tables import ProblemResult
from engine.training.examples import solve_prompt

log = logging.getLogger(__name__)


def problem_input(problem: Any) -> str:
    """What a solver sees: the problem statement (public view) in the training format."""
    return solve_prompt(problem.statement, getattr(problem, "starter_code", "") or "")


def _result(problem: Any, **kw: Any) -> ProblemResult:
    kw.setdefault("pass_rate", 0.0)
    kw.setdefault("passed", False)
    return ProblemResult(problem.id, problem.dataset, problem.difficulty, **kw)


async def score_program(sandbox: Any, problem: Any, program: str) -> ProblemResult:
    """Score ``program`` on ``problem``'s private tests; a sandbox failure is an ``error``."""
    if not problem.scorable:  # no private test apart from the public ones: never scored on those
        return _result(problem, program=program, scored=False)
    try:
        res = await sandbox.run(program, problem, list(problem.private_tests))
    except Exception as e:
        log.warning("sandbox failed on %s: %r", problem.id, e, exc_info=True, extra={"console": False})
        return _result(problem, program=program, error=f"sandbox: {type(e).__name__}: {e}")
    return _result(problem, program=program, pass_rate=float(res.pass_rate), passed=bool(res.passed))


async def evaluate(
    solver: Any,
    problems: Sequence[Any],
    *,
    sandbox: Any = None,
    batch_size: int = 1,
    workers: int = 2,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    previous: Mapping[str, ProblemResult] | None = None,
    retry_errors: int = 0,
    generate_only: bool = False,
    on_result: Callable[[ProblemResult], None] | None = None,
) -> list[ProblemResult]:
    """Score ``solver`` on ``problems`` (private tests; a problem that is not ``scorable`` is
    recorded with ``scored=False`` and left out of PR/AC). ``sandbox`` is an open Sandbox;
    when omitted one is opened here (not at all with ``generate_only``). ``on_result`` sees
    every new result as it lands (the run store keeps them). Results come in problem order."""
    if sandbox is None and not generate_only:
        from engine.sandbox import Sandbox

        async with Sandbox(workers=workers) as sb:
            return await evaluate(
                solver,
                problems,
                sandbox=sb,
                batch_size=batch_size,
                progress=progress,
                should_stop=should_stop,
                previous=previous,
                retry_errors=retry_errors,
                generate_only=generate_only,
                on_result=on_result,
            )
    done: dict[str, ProblemResult] = dict(previous or {})
    name = getattr(solver, "name", "")
    counter = {"n": sum(1 for p in problems if p.id in done and _finished(done[p.id], generate_only))}

    def land(r: ProblemResult) -> None:
        old = done.get(r.problem_id)
        if old is not None and old.status == "error":
            r.attempts = old.attempts + 1
        done[r.problem_id] = r
        if on_result:
            on_result(r)
        if _finished(r, generate_only) or r.status == "error":
            counter["n"] += 1
        if progress:
            progress(
                {
                    "event": "progress",
                    "step": min(counter["n"], len(problems)),
                    "total": len(problems),
                    "problem_id": r.problem_id,
                    "pass_rate": r.pass_rate,
                    "status": r.status,
                    "solver": name,
                }
            )

    async def run_pass(todo: list[Any]) -> None:
        pending: set[asyncio.Task] = set()

        async def score(problem: Any, program: str) -> None:
            land(await score_program(sandbox, problem, program))

        def start(problem: Any, program: str) -> None:
            if generate_only:
                land(_result(problem, program=program, status="generated", scored=problem.scorable))
                return
            t = asyncio.create_task(score(problem, program))
            pending.add(t)
            t.add_done_callback(pending.discard)

        rescore = [p for p in todo if p.id in done and done[p.id].program]
        regen = [p for p in todo if p not in rescore]
        for p in rescore:  # generated before (or scored before the sandbox failed): never regenerated
            if not (should_stop and should_stop()):
                start(p, done[p.id].program)
        for i in range(0, len(regen), batch_size):
            if should_stop and should_stop():
                break
            batch = regen[i : i + batch_size]
            try:
                replies = await asyncio.to_thread(solver.generate, [problem_input(p) for p in batch])
                if len(replies) != len(batch):
                    raise RuntimeError(f"{len(replies)} replies for {len(batch)} inputs")
            except Exception as e:
                log.warning(
                    "generation failed for %s: %r", [p.id for p in batch], e, exc_info=True, extra={"console": False}
                )
                for p in batch:
                    land(_result(p, error=f"generation: {type(e).__name__}: {e}"))
                continue
            for p, reply in zip(batch, replies):
                start(p, build_program(p, reply))
        if pending:
            await asyncio.gather(*pending)

    await run_pass(
        [p for p in problems if p.id not in done or (done[p.id].status == "generated" and not generate_only)]
    )
    for _ in range(retry_errors):
        failed = [p for p in problems if p.id in done and done[p.id].status == "error"]
        if not failed or (should_stop and should_stop()):
            break
        await run_pass(failed)
    return [done[p.id] for p in problems if p.id in done]


def _finished(r: ProblemResult, generate_only: bool) -> bool:
    return r.status != "error" and (generate_only or r.status != "generated")
