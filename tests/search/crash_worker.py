"""Subprocess for the resume tests: ``python -m tests.search.crash_worker DB RUN_ID LATENCY``."""

from __future__ import annotations

import asyncio
import sys

from engine.search.runner import execute_run
from engine.store import Store
from tests.search.helpers import FakeSandbox, make_policy


def crash_policies(latency: float = 0.0):
    return [
        make_policy("A", ["up", "down", "same"], latency_s=latency),
        make_policy("B", ["up up", "same", "down"], refine_to="down again", latency_s=latency),
    ]


async def main(db: str, run_id: str, latency: float) -> None:
    store = await Store.open(db)
    try:
        await execute_run(store, run_id, policies=crash_policies(latency), sandbox=FakeSandbox())
    finally:
        await store.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
    except asyncio.CancelledError:
        sys.exit(143)
