"""A ``--backend ray`` driver in its own process, for the driver-crash test (killed with -9).

python -m tests.distributed.ray_driver DB RUN_ID RAY_ADDRESS
"""

from __future__ import annotations

import asyncio
import sys


def slow_policies():
    from tests.search.helpers import make_policy

    return [
        make_policy("A", ["up", "same", "down"], latency_s=0.15),
        make_policy("B", ["same", "down", "up"], refine_to="same again", latency_s=0.15),
    ]


async def main(db: str, run_id: str, address: str) -> None:
    from engine.distributed.backend import RayBackend
    from engine.search.runner import execute_run
    from engine.store import Store

    store = await Store.open(db)
    try:
        await execute_run(store, run_id, policies=slow_policies(), backend=RayBackend(address))
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
