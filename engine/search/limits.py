"""A policy wrapper that holds a run-wide slot while a call is in flight.

One semaphore shared by every policy of a run bounds the LLM calls in flight across all
problems searched at once (hosted rate limits, local model memory).
"""

from __future__ import annotations

import asyncio
from typing import Any


class LimitedPolicy:
    """Same moves as the wrapped policy; each call waits for a slot of ``sem``."""

    def __init__(self, inner: Any, sem: asyncio.Semaphore) -> None:
        self.inner = inner
        self.sem = sem

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return getattr(self.inner, "model", self.inner.name)

    def __repr__(self) -> str:
        return f"Limited({self.inner!r})"

    async def _call(self, method: str, *args: Any, **kw: Any) -> Any:
        async with self.sem:
            return await getattr(self.inner, method)(*args, **kw)

    async def propose_thoughts(self, *args: Any, **kw: Any) -> Any:
        return await self._call("propose_thoughts", *args, **kw)

    async def write_solution(self, *args: Any, **kw: Any) -> Any:
        return await self._call("write_solution", *args, **kw)

    async def reflect(self, *args: Any, **kw: Any) -> Any:
        return await self._call("reflect", *args, **kw)

    async def refine(self, *args: Any, **kw: Any) -> Any:
        return await self._call("refine", *args, **kw)

    async def complete(self, *args: Any, **kw: Any) -> Any:
        return await self._call("complete", *args, **kw)
