"""Benchmark: events appended per second by one writer while a reader tails the run.

Anchor, measured side by side in the same run: the naive way (one INSERT and one commit per
event on a plain sqlite3 connection, as research scripts log). Target from the foundation
issue: at least 20,000 small events/s, with the reader seeing every event in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.search import events as ev  # noqa: E402
from engine.store import Store  # noqa: E402

N = 50_000
NAIVE_N = 2_000


async def batched(path: Path) -> tuple[float, bool]:
    writer = await Store.open(path)
    rid = await writer.create_run(dataset=None, strategy=None, agents=[], config={})
    await writer.claim_run(rid)
    reader = await Store.open(path, readonly=True)
    seen: list[int] = []

    async def tail() -> None:
        last = 0
        while last < N:
            for e in await reader.events(rid, after=last):
                seen.append(e.payload.rollout)
                last = e.seq
            await asyncio.sleep(0.005)

    task = asyncio.create_task(tail())
    t0 = time.perf_counter()
    for i in range(N):
        writer.emit(rid, ev.SIMULATE, ev.Simulate(node=str(i), rollout=i, pass_rate=0.5))
        if i % 500 == 0:
            await asyncio.sleep(0)  # a real search yields to the loop between operations
    await writer.flush()
    elapsed = time.perf_counter() - t0
    await task
    await reader.close()
    await writer.close()
    return N / elapsed, seen == list(range(N))


def naive(path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE events (run_id TEXT, seq INTEGER, ts REAL, kind TEXT, payload TEXT)")
    t0 = time.perf_counter()
    for i in range(NAIVE_N):
        conn.execute("BEGIN")
        conn.execute("INSERT INTO events VALUES (?,?,?,?,?)", ("r", i, time.time(), "simulate", f'{{"i": {i}}}'))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return NAIVE_N / elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        rate, in_order = asyncio.run(batched(Path(d) / "bench.db"))
        anchor = naive(Path(d) / "naive.db")
    print(f"batched writer + tailing reader: {rate:,.0f} events/s (reader saw all in order: {in_order})")
    print(f"naive commit-per-event anchor:   {anchor:,.0f} events/s  -> ratio {rate / anchor:.1f}x")
    ok = rate >= 20_000 and in_order
    print(f"TARGET store_events_per_s measured={rate:.0f} goal=20000 {'ok' if ok else 'short'}")


if __name__ == "__main__":
    main()
