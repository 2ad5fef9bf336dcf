"""The driver's side of a Ray run: streams into the store, cache lookups out of it.

``relay_problem`` consumes one problem's stream from a ``SearchNode`` and writes each item
with the ordinary store API (``emit``, ``record_llm_call``, ``record_sandbox_run``) in the
order the search produced it, so within a problem nothing is reordered and, once written,
nothing is lost. ``relay_cache`` serves the run's ``RunServices`` actor: keys it has not seen
are read from the store, new replies are written to it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)

STALL_S = 60.0  # a stream silent this long (heartbeats included) is a hung actor
RELAY_POLL_S = 1.0


class StreamStalled(Exception):
    """A problem's stream sent nothing, not even a heartbeat, for ``STALL_S``."""


class StreamEnded(Exception):
    """A problem's stream ended without its result."""


def write_item(store: Any, run_id: str, item: tuple) -> dict[str, Any] | None:
    """Write one streamed item; the problem's result when ``item`` is it."""
    tag = item[0]
    if tag == "event":
        _, kind, payload, problem_id, node_id = item
        store.emit(run_id, kind, payload, problem_id=problem_id, node_id=node_id)
    elif tag == "llm":
        store.record_llm_call(item[1])
    elif tag == "sandbox":
        store.record_sandbox_run(**item[1])
    elif tag == "result":
        return item[1]
    else:
        raise ValueError(f"unknown streamed item {tag!r}")
    return None


async def relay_problem(store: Any, run_id: str, stream: Any, stall_s: float = STALL_S) -> dict[str, Any]:
    """Write a problem's streamed batches to the store as they come; return its result.

    Raises what the stream raises (a dead actor: ``ray.exceptions.RayActorError``),
    ``StreamStalled`` or ``StreamEnded``; everything received before that is written."""
    while True:
        try:
            ref = await asyncio.wait_for(stream.__anext__(), stall_s)
            batch = await asyncio.wait_for(ref, stall_s)
        except StopAsyncIteration:
            raise StreamEnded("the problem's stream ended without a result") from None
        except TimeoutError:
            raise StreamStalled(f"no word from the search actor for {stall_s:g} s") from None
        for item in batch:
            result = write_item(store, run_id, item)
            if result is not None:
                return result


async def relay_cache(store: Any, services: Any) -> None:
    """Serve ``services``' cache misses from the store and persist its new replies (until cancelled)."""
    while True:
        try:
            keys, puts = await asyncio.wait_for(services.relay_poll.remote(RELAY_POLL_S), RELAY_POLL_S + 30.0)
            for key, model, value in puts:
                store.cache_put(key, model, value)
            if keys:
                answers = {k: await store.cache_get(k) for k in keys}
                services.relay_answer.remote(answers)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - a lookup then waits out MISS_WAIT_S as a miss; keep serving
            log.warning("reply cache relay: %s: %s", type(e).__name__, e)
            await asyncio.sleep(RELAY_POLL_S)
