"""The per-node search actor: the unchanged per-problem search, streamed back to the driver.

One ``SearchNode`` runs on each Ray node. It owns the node's sandbox pool and its policies
(one LLM client: the node's ``--llm-concurrency`` calls in flight), and searches up to
``--problem-concurrency`` problems at once with ``solve_problem`` exactly as the asyncio
runner does. A problem's ``ProblemContext`` gets a ``ChannelStore`` instead of the store:
every event, LLM call record and sandbox result of the problem goes, in order, into the
problem's ``ProblemChannel``, which ``SearchNode.solve`` yields to the driver in batches (a
Ray streaming generator). The driver owns the store and writes them; nothing here touches
the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from engine.agents.types import Budget
from engine.problems.model import Problem
from engine.search import events as ev
from engine.search.config import RunConfig
from engine.search.context import ProblemContext
from engine.search.limits import LimitedPolicy
from engine.search.registry import make_strategy
from engine.search.strategy import failed_result, solve_problem
from engine.search.tree import TreeState

log = logging.getLogger(__name__)

BATCH_EVERY_S = 0.05  # how long new items wait to be batched (the TUI's live view stays live)
HEARTBEAT_S = 2.0  # an empty batch at least this often: the driver tells "busy" from "hung"


class ProblemChannel:
    """What one problem sends to the driver, in the order it happened."""

    def __init__(self, prior_calls: list[dict]) -> None:
        self.items: list[tuple] = []
        self.calls: list[dict] = list(prior_calls)  # this problem's LLM calls, for its result
        self.seq = 0
        self.wake = asyncio.Event()

    def put(self, item: tuple) -> None:
        self.items.append(item)
        self.wake.set()

    def drain(self) -> list[tuple]:
        out, self.items = self.items, []
        self.wake.clear()
        return out


class ChannelStore:
    """The part of the store API a ``ProblemContext`` uses, writing into a ``ProblemChannel``."""

    def __init__(self, channel: ProblemChannel) -> None:
        self.channel = channel

    def emit(
        self,
        run_id: str,
        kind: str,
        payload: dict[str, Any],
        *,
        problem_id: str | None = None,
        node_id: str | None = None,
    ) -> int:
        self.channel.seq += 1  # this problem's own count; the driver's store gives the run's seq
        self.channel.put(("event", kind, payload, problem_id, node_id))
        return self.channel.seq

    def record_sandbox_run(
        self, *, run_id: str | None, problem_id: str | None, node_id: str | None, policy: str | None, result: Any
    ) -> None:
        d = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        self.channel.put(
            ("sandbox", {"run_id": run_id, "problem_id": problem_id, "node_id": node_id, "policy": policy, "result": d})
        )

    async def flush(self) -> None:
        """Nothing to make durable here: the driver's store does that."""

    async def llm_calls(self, run_id: str, *, problem_id: str | None = None, node_id: str | None = None) -> list[dict]:
        return [c for c in self.channel.calls if node_id is None or c.get("node_id") == node_id]


class ActorSink:
    """The CallSink of a node's policies: call records go to their problem's channel, the
    reply cache is the run's (``RunServices``)."""

    def __init__(self, channels: dict[str, ProblemChannel], services: Any) -> None:
        self.channels = channels
        self.services = services

    def record_llm_call(self, rec: Any) -> None:
        row = dict(rec.to_row() if hasattr(rec, "to_row") else rec)
        ch = self.channels.get(row.get("problem_id"))
        if ch is None:
            log.warning("LLM call for problem %r outside a search: not recorded", row.get("problem_id"))
            return
        ch.calls.append(row)
        ch.put(("llm", row))

    async def cache_get(self, key: str) -> dict | None:
        return await self.services.cache_get.remote(key)

    def cache_put(self, key: str, model: str, value: dict) -> None:
        self.services.cache_put.remote(key, model, value)


class SearchNode:
    """Searches problems on one node (a Ray async actor; ``backend`` wraps it with ``ray.remote``)."""

    def __init__(self, run_id: str, config: dict[str, Any], services: str) -> None:
        """``services``: the name of the run's ``RunServices`` actor."""
        import ray

        self.run_id = run_id
        self.cfg = RunConfig.from_dict(config)
        self.problems: dict[str, Problem] = {}
        self.services = ray.get_actor(services)
        self.channels: dict[str, ProblemChannel] = {}
        self.strategy = make_strategy(self.cfg.strategy, self.cfg.search)
        self.policies: list[Any] | None = None
        self.unusable: list[tuple[str, str]] = []
        self.sandbox: Any = None
        self._lock: asyncio.Lock | None = None

    async def ready(self) -> dict[str, Any]:
        """Build the policies and start the sandbox pool (once); where this node is and which
        agents cannot work here."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.problems:
                self.problems = {d["id"]: Problem.from_dict(d) for d in await self.services.problems.remote()}
            if self.policies is None:
                self.policies = await self._build_policies()
            if self.sandbox is None:
                from engine.sandbox import Sandbox

                sb = Sandbox(workers=self.cfg.sandbox_workers)
                await sb.start()
                self.sandbox = sb
        import ray

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "unusable": list(self.unusable),
        }

    async def _build_policies(self) -> list[Any]:
        from engine.distributed.services import RemoteBudget
        from engine.search.runner import build_policies

        cfg = self.cfg
        given = await self.services.policies.remote()
        if given is not None:
            base = list(given)
        else:
            limits = Budget(max_calls=cfg.max_calls, max_tokens=cfg.max_tokens, max_cost_usd=cfg.max_cost_usd)
            base = build_policies(
                cfg.agents,
                list(self.problems.values()),
                ActorSink(self.channels, self.services),
                RemoteBudget(self.services, limits),
                lambda n, why: self.unusable.append((n, why)),
                cfg.search.call_budgets(),
            )
        sem = asyncio.Semaphore(1 if cfg.sequential else cfg.llm_concurrency)
        return [LimitedPolicy(p, sem) for p in self.strategy.select_policies(base)]

    async def solve(self, problem_id: str, journal: list[Any], prior_calls: list[dict]) -> AsyncIterator[list[tuple]]:
        """Search one problem, yielding its items in order; the last batch ends with
        ``("result", result)``. ``journal`` is the problem's stored events (a retried or
        resumed problem replays them), ``prior_calls`` its stored LLM calls."""
        await self.ready()
        problem = self.problems[problem_id]
        channel = ProblemChannel(prior_calls)
        self.channels[problem_id] = channel
        px = ProblemContext(
            store=ChannelStore(channel),
            run_id=self.run_id,
            problem=problem,
            state=TreeState(),
            policies=self.policies,
            sandbox=self.sandbox,
            config=self.strategy.config,
            journal=journal,
            sequential=self.cfg.sequential,
        )
        task = asyncio.ensure_future(self._search(px))
        try:
            last = time.monotonic()
            while True:
                if not task.done():
                    waker = asyncio.ensure_future(channel.wake.wait())
                    await asyncio.wait({task, waker}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED)
                    waker.cancel()
                    if not task.done():
                        await asyncio.sleep(BATCH_EVERY_S)  # let a burst of events join one batch
                batch = channel.drain()
                if task.done():
                    batch.append(("result", task.result()))
                    yield batch
                    return
                if batch or time.monotonic() - last >= HEARTBEAT_S:
                    last = time.monotonic()
                    yield batch
        finally:
            if not task.done():
                task.cancel()
            self.channels.pop(problem_id, None)

    async def _search(self, px: ProblemContext) -> dict[str, Any]:
        try:
            return await solve_problem(self.strategy, px)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # one broken problem must not sink the run
            log.exception("problem %s failed", px.problem.id)
            result = failed_result(
                px.problem, f"{type(e).__name__}: {e}", px.tree.rollouts_done, time.monotonic() - px.started
            )
            px.store.emit(self.run_id, ev.PROBLEM_FINISHED, result, problem_id=px.problem.id)
            return result

    async def close(self) -> None:
        """Stop the sandbox pool (the driver calls this before it lets the actor go)."""
        if self.sandbox is not None:
            sb, self.sandbox = self.sandbox, None
            await sb.close()
