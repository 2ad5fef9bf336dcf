"""Functional tests of every screen and the main flows, driven through the Pilot."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from bdc_tui.app import BdcApp
from bdc_tui.format import BEST, PRUNED, REFINED
from bdc_tui.screens.error import ErrorScreen
from bdc_tui.screens.event_log import EventLogScreen
from bdc_tui.screens.replay import ReplayScreen
from bdc_tui.screens.runs import RunsScreen
from bdc_tui.screens.search import SearchScreen
from engine.search.tree import TreeState
from engine.store import Store
from tests.tui.conftest import SIZE, wait_for


def make_app(db: Path, **kw) -> BdcApp:
    kw.setdefault("first_start", False)
    kw.setdefault("launcher", None)
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("refresh_interval", 1.0)
    return BdcApp(db, **kw)


def labels(tree_view) -> dict[str, str]:
    return {nid: str(item.label) for nid, item in tree_view._items.items()}


async def events_of(db: Path, run_id: str) -> list:
    store = await Store.open(db, readonly=True)
    try:
        return await store.events(run_id)
    finally:
        await store.close()


async def fold_of(db: Path, run_id: str) -> TreeState:
    return TreeState().apply_all(await events_of(db, run_id))


async def open_runs(pilot) -> RunsScreen:
    assert await wait_for(
        pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.table.row_count > 0
    )
    return pilot.app.screen


async def test_runs_screen_lists_runs_and_disables_what_cannot_run(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runs(pilot)
        table = screen.table
        assert table.row_count == 3
        statuses = {s.id: s.run.status for s in table.summaries.values()}
        assert statuses == {
            "r-demo-humaneval": "finished",
            "r-demo-interrupted": "cancelled",
            "r-demo-failed": "failed",
        }
        assert "unknown scripted agent" in table.summaries["r-demo-failed"].run.error
        summary = table.summaries["r-demo-humaneval"]
        assert summary.done == summary.total == 3 and summary.ac == 1.0 and summary.cost == 0  # scripted agents
        assert app.title.endswith("demo data")  # every screen's header says so
        # no launcher: resume is shown disabled, not failing; delete is allowed for a stopped run
        assert screen.check_action("resume", ()) is None
        assert screen.check_action("cancel", ()) is None
        assert screen.check_action("delete", ()) is True


async def test_delete_asks_for_confirmation(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runs(pilot)
        first = screen.table.selected.id
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")  # declined: nothing happens
        await pilot.pause(0.2)
        assert first in screen.table.summaries
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        assert await wait_for(pilot, lambda: first not in screen.table.summaries)
        assert first not in [r.id for r in await app.store.runs()]


async def open_live_tree(pilot, run_id: str) -> SearchScreen:
    """Open the run's live tree from the runs screen, once its first nodes are drawn."""
    app = pilot.app
    await open_runs(pilot)
    app.open_run(run_id)
    assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.tree_view.node_count > 0)
    return app.screen


async def test_live_tree_marks_prunes_refines_and_best(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_live_tree(pilot, "r-demo-humaneval")
        tree = screen.tree
        assert screen.tree_view.node_count == len(tree.nodes)
        text = labels(screen.tree_view)
        pruned = [n.id for n in tree.nodes.values() if n.pruned]
        refined = [n.id for n in tree.nodes.values() if n.refinements]
        assert pruned and refined
        assert all(PRUNED in text[i] for i in pruned)
        assert all(REFINED in text[i] for i in refined)
        assert sum(BEST in t for t in text.values()) == 1
        # b jumps to the best node and the inspector shows it with its solutions and LLM calls
        await pilot.press("b")
        best = tree.best_node().id
        assert await wait_for(pilot, lambda: screen.inspector.node_id == best)
        assert await wait_for(pilot, lambda: (tree.problem_id, best) in screen._calls)
        body = screen.inspector.plain_text()
        code = tree.nodes[best].best_solution()["code"].strip().splitlines()[0].strip()
        assert "pass rate" in body and "LLM calls" in body and code in body


async def test_problem_switching_and_refine_shows_old_thought(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_live_tree(pilot, "r-demo-humaneval")
        first = screen.problem_id
        await pilot.press("]")
        await pilot.pause()
        assert screen.problem_id != first and screen.tree_view.problem.problem_id == screen.problem_id
        refined = next(n for n in screen.tree.nodes.values() if n.refinements)
        screen.tree_view.focus_node(refined.id)
        assert await wait_for(pilot, lambda: screen.inspector.node_id == refined.id)
        out = screen.inspector.plain_text()
        assert "old thought" in out and refined.old_thoughts[0][:20] in out


async def test_attach_to_run_written_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store = await Store.open(db)
    from bdc_tui.demo import demo_problems

    run_id = await store.create_run(
        dataset="humaneval", strategy="mcts", agents=["a"], config={}, problems=demo_problems(1), run_id="r-live"
    )
    await store.close()
    writer = textwrap.dedent(f"""
        import asyncio, sys
        from engine.store import Store
        from bdc_tui.demo import search_events
        async def main():
            s = await Store.open({str(db)!r})
            await s.claim_run("r-live")
            s.emit("r-live", "run_started", {{"config": {{}}}})
            for i, e in enumerate(search_events("HumanEval/0", seed=2, max_nodes=40)):
                s.emit("r-live", e.kind, e.payload, problem_id=e.problem_id, node_id=e.node_id)
                if i % 5 == 0:
                    await s.flush()
                    await asyncio.sleep(0.02)
            s.emit("r-live", "run_finished", {{"status": "finished", "metrics": {{}}}})
            await s.flush()
            await s.set_run_status("r-live", "finished")
            await s.close()
        asyncio.run(main())
    """)
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        app.open_run(run_id)
        assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        screen: SearchScreen = app.screen
        proc = subprocess.Popen([sys.executable, "-c", writer], cwd=str(Path(__file__).resolve().parents[2]))
        try:
            seen_partial = await wait_for(pilot, lambda: 0 < screen.tree_view.node_count, timeout=20, step=0.02)
            assert seen_partial
            assert await wait_for(pilot, lambda: screen.state.status == "finished", timeout=30)
        finally:
            proc.wait(timeout=30)
        assert proc.returncode == 0
        await pilot.pause(0.2)
        expected = await fold_of(db, run_id)
        assert screen.state.problems["HumanEval/0"].signature() == expected.problems["HumanEval/0"].signature()
        assert screen.tree_view.node_count == len(expected.problems["HumanEval/0"].nodes)
        assert set(screen.tree_view._items) == set(expected.problems["HumanEval/0"].nodes)


async def test_replay_steps_jumps_and_matches_the_fold(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        app.open_run("r-demo-humaneval", "replay")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        screen: ReplayScreen = app.screen
        tl = screen.timeline
        assert tl.position == len(tl)
        await pilot.press("home")
        assert tl.position == 0 and screen.tree_view.node_count == 0
        await pilot.press("3")  # next solution
        assert tl.current_event().kind in ("solution_found", "problem_finished")
        await pilot.press("home", "1")  # first prune
        assert tl.current_event().kind == "prune"
        node = tl.current_event().payload.node
        assert PRUNED in str(screen.tree_view.item(node).label)
        await pilot.press("left")  # one step back: not pruned yet
        assert PRUNED not in str(screen.tree_view.item(node).label)
        await pilot.press("right", "right", "right")
        events = tl.events[: tl.position]
        fresh = TreeState().apply_all(events)
        pid = screen.problem_id
        assert screen.state.problems[pid].signature() == fresh.problems[pid].signature()
        assert set(screen.tree_view._items) == set(fresh.problems[pid].nodes)
        # play at top speed runs to the end
        screen.speed_index = 7  # 200 events/s
        await pilot.press("plus")  # 500 events/s
        await pilot.press("space")
        assert await wait_for(pilot, lambda: tl.position == len(tl), timeout=15)
        final = await fold_of(demo_db, "r-demo-humaneval")
        assert set(screen.tree_view._items) == set(final.problems[screen.problem_id].nodes)


async def open_event_log(pilot, run_id: str) -> tuple[EventLogScreen, Any]:
    """Open the run's event log from the runs screen; (the screen, its table)."""
    app = pilot.app
    await open_runs(pilot)
    app.open_run(run_id, "log")
    assert await wait_for(pilot, lambda: isinstance(app.screen, EventLogScreen) and bool(app.screen.query("DataTable")))
    return app.screen, app.screen.query_one("DataTable")


async def test_event_log_filters_by_kind(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_event_log(pilot, "r-demo-humaneval")
        assert await wait_for(pilot, lambda: table.row_count > 100)

        def kinds() -> set[str]:
            return {str(table.get_row_at(i)[4]) for i in range(table.row_count)}

        await pilot.press("1")
        assert await wait_for(pilot, lambda: table.row_count > 0 and kinds() == {"prune"})
        await pilot.press("3")
        assert await wait_for(pilot, lambda: table.row_count > 0 and kinds() == {"solution_found", "problem_finished"})
        await pilot.press("2")
        assert await wait_for(pilot, lambda: table.row_count > 0 and kinds() == {"reflect", "refine"})
        # enter opens the replay at that event
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        assert app.screen.timeline.current_event().kind in ("reflect", "refine")


async def test_event_log_pages_back_and_follows_again(demo_db: Path, monkeypatch) -> None:
    monkeypatch.setattr(EventLogScreen, "PAGE", 50)
    total = len(await events_of(demo_db, "r-demo-humaneval"))
    assert total > 150
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_event_log(pilot, "r-demo-humaneval")

        def seqs() -> list[int]:
            return [int(table.get_row_at(i)[0]) for i in range(table.row_count)]

        # opens on the newest page only
        assert await wait_for(pilot, lambda: seqs() == list(range(total - 49, total + 1)))
        await pilot.press("o")
        assert await wait_for(pilot, lambda: seqs() == list(range(total - 99, total - 49)))
        assert not screen.live
        await pilot.press("o")
        assert await wait_for(pilot, lambda: seqs() == list(range(total - 149, total - 99)))
        await pilot.press("n")
        assert await wait_for(pilot, lambda: seqs() == list(range(total - 99, total - 49)))
        await pilot.press("f")
        assert await wait_for(pilot, lambda: screen.live and seqs() == list(range(total - 49, total + 1)))


async def test_jobs_and_clusters_screens(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        await pilot.press("j")
        from bdc_tui.screens.jobs import JobsScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown is not None)
        screen = app.screen
        assert screen.shown == "j-demo-eval"
        results = screen.query_one("#job-results")
        text = results.plain_text()
        assert "DisenLoRA" in text and "Intro." in text and "Overall" in text  # the CLI table2 labels
        await pilot.press("down")
        assert await wait_for(
            pilot, lambda: screen.shown == "j-demo-train" and len(screen.query_one("LossPlot").values) == 60
        )
        await pilot.press("c")
        from bdc_tui.screens.clusters import ClustersScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, ClustersScreen) and app.screen.cluster_jobs)
        assert app.screen.cluster_jobs[0].result["k"] == 3
        assert await wait_for(pilot, lambda: app.screen.shown_sizes == [30, 30, 30])


async def test_corrupt_and_newer_databases_show_a_message_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    app = make_app(bad)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "cannot open run store" in app.screen.message
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    app = make_app(newer)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "newer" in app.screen.message
        await pilot.press("q")


async def test_a_bad_event_is_reported_and_the_app_keeps_running(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    store = await Store.open(db)
    await store.create_run(dataset="d", strategy="s", agents=[], config={}, run_id="r-x")
    store.emit("r-x", "root", {"node": "0"}, problem_id="P")
    store.emit("r-x", "simulate", {"node": "missing", "rollout": 0, "pass_rate": 1.0}, problem_id="P")
    store.emit("r-x", "llm_error", {"policy": "gpt", "stage": "thoughts", "message": "401 invalid key"}, problem_id="P")
    await store.close()
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        app.open_run("r-x")
        assert await wait_for(pilot, lambda: app.error_log)
        assert "applying events" in app.error_log[0][1]
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.state.last_seq == 3


async def test_new_search_form_creates_the_run_and_attaches(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    launched: list[str] = []

    class FakeLauncher:
        """Stands in for engine.jobs: writes a short search into the run from a task."""

        def launch_run(self, db_path: str, run_id: str) -> int:
            launched.append(run_id)
            asyncio.get_running_loop().create_task(self._write(run_id))
            return 4242

        async def _write(self, run_id: str) -> None:
            from bdc_tui.demo import search_events

            s = app.store
            await s.claim_run(run_id)
            problems = await s.run_problems(run_id)
            for e in search_events(problems[0]["problem_id"], max_nodes=12):
                s.emit(run_id, e.kind, e.payload, problem_id=e.problem_id, node_id=e.node_id)
            await s.flush()

        def launch_job(self, db_path: str, job_id: str) -> int:
            return 4243

        def cancel(self, pid: int) -> bool:
            return True

    app = make_app(db, launcher=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("n")
        from bdc_tui.screens.new_search import NewSearchScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, NewSearchScreen))
        form = app.screen
        form.query_one("#rollouts").value = "3"
        form.query_one("#limit").value = "1"
        form.query_one("#agents").select(0)  # nothing is ticked when the form opens
        await pilot.press("ctrl+s")
        from bdc_tui.screens.confirm import ConfirmScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        await pilot.press("y")
        assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=20)
        assert await wait_for(pilot, lambda: app.screen.tree_view.node_count >= 12, timeout=20)
        run = await app.store.run(launched[0])
        assert run.config["search"]["rollouts"] == 3 and run.config["subset"]["limit"] == 1
        assert run.dataset == "humaneval" and len(run.agents) >= 1
        assert len(await app.store.run_problems(run.id)) == 1


async def test_new_search_form_reports_bad_fields(tmp_path: Path) -> None:
    app = make_app(tmp_path / "f.db", launcher=object())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("n")
        await pilot.pause()
        app.screen.query_one("#rollouts").value = "many"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "whole number" in str(app.screen.query_one("#form-error").render())


async def test_first_start_installs_with_progress_then_offers_a_search(tmp_path: Path) -> None:
    calls: list[str] = []

    def fake_install(name: str, progress=None) -> None:
        from engine.agents.install import InstallProgress

        for done in (0, 50, 100):
            progress(InstallProgress(model=name, stage="download", done=done, total=100))
        calls.append(name)

    app = make_app(tmp_path / "fresh.db", first_start=True, installer=fake_install)
    async with app.run_test(size=SIZE) as pilot:
        from bdc_tui.screens.welcome import WelcomeScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("i")
        bar = app.screen.query_one("ProgressBar")
        assert await wait_for(pilot, lambda: bar.progress == 100, timeout=10)
        assert calls
        await pilot.press("s")
        from bdc_tui.screens.new_search import NewSearchScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, NewSearchScreen))
        assert app.screen.query_one("#limit").value == "1"
        assert app.screen.query_one("#dataset").value == "humaneval"


async def test_command_palette_opens_screens(demo_db: Path) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_runs(pilot)
        from bdc_tui.commands import BdcCommands

        names = [c[0] for c in BdcCommands(app.screen)._commands()]
        assert "Jobs: training and evaluation" in names and "Replay run r-demo-humaneval" in names
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Jobs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        from bdc_tui.screens.jobs import JobsScreen

        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))


async def test_the_demo_store_is_marked_and_its_interrupted_run_resumes(demo_db: Path) -> None:
    """The demo runs come from the engine with registered strategies and stored agent configs."""
    from engine.search.registry import STRATEGIES
    from engine.search.runner import execute_run

    store = await Store.open(demo_db)
    try:
        assert await store.is_demo()
        row = await store.run("r-demo-interrupted")
        assert row.status == "cancelled" and row.strategy in STRATEGIES
        assert all(a["model"].startswith("scripted:") for a in row.config["agents"])
        before = await store.last_seq(row.id)
        await execute_run(store, row.id)  # policies and sandbox built from the stored config
        row = await store.run(row.id)
        assert row.status == "finished" and await store.last_seq(row.id) > before
        [result] = [p["result"] for p in await store.run_problems(row.id)]
        assert result["status"] in ("solved", "finished")
    finally:
        await store.close()
