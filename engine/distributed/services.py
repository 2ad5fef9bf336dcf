"""One budget and one reply cache for a whole Ray run, held by the ``RunServices`` actor
(which also hands the run's problems, and any given policies, to the search actors).

Every node's LLM client asks this actor before a paid call (``RemoteBudget.areserve``) and
looks replies up here, so the limits and the cache are the run's, not a node's. The cache's
durable home is the store on the driver: a key this actor has not seen is asked of the driver
through ``relay_poll`` / ``relay_answer`` (the driver reads ``Store.cache_get``), and every
new reply is handed to the driver the same way to be written with ``Store.cache_put``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from engine.agents.types import Budget, BudgetExceeded

MISS_WAIT_S = 30.0  # a driver that does not answer a lookup in this long counts as a miss


class RunServices:
    """The budget and reply cache of one run (a Ray async actor; plain class for tests)."""

    def __init__(
        self,
        max_calls: int | None,
        max_tokens: int | None,
        max_cost_usd: float | None,
        problems: list[dict[str, Any]] | None = None,
        policies: list[Any] | None = None,
    ) -> None:
        self._problems = list(problems or [])
        self._policies = policies
        self.budget = Budget(max_calls=max_calls, max_tokens=max_tokens, max_cost_usd=max_cost_usd)
        self.cache: dict[str, dict] = {}
        self.absent: set[str] = set()  # keys the store does not have (until a put)
        self.waiting: dict[str, asyncio.Future] = {}
        self.asked: set[str] = set()  # misses handed to the driver, not answered yet
        self.puts: list[tuple[str, str, dict]] = []
        self.wake = asyncio.Event()

    def problems(self) -> list[dict[str, Any]]:
        """The run's problems (a restarted search actor fetches them here: arguments of a
        restartable actor's constructor must not live in the object store)."""
        return self._problems

    def policies(self) -> list[Any] | None:
        """Policies given to the run instead of its agents (tests, benchmarks), or None."""
        return self._policies

    # ------------------------------------------------------------------ budget
    def reserve(self) -> tuple[str, float, float] | None:
        """Admit and count one paid call; the refusal as ``(what, used, limit)`` (a plain
        value: exception classes with their own constructor do not cross Ray intact)."""
        try:
            self.budget.reserve()
        except BudgetExceeded as e:
            return e.what, e.used, e.limit
        return None

    def charge(self, tokens: int, cost_usd: float) -> None:
        self.budget.charge(tokens, cost_usd)

    def budget_state(self) -> dict[str, Any]:
        b = self.budget
        return {"calls": b.calls, "tokens": b.tokens, "cost_usd": b.cost_usd, "exhausted": b.exhausted}

    # ------------------------------------------------------------------ cache
    async def cache_get(self, key: str) -> dict | None:
        if key in self.cache:
            return dict(self.cache[key])
        if key in self.absent:
            return None
        fut = self.waiting.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self.waiting[key] = fut
            self.wake.set()
        try:
            value = await asyncio.wait_for(asyncio.shield(fut), MISS_WAIT_S)
        except TimeoutError:
            return None
        return dict(value) if value is not None else None

    def cache_put(self, key: str, model: str, value: dict) -> None:
        self.cache[key] = dict(value)
        self.absent.discard(key)
        self.puts.append((key, model, dict(value)))
        self.wake.set()
        fut = self.waiting.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(value)

    # ------------------------------------------------------------------ the driver's side
    async def relay_poll(self, wait_s: float) -> tuple[list[str], list[tuple[str, str, dict]]]:
        """(keys to look up in the store, new replies to write to it); waits up to ``wait_s``."""
        if not self._pending():
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), wait_s)
            except TimeoutError:
                pass
        keys = [k for k in self.waiting if k not in self.asked]
        self.asked.update(keys)
        puts, self.puts = self.puts, []
        return keys, puts

    def relay_answer(self, answers: dict[str, dict | None]) -> None:
        for key, value in answers.items():
            self.asked.discard(key)
            if value is not None:
                self.cache[key] = dict(value)
            elif key not in self.cache:
                self.absent.add(key)
            fut = self.waiting.pop(key, None)
            if fut is not None and not fut.done():
                fut.set_result(self.cache.get(key))

    def _pending(self) -> bool:
        return bool(self.puts) or any(k not in self.asked for k in self.waiting)


class RemoteBudget(Budget):
    """A node's view of the run's budget: admission asks ``RunServices``; charges are sent
    there and counted here too (``exhausted`` reads this node's last view)."""

    def __init__(self, services: Any, limits: Budget) -> None:
        super().__init__(max_calls=limits.max_calls, max_tokens=limits.max_tokens, max_cost_usd=limits.max_cost_usd)
        self.services = services

    async def areserve(self) -> None:
        refused = await self.services.reserve.remote()
        if refused is not None:
            raise BudgetExceeded(*refused)
        self.calls += 1

    def reserve(self) -> None:  # the synchronous path cannot ask the owner: refuse loudly
        raise RuntimeError("RemoteBudget is reserved with 'await areserve()'")

    def charge(self, tokens: int, cost_usd: float) -> None:
        super().charge(tokens, cost_usd)
        self.services.charge.remote(tokens, cost_usd)
