"""``--backend ray``: the run's problems searched by one ``SearchNode`` actor per Ray node.

``RayBackend.execute`` has the signature of the asyncio runner's ``_execute`` and is called by
``engine.search.runner.execute_run`` (claim, status, cancel and failure stay there). It folds
the stored events like the asyncio runner, connects to Ray, starts the ``RunServices`` actor
(budget + reply cache) and one ``SearchNode`` per alive node, and keeps each node busy with
up to ``--problem-concurrency`` problems (``--llm-concurrency`` and ``--sandbox-workers`` are
per node too). A problem whose actor dies or hangs is searched again from the events already
in the store (replayed as its journal, see ``engine.search.context``), on the restarted actor or
another one; after ``max_attempts`` it is recorded as failed, like a crashing problem.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.distributed import require_ray
from engine.distributed.actors import SearchNode
from engine.distributed.relay import StreamEnded, StreamStalled, relay_cache, relay_problem
from engine.distributed.services import RunServices
from engine.errors import BdcError, ConfigError
from engine.problems.model import Problem
from engine.search import events as ev
from engine.search.config import RunConfig
from engine.search.runner import (
    RunProgress,
    finish_run,
    gather_or_cancel,
    last_attempt,
    prepare_run,
    record_result,
    write_totals,
)
from engine.search.strategy import failed_result
from engine.search.tree import TreeState

log = logging.getLogger(__name__)

READY_S = 120.0  # an actor that cannot build its agents and sandbox in this long is dead
MAX_RESTARTS = 3
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20  # a Ray started by bdc itself: events are small


class RayBackend:
    """Where and how a run is spread over Ray. ``address``: None starts Ray on this machine,
    ``"auto"`` joins the cluster this machine belongs to, ``"ray://host:10001"`` is Ray Client."""

    def __init__(
        self,
        address: str | None = None,
        *,
        max_nodes: int | None = None,
        max_attempts: int = 3,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.max_nodes = max_nodes
        self.max_attempts = max_attempts
        self.init_kwargs = dict(init_kwargs or {})
        self.timings: dict[str, float] = {}
        self.nodes: list[dict[str, Any]] = []
        self.actors: list[Any] = []  # the search actors of the run in progress (one per node)
        self.retries = 0  # problems searched again after their actor was lost
        self.started_ray = False

    # ------------------------------------------------------------------ Ray
    def connect(self) -> Any:
        """``ray``, initialised (joining ``address`` or starting a local instance)."""
        ray = require_ray()
        if ray.is_initialized():
            return ray
        kw: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING, **self.init_kwargs}
        if self.address is None:
            kw.setdefault("object_store_memory", LOCAL_OBJECT_STORE_BYTES)
            kw.setdefault("include_dashboard", False)
        else:
            kw["address"] = self.address
        try:
            ray.init(**kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = self.address or "a local Ray"
            raise ConfigError(
                f"cannot connect to Ray at {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from e
        self.started_ray = True
        return ray

    def shutdown(self) -> None:
        """Stop the Ray instance this backend started (one it joined is left running)."""
        if self.started_ray:
            import ray

            ray.shutdown()
            self.started_ray = False

    def _alive_nodes(self, ray: Any) -> list[dict[str, Any]]:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        nodes.sort(key=lambda n: (not n.get("IsHeadNode", False), n["NodeID"]))
        return nodes[: self.max_nodes] if self.max_nodes else nodes

    # ------------------------------------------------------------------ the run
    async def execute(
        self,
        store: Any,
        run_id: str,
        cfg: RunConfig,
        problems: list[Problem],
        policies: list | None,
        sandbox: Any,
        progress: RunProgress,
        on_progress: Callable | None,
    ) -> None:
        if sandbox is not None:
            raise ConfigError("--backend ray: every node owns its sandbox pool; a given sandbox cannot be used")
        _, journal, todo = await prepare_run(store, run_id, cfg, problems, progress)
        t0 = time.perf_counter()
        ray = self.connect()  # here, not in a thread: Ray sets its signal handlers in the main thread
        self.timings["connect_s"] = time.perf_counter() - t0
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.nodes = self._alive_nodes(ray)
        if not self.nodes:
            raise ConfigError("the Ray cluster has no alive node")
        # the search actors find the services by name: a restartable actor's constructor
        # arguments should hold no object reference (ray-project/ray#53727)
        services_name = f"bdc-services-{run_id}-{uuid.uuid4().hex[:8]}"
        services = (
            ray.remote(num_cpus=0)(RunServices)
            .options(name=services_name)
            .remote(cfg.max_calls, cfg.max_tokens, cfg.max_cost_usd, [p.to_dict() for p in problems], policies)
        )
        node_cls = ray.remote(num_cpus=0, max_restarts=MAX_RESTARTS)(SearchNode)
        actors = self.actors = [
            node_cls.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                run_id, cfg.to_dict(), services_name
            )
            for n in self.nodes
        ]
        tasks: list[asyncio.Task] = []
        try:
            t1 = time.perf_counter()
            infos = await self._ready_all(ray, actors)
            self.timings["actors_ready_s"] = time.perf_counter() - t1
            log.info("ray run %s: %d search nodes %s", run_id, len(actors), [i["host"] for i in infos])
            for name, why in sorted({u for i in infos for u in map(tuple, i["unusable"])}):
                store.emit(run_id, ev.LLM_ERROR, {"policy": name, "stage": "preflight", "message": why})
            tasks.append(asyncio.create_task(relay_cache(store, services)))
            tasks.append(asyncio.create_task(_ticker(store, run_id, progress, on_progress)))
            queue: deque[Problem] = deque(todo)
            per_node = 1 if cfg.sequential else cfg.problem_concurrency
            run = _Dispatch(self, ray, store, run_id, journal, progress, on_progress, queue)
            await gather_or_cancel([run.slot(a) for a in actors for _ in range(per_node)])
            if queue:
                raise BdcError(
                    f"every search actor died with {len(queue)} problems left: `bdc resume {run_id}` "
                    "continues from the stored events"
                )
        finally:
            for t in tasks:
                t.cancel()
            await _stop(ray, actors, services)
        await finish_run(store, run_id, progress, on_progress)

    async def _ready_all(self, ray: Any, actors: list[Any]) -> list[dict[str, Any]]:
        try:
            return list(await asyncio.wait_for(asyncio.gather(*(a.ready.remote() for a in actors)), READY_S))
        except TimeoutError:
            raise BdcError(f"the Ray search actors were not ready within {READY_S:g} s") from None
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, BdcError) else BdcError(f"a search actor failed to start: {e}")) from e


class _Dispatch:
    """Hands problems to node slots, relays their streams, retries a dead actor's problems."""

    def __init__(
        self,
        backend: RayBackend,
        ray: Any,
        store: Any,
        run_id: str,
        journal: dict[str, list[Any]],
        progress: RunProgress,
        on_progress: Callable | None,
        queue: deque[Problem],
    ) -> None:
        self.backend, self.ray, self.store, self.run_id = backend, ray, store, run_id
        self.journal, self.progress, self.on_progress, self.queue = journal, progress, on_progress, queue
        self.attempts: dict[str, int] = {}
        self.first_started: dict[str, float] = {}
        self.since: dict[str, float] = {}

    async def slot(self, actor: Any) -> None:
        """One of a node's problem slots: take problems until none is left or the actor is gone."""
        while self.queue:
            p = self.queue.popleft()
            self.progress.active.add(p.id)
            try:
                result = await self.search(actor, p)
            finally:
                self.progress.active.discard(p.id)
            if result is None:  # the actor is gone for good: someone else takes the problem
                self.queue.appendleft(p)
                return
            await record_result(
                self.store, self.run_id, p.id, result, self.since[p.id], self.progress, self.on_progress
            )

    async def search(self, actor: Any, p: Problem) -> dict[str, Any] | None:
        errors = self.ray.exceptions
        self.first_started.setdefault(p.id, time.monotonic())
        # the attempt's LLM calls (the all-calls-failed rule): from its first stored event, else from now
        stored = self.journal.get(p.id)
        self.since.setdefault(p.id, stored[0].ts if stored else time.time())
        while True:
            retry = p.id in self.attempts
            if retry:
                await self.store.flush()
                journal = last_attempt(await self.store.events(self.run_id, problem_id=p.id))
            else:
                journal = self.journal.get(p.id, [])
            prior_calls = await self.store.llm_calls(self.run_id, problem_id=p.id) if (retry or journal) else []
            stream = actor.solve.options(num_returns="streaming").remote(p.id, journal, prior_calls)
            try:
                return await relay_problem(self.store, self.run_id, stream)
            except (errors.RayActorError, errors.ActorUnavailableError, StreamStalled, StreamEnded) as e:
                n = self.attempts[p.id] = self.attempts.get(p.id, 0) + 1
                self.backend.retries += 1
                log.warning(
                    "problem %s: search actor lost (%s: %s), attempt %d of %d",
                    p.id,
                    type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "",
                    n,
                    self.backend.max_attempts,
                )
                if isinstance(e, StreamStalled):
                    self.ray.kill(actor, no_restart=False)
                if n >= self.backend.max_attempts:
                    return await self._give_up(p, f"{type(e).__name__}: the search actor was lost {n} times")
                if not await self._back(actor):
                    return None

    async def _back(self, actor: Any) -> bool:
        """Whether ``actor`` answers again (restarted) within ``READY_S``."""
        try:
            await asyncio.wait_for(actor.ready.remote(), READY_S)
            return True
        except Exception as e:  # noqa: BLE001 - dead for good, or not back in time
            log.warning("search actor gone: %s", type(e).__name__)
            return False

    async def _give_up(self, p: Problem, error: str) -> dict[str, Any]:
        await self.store.flush()
        tree = TreeState().apply_all(await self.store.events(self.run_id, problem_id=p.id)).tree(p.id)
        result = failed_result(p, error, tree.rollouts_done, time.monotonic() - self.first_started[p.id])
        self.store.emit(self.run_id, ev.PROBLEM_FINISHED, result, problem_id=p.id)
        return result


async def _ticker(store: Any, run_id: str, progress: RunProgress, on_progress: Callable | None) -> None:
    from engine.search.runner import TOTALS_EVERY_S

    while True:
        await asyncio.sleep(TOTALS_EVERY_S)
        await write_totals(store, run_id, progress, on_progress)


async def _stop(ray: Any, actors: list[Any], services: Any) -> None:
    """Close the sandbox pools (bounded), then let the actors go."""
    try:
        await asyncio.wait_for(asyncio.gather(*(a.close.remote() for a in actors), return_exceptions=True), 30.0)
    except (TimeoutError, asyncio.CancelledError):
        pass
    for a in [*actors, services]:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
