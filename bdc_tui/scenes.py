"""Named screen states reached through the Pilot: shared by snapshot tests, the screenshot
script and the benchmark so all three show the same deterministic screens.

Each scene takes a Pilot of a ``BdcApp`` opened on ``demo.build_demo_db`` and returns
when the screen shows its data (it waits for data, never for a fixed time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

SIZE = (150, 42)


async def wait_until(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0, step: float = 0.05) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout

    def check() -> bool:
        try:
            return bool(predicate())
        except Exception:  # still composing
            return False

    while loop.time() < end:
        if check():
            return True
        await pilot.pause(step)
    return check()


async def runs(pilot: Any) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: app.screen.table.row_count == len(app.run_ids) > 0)
    await pilot.pause(0.1)


async def _live(pilot: Any, run_id: str = "r-demo-humaneval") -> Any:
    app = pilot.app
    await runs(pilot)
    app.open_run(run_id, "live")
    await wait_until(pilot, lambda: app.screen.tree_view.node_count > 0 and app.screen.state.status == "finished")
    return app.screen


async def search_tree(pilot: Any) -> None:
    screen = await _live(pilot)
    screen.action_problem(-1)  # the solved problem
    await pilot.pause()
    await pilot.press("b")
    tree = screen.tree
    await wait_until(pilot, lambda: (tree.problem_id, screen.inspector.node_id) in screen._calls)
    await pilot.pause(0.1)


async def refined_node(pilot: Any) -> None:
    screen = await _live(pilot)
    tree = screen.tree
    node = min((n for n in tree.nodes.values() if n.refinements), key=lambda n: int(n.id))
    screen.tree_view.focus_node(node.id)
    await wait_until(pilot, lambda: (tree.problem_id, node.id) in screen._calls)
    await pilot.pause(0.1)


async def replay(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.open_run("r-demo-humaneval", "replay")
    await wait_until(pilot, lambda: app.screen.timeline is not None)
    await pilot.press("home", "1", "1")
    await pilot.pause(0.1)


async def event_log(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.open_run("r-demo-humaneval", "log")
    await wait_until(pilot, lambda: app.screen.query_one("DataTable").row_count > 0)
    await pilot.press("2")
    await wait_until(pilot, lambda: app.screen.total > 0 and app.screen.group == "refine")
    await pilot.pause(0.1)


async def jobs_training(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.action_jobs()
    await wait_until(pilot, lambda: app.screen.shown == "j-demo-eval")
    await pilot.press("down")
    await wait_until(
        pilot, lambda: app.screen.shown == "j-demo-train" and len(app.screen.query_one("LossPlot").values) > 0
    )
    await pilot.pause(0.1)


async def jobs_eval(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.action_jobs()
    await wait_until(pilot, lambda: app.screen.shown == "j-demo-eval")
    await pilot.pause(0.1)


async def clusters(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.action_clusters()
    await wait_until(pilot, lambda: app.screen.shown_sizes)
    await pilot.pause(0.1)


async def new_search(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.action_new_search()
    await wait_until(pilot, lambda: app.screen.query_one("#agents") is not None)
    await pilot.pause(0.1)


async def new_eval(pilot: Any) -> None:
    app = pilot.app
    await runs(pilot)
    app.action_new_eval()
    await wait_until(pilot, lambda: app.screen.query_one("#solvers") is not None)
    await pilot.pause(0.1)


SCENES: dict[str, Callable[[Any], Awaitable[None]]] = {
    "runs": runs,
    "search_tree": search_tree,
    "refined_node": refined_node,
    "replay": replay,
    "event_log": event_log,
    "jobs_training": jobs_training,
    "jobs_eval": jobs_eval,
    "clusters": clusters,
    "new_search": new_search,
    "new_eval": new_eval,
}
