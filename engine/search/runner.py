"""The headless runner: execute (or resume) a stored run from the store alone.

``execute_run(store, run_id)`` reads the run's config and problems from the store, claims
the run, folds the events already stored, searches every unfinished problem (a resumed
problem replays its own events as a journal, see ``engine.search.context``), and keeps the
run's status and totals current for the runs list. ``bdc search``, ``bdc resume`` and the
TUI's job launcher all go through it.

Status: 'finished' at the end; 'cancelled' on SIGTERM or task cancellation; 'failed' with
the error message when something crashes, or as soon as a problem ends with every one of its LLM
calls failed (``AgentsFailed``: broken agents would only burn the rest of the run into PR 0); a
process killed with -9 leaves 'running', which ``Store.mark_dead_runs_interrupted`` turns into
'interrupted' and ``bdc resume`` continues. Resume searches again, from a fresh start, every
problem whose last attempt crashed or had all its LLM calls fail (``needs_retry``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from engine.agents.types import Budget, PolicySpec
from engine.errors import BdcError, StoreError
from engine.problems.model import Problem
from engine.search import events as ev
from engine.search.config import RunConfig
from engine.search.context import ProblemContext
from engine.search.limits import LimitedPolicy
from engine.search.metrics import summarize
from engine.search.registry import make_strategy
from engine.search.scripted import is_scripted, scripted_policy
from engine.search.strategy import failed_result, solve_problem
from engine.search.tree import TreeState
from engine.store.call_progress import clear_calls
from engine.store.records import Event

TOTALS_EVERY_S = 1.0


class AgentsFailed(BdcError):
    """Every LLM call of a problem failed: the agents are broken here, the run stops (message: why)."""


async def all_calls_failed(store: Any, run_id: str, problem_id: str, since: float = 0.0) -> str | None:
    """Why every LLM call of ``problem_id`` recorded at or after ``since`` (its current attempt)
    failed, or None (some succeeded, or none was made)."""
    await store.flush()
    calls = [c for c in await store.llm_calls(run_id, problem_id=problem_id) if (c.get("ts") or 0.0) >= since]
    if not calls or any(not c.get("error") for c in calls):
        return None
    error, n = Counter(str(c["error"]) for c in calls).most_common(1)[0]
    return f"all {len(calls)} LLM calls of problem {problem_id} failed ({n} with: {error[:300]})"


async def record_result(
    store: Any,
    run_id: str,
    problem_id: str,
    result: dict[str, Any],
    since: float,
    progress: RunProgress,
    on_progress: Callable | None,
) -> None:
    """A problem's search ended (either backend): record its result and totals, then apply the
    all-calls-failed rule: when every LLM call of this attempt (since ``since``) failed, the
    agents are broken here and the run stops with ``AgentsFailed``; ``bdc resume`` retries it."""
    progress.results[problem_id] = result
    store.set_problem_result(run_id, problem_id, result["status"], result)
    await write_totals(store, run_id, progress, on_progress)
    why = await all_calls_failed(store, run_id, problem_id, since)
    if why is not None:
        raise AgentsFailed(why)


async def gather_or_cancel(coros: list[Any]) -> None:
    """Await every coroutine; the first to raise (``AgentsFailed``, a store failure) cancels the others."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def last_attempt(events: list[Event]) -> list[Event]:
    """A problem's events since its last ``problem_started``: a retried problem starts over
    (the fold resets its tree there), and only its latest attempt decides what is left to do."""
    start = max((i for i, e in enumerate(events) if e.kind == ev.PROBLEM_STARTED), default=0)
    return events[start:]


async def needs_retry(store: Any, run_id: str, problem_id: str, attempt: list[Event]) -> bool:
    """A finished attempt that resume searches again: it crashed (status 'failed'), or every
    LLM call it made failed (the all-calls-failed rule stopped the run after it)."""
    done = next(e.payload for e in attempt if e.kind == ev.PROBLEM_FINISHED)
    if done.status == "failed":
        return True
    return await all_calls_failed(store, run_id, problem_id, attempt[0].ts or 0.0) is not None


def build_policies(
    specs: list[dict[str, Any]],
    problems: list[Problem],
    store: Any,
    budget: Budget,
    on_unusable: Callable[[str, str], None] | None = None,
    budgets: dict[str, dict] | None = None,
) -> list[Any]:
    """Policies from stored PolicySpec dicts: ``scripted:*`` ones here, LLM ones via the agents
    package. An agent that cannot work here (model not installed, key missing) is left out and
    reported through ``on_unusable(name, why)``; with none left the run fails with the reasons."""
    from engine.agents.config import spec_from_dict
    from engine.agents.preflight import problem_with
    from engine.errors import ConfigError

    out: list[Any] = []
    client = None
    unusable: list[str] = []
    for i, d in enumerate(specs):
        spec = d if isinstance(d, PolicySpec) else spec_from_dict(d, f"agent #{i + 1}")
        why = None if is_scripted(spec) else problem_with(spec)
        if why is not None:
            unusable.append(f"{spec.name}: {why}")
            if on_unusable:
                on_unusable(spec.name, why)
            continue
        if is_scripted(spec):
            out.append(scripted_policy(spec, problems, sink=store))
            continue
        if client is None:
            from engine.agents.llm import LLMClient
            from engine.store.call_progress import progress_sink

            client = LLMClient(sink=store, budget=budget, progress=progress_sink(store))
        from engine.agents.policy import Policy

        out.append(Policy(spec, client, budgets))
    if unusable and not out:
        raise ConfigError("no agent of this run can work here: " + "; ".join(unusable))
    return out


def _open_sandbox(workers: int) -> Any:
    from engine.sandbox import Sandbox

    return Sandbox(workers=workers)


class RunProgress:
    """Live figures of a run (also written to ``runs.totals``)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.results: dict[str, dict[str, Any]] = {}
        self.active: set[str] = set()
        self.started = time.monotonic()

    def totals(self, llm: dict[str, Any]) -> dict[str, Any]:
        m = summarize(self.results.values())["overall"]
        return {
            "calls": int(llm.get("calls", 0) - llm.get("cached", 0)),
            "cached": int(llm.get("cached", 0)),
            "tokens": int(llm.get("tokens_in", 0) + llm.get("tokens_out", 0)),
            "cost": float(llm.get("cost", 0.0)),
            "problems_total": self.total,
            "problems_done": len(self.results),
            "active": len(self.active),
            "solved_public": m["solved_public"],
            "pr": m["pr"],
            "ac": m["ac"],
            "wall_s": round(time.monotonic() - self.started, 2),
        }


async def execute_run(
    store: Any,
    run_id: str,
    *,
    policies: list | None = None,
    sandbox: Any = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    backend: Any = None,
) -> None:
    """Run or resume ``run_id``. ``policies``/``sandbox`` override what the stored config builds
    (tests, benchmarks); ``on_progress`` gets the totals dict whenever they are written.
    ``backend`` searches the problems somewhere else (``engine.distributed.RayBackend``): an
    object with ``execute`` taking ``_execute``'s arguments; claim, status and close stay here."""
    row = await store.run(run_id)
    run_id = row.id
    cfg = RunConfig.from_dict(row.config)
    problems = [Problem.from_dict(r["problem"]) for r in await store.run_problems(run_id)]
    await store.claim_run(run_id)
    clear_calls(store, run_id)  # rows a crashed process left are no calls of this one
    await store.flush()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    handler = False
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        handler = True
    except (RuntimeError, ValueError, NotImplementedError, AttributeError):
        pass  # not the main thread (the TUI's job launcher cancels the task itself)
    progress = RunProgress(len(problems))
    try:
        execute = backend.execute if backend is not None else _execute
        await execute(store, run_id, cfg, problems, policies, sandbox, progress, on_progress)
    except asyncio.CancelledError:
        await _close(store, run_id, "cancelled", progress, None, on_progress)
        raise
    except BaseException as e:
        await _close(store, run_id, "failed", progress, f"{type(e).__name__}: {e}", on_progress)
        raise
    finally:
        if handler:
            loop.remove_signal_handler(signal.SIGTERM)
        try:
            clear_calls(store, run_id)  # the run has ended: nothing of it is in flight
            await store.flush()
        except Exception:  # noqa: BLE001 - a failing store has said so already; its error matters more
            pass


async def _close(
    store: Any, run_id: str, status: str, progress: RunProgress, error: str | None, on_progress: Callable | None
) -> None:
    try:
        totals = progress.totals(await store.llm_totals(run_id))
        store.update_run_totals(run_id, totals)
        store.emit(
            run_id,
            ev.RUN_FINISHED,
            ev.RunFinished(status=status, metrics=summarize(progress.results.values()), error=error),
        )
        await store.set_run_status(run_id, status, error)
        if on_progress:
            on_progress(totals)
    except Exception:  # the store itself may be what failed; the original error matters more
        pass


async def prepare_run(
    store: Any, run_id: str, cfg: RunConfig, problems: list[Problem], progress: RunProgress
) -> tuple[TreeState, dict[str, list[Any]], list[Problem]]:
    """Fold the stored events: (run state, each problem's stored events as its journal, the
    problems still to search). Finished problems count in ``progress`` and are not searched again."""
    stored = await store.events(run_id)
    state = TreeState()
    journal: dict[str, list[Any]] = {}
    for e in stored:
        if e.problem_id is None:
            state.apply(e)
        else:
            journal.setdefault(e.problem_id, []).append(e)
    if not any(e.kind == ev.RUN_STARTED for e in stored):
        started = ev.RunStarted(config=cfg.to_dict())
        seq = store.emit(run_id, ev.RUN_STARTED, started)
        state.apply(Event(run_id, seq, time.time(), ev.RUN_STARTED, None, None, started))
    todo: list[Problem] = []
    for p in problems:
        attempt = last_attempt(journal.get(p.id, []))
        done = next((e.payload.to_dict() for e in attempt if e.kind == ev.PROBLEM_FINISHED), None)
        if done is not None and not await needs_retry(store, run_id, p.id, attempt):
            progress.results[p.id] = done
            state.apply_all(journal[p.id])
            store.set_problem_result(run_id, p.id, done["status"], done)
        else:
            # an unfinished attempt goes on from its events; a retried one starts over
            journal[p.id] = attempt if done is None else []
            todo.append(p)
    return state, journal, todo


async def write_totals(store: Any, run_id: str, progress: RunProgress, on_progress: Callable | None) -> None:
    """The run's live totals into ``runs.totals`` (and to ``on_progress``)."""
    totals = progress.totals(await store.llm_totals(run_id))
    store.update_run_totals(run_id, totals)
    if on_progress:
        on_progress(totals)


async def finish_run(store: Any, run_id: str, progress: RunProgress, on_progress: Callable | None) -> None:
    """Every problem searched: final totals, ``run_finished`` and the 'finished' status."""
    metrics = summarize(progress.results.values())
    await write_totals(store, run_id, progress, on_progress)
    store.emit(run_id, ev.RUN_FINISHED, ev.RunFinished(status="finished", metrics=metrics))
    await store.set_run_status(run_id, "finished")


async def _execute(
    store: Any,
    run_id: str,
    cfg: RunConfig,
    problems: list[Problem],
    policies: list | None,
    sandbox: Any,
    progress: RunProgress,
    on_progress: Callable | None,
) -> None:
    state, journal, todo = await prepare_run(store, run_id, cfg, problems, progress)
    budget = Budget(max_calls=cfg.max_calls, max_tokens=cfg.max_tokens, max_cost_usd=cfg.max_cost_usd)
    strategy = make_strategy(cfg.strategy, cfg.search)

    def unusable(name: str, why: str) -> None:
        store.emit(run_id, ev.LLM_ERROR, ev.LLMError(policy=name, stage="preflight", message=why))

    base = (
        policies
        if policies is not None
        else build_policies(cfg.agents, problems, store, budget, unusable, cfg.search.call_budgets())
    )
    if not base:
        from engine.errors import ConfigError

        raise ConfigError("the run has no agents")
    sem = asyncio.Semaphore(1 if cfg.sequential else cfg.llm_concurrency)
    pols = [LimitedPolicy(p, sem) for p in strategy.select_policies(base)]
    problem_sem = asyncio.Semaphore(1 if cfg.sequential else cfg.problem_concurrency)

    async def ticker() -> None:
        while True:
            await asyncio.sleep(TOTALS_EVERY_S)
            await write_totals(store, run_id, progress, on_progress)

    async def one(p: Problem, sb: Any) -> None:
        async with problem_sem:
            progress.active.add(p.id)
            px = ProblemContext(
                store=store,
                run_id=run_id,
                problem=p,
                state=state,
                policies=pols,
                sandbox=sb,
                config=strategy.config,
                journal=journal.get(p.id, ()),
                sequential=cfg.sequential,
            )
            since = next(iter(journal.get(p.id, ())), None)
            since_ts = since.ts if since is not None else time.time()
            try:
                result = await solve_problem(strategy, px)
            except (asyncio.CancelledError, StoreError):  # a failing store sinks the run, loudly
                raise
            except Exception as e:  # one broken problem must not sink the run
                result = failed_result(
                    p, f"{type(e).__name__}: {e}", px.tree.rollouts_done, time.monotonic() - px.started
                )
                store.emit(run_id, ev.PROBLEM_FINISHED, result, problem_id=p.id)
            finally:
                progress.active.discard(p.id)
            await record_result(store, run_id, p.id, result, since_ts, progress, on_progress)

    async def all_problems(sb: Any) -> None:
        """Every todo problem; the first that raises (AgentsFailed) cancels the others."""
        await gather_or_cancel([one(p, sb) for p in todo])

    tick = asyncio.create_task(ticker())
    try:
        if sandbox is not None:
            await all_problems(sandbox)
        else:
            async with _open_sandbox(cfg.sandbox_workers) as sb:
                await all_problems(sb)
    finally:
        tick.cancel()
    await finish_run(store, run_id, progress, on_progress)


def refuse_unknown_agents(agents: list[dict[str, Any]]) -> None:
    """ConfigError (one line) when an agent names a provider or model that exists nowhere: such a run
    is not created. Agents merely unusable here (not installed, no key) are left to ``build_policies``."""
    from engine.agents.config import spec_from_dict
    from engine.agents.preflight import unknown_agents
    from engine.errors import ConfigError

    specs = [d if isinstance(d, PolicySpec) else spec_from_dict(d, f"agent #{i + 1}") for i, d in enumerate(agents)]
    bad = unknown_agents(specs)
    if bad:
        raise ConfigError("; ".join(f"agent {name}: {why}" for name, why in bad.items()))


def load_problems(cfg: RunConfig) -> list[Problem]:
    """The run's problems from its dataset and subset spec."""
    from engine.problems import load_dataset, select_subset

    return select_subset(load_dataset(cfg.dataset, cfg.dataset_path), **cfg.subset)


async def create_search_run(
    store: Any,
    cfg: RunConfig,
    problems: list[Problem] | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
) -> str:
    """Store a new run (config + its problems, so it can be executed or resumed from the store)."""
    from engine.errors import DatasetError

    refuse_unknown_agents(cfg.agents)
    probs = load_problems(cfg) if problems is None else problems
    if not probs:
        raise DatasetError(f"the subset {cfg.subset or '(all)'} of {cfg.dataset} has no problems")
    make_strategy(cfg.strategy, cfg.search)  # fail early on a bad strategy name
    return await store.create_run(
        dataset=cfg.dataset,
        strategy=cfg.strategy,
        agents=[a.get("name") or a.get("model") for a in cfg.agents],
        config=cfg.to_dict(),
        problems=probs,
        name=name,
        run_id=run_id,
    )
