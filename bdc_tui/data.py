"""Read models the screens need, computed from the store's plain readers.

Kept apart from the widgets so they can be tested without a terminal and reused by the
runs table, the status bars and the command palette.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.store import Event, RunRow, Store, pid_alive


@dataclass
class RunSummary:
    run: RunRow
    done: int
    total: int
    pr: float | None  # mean private pass rate of finished problems
    ac: float | None  # share of finished problems whose solution passed every private test
    cost: float
    calls: int

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def alive(self) -> bool:
        return self.run.status == "running" and pid_alive(self.run.pid)


def _num(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


async def summarize(store: Store, run: RunRow) -> RunSummary:
    probs = await store.run_problems(run.id)
    done = [p for p in probs if p.get("status") not in (None, "pending", "running")]
    prs, acs = [], []
    for p in done:
        r = p.get("result") or {}
        if r.get("scored") is False:  # no private test apart from the public ones: not in PR/AC
            continue
        pr = _num(r.get("private_pass_rate", r.get("pass_rate")))
        if pr is not None:
            prs.append(pr)
        if "passed_private" in r:
            acs.append(1.0 if r["passed_private"] else 0.0)
        elif pr is not None:
            acs.append(1.0 if pr >= 1.0 else 0.0)
    totals = run.totals or {}
    llm = await store.llm_totals(run.id)
    cost = float(llm.get("cost") or 0) or float(totals.get("cost") or 0)
    pr = sum(prs) / len(prs) if prs else _num(totals.get("pr", totals.get("pass_rate")))
    ac = sum(acs) / len(acs) if acs else _num(totals.get("ac", totals.get("accuracy")))
    return RunSummary(run, len(done), len(probs), pr, ac, cost, int(llm.get("calls") or 0))


async def summarize_all(store: Store) -> list[RunSummary]:
    return [await summarize(store, r) for r in await store.runs()]


async def replay_events(store: Store, run_id: str) -> list[Event]:
    """All events of a run for the replay. Payloads are decoded on first use
    (``engine.store.Event``): the replay only ever folds the shown problem."""
    return await store.events(run_id)
