"""The run's one budget and reply cache (``RunServices``), as two nodes' LLM clients use them.

No Ray here: a shim gives the actor's methods Ray's ``handle.method.remote(...)`` shape, so
the logic that decides admission and cache hits is tested on every machine."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.agents.llm import LLMClient
from engine.agents.types import Budget, BudgetExceeded, CallContext, MemorySink, PolicySpec
from engine.distributed.relay import relay_cache
from engine.distributed.services import RemoteBudget, RunServices
from engine.store import Store


class Handle:
    """``obj.method.remote(*a)`` returns an awaitable, like a Ray actor handle's ObjectRef."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        fn = getattr(self._obj, name)

        def remote(*a, **k):
            out = fn(*a, **k)
            if inspect.isawaitable(out):
                return asyncio.ensure_future(out)
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(out)
            return fut

        return SimpleNamespace(remote=remote)


class NodeSink(MemorySink):
    """A node's sink whose cache is the run's (as ``ActorSink`` does it)."""

    def __init__(self, services):
        super().__init__()
        self.services = services

    async def cache_get(self, key):
        return await self.services.cache_get.remote(key)

    def cache_put(self, key, model, value):
        self.services.cache_put.remote(key, model, value)


def _reply(text):
    msg = SimpleNamespace(content=text)
    return SimpleNamespace(
        choices=[SimpleNamespace(message=msg)], usage=SimpleNamespace(prompt_tokens=3, completion_tokens=4)
    )


def _client(handle, limits, calls):
    async def completion(**kw):
        calls.append(kw)
        return _reply(f"reply to {kw['messages'][0]['content']}")

    return LLMClient(sink=NodeSink(handle), budget=RemoteBudget(handle, limits), completion_fn=completion)


SPEC = PolicySpec(name="gpt", model="openai/gpt-4o-mini")


def _msg(i):
    return [{"role": "user", "content": f"question {i}"}]


async def test_two_nodes_share_one_budget():
    services = RunServices(max_calls=3, max_tokens=None, max_cost_usd=None)
    handle = Handle(services)
    limits = Budget(max_calls=3)
    calls: list = []
    a, b = _client(handle, limits, calls), _client(handle, limits, calls)
    relay = asyncio.create_task(_answer_misses_with_none(services))
    try:
        await a.complete(SPEC, _msg(1), ctx=CallContext("r", "p"))
        await b.complete(SPEC, _msg(2), ctx=CallContext("r", "p"))
        await a.complete(SPEC, _msg(3), ctx=CallContext("r", "p"))
        with pytest.raises(BudgetExceeded) as e:
            await b.complete(SPEC, _msg(4), ctx=CallContext("r", "p"))
    finally:
        relay.cancel()
    assert e.value.what == "calls" and e.value.limit == 3
    assert len(calls) == 3 and services.budget.calls == 3
    await asyncio.sleep(0)  # fire-and-forget charges land
    assert services.budget.tokens == 3 * 7


async def test_a_reply_paid_by_one_node_is_free_on_the_other():
    services = RunServices(None, None, None)
    handle = Handle(services)
    calls: list = []
    a, b = _client(handle, Budget(), calls), _client(handle, Budget(), calls)
    relay = asyncio.create_task(_answer_misses_with_none(services))
    try:
        first = await a.complete(SPEC, _msg(1), ctx=CallContext("r", "p"))
        await asyncio.sleep(0)
        second = await b.complete(SPEC, _msg(1), ctx=CallContext("r", "p"))
    finally:
        relay.cancel()
    assert not first.cached and second.cached and second.text == first.text
    assert len(calls) == 1


async def test_the_store_answers_misses_and_keeps_new_replies(tmp_path: Path):
    """The driver's relay: a reply cached by an earlier run is found; a new one is persisted."""
    store = await Store.open(tmp_path / "bdc.db")
    try:
        store.cache_put("old-key", "m", {"text": "from an earlier run"})
        await store.flush()
        services = RunServices(None, None, None)
        handle = Handle(services)
        relay = asyncio.create_task(relay_cache(store, handle))
        try:
            assert (await asyncio.wait_for(services.cache_get("old-key"), 10))["text"] == "from an earlier run"
            assert await asyncio.wait_for(services.cache_get("unknown"), 10) is None
            services.cache_put("new-key", "m", {"text": "paid just now"})
            for _ in range(100):
                await asyncio.sleep(0.02)
                await store.flush()
                if await store.cache_get("new-key"):
                    break
        finally:
            relay.cancel()
        assert (await store.cache_get("new-key"))["text"] == "paid just now"
    finally:
        await store.close()


async def _answer_misses_with_none(services: RunServices) -> None:
    """A driver whose store has no cached replies."""
    while True:
        keys, _ = await services.relay_poll(0.05)
        if keys:
            services.relay_answer({k: None for k in keys})
