"""Flows a first-time user expects (issue 18): a failed run says why, the root shows the
problem and the settings, the inspector is never blank, the event log reads right."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdc_tui.screens.search import SearchScreen
from bdc_tui.widgets.node_inspector import NodeInspector
from engine.store import Store
from tests.tui.conftest import wait_for
from tests.tui.test_app import make_app, open_event_log, open_runs

SIZES = [(100, 30), (160, 45)]


async def stored_error(db: Path, run_id: str) -> str:
    store = await Store.open(db, readonly=True)
    try:
        return (await store.run(run_id)).error
    finally:
        await store.close()


async def open_view(pilot, run_id: str) -> SearchScreen:
    app = pilot.app
    await open_runs(pilot)
    app.open_run(run_id)
    assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen) and bool(app.screen.query(NodeInspector)))
    return app.screen


@pytest.mark.parametrize("size", SIZES)
async def test_a_failed_run_says_why_in_the_event_log_and_the_inspector(demo_db: Path, size) -> None:
    reason = await stored_error(demo_db, "r-demo-failed")
    assert reason
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        screen, table = await open_event_log(pilot, "r-demo-failed")
        await pilot.press("4")  # the error filter
        assert await wait_for(pilot, lambda: table.row_count == 1)
        row = table.get_row_at(0)
        assert str(row[4]) == "run_finished" and reason in str(row[5])
        line = str(screen.query_one("#log-filter").render())
        assert f"failed: {reason}" in line and "live" not in line
        await pilot.press("escape")
        view = await open_view(pilot, "r-demo-failed")
        inspector = view.query_one(NodeInspector)
        # no problem started: the inspector shows the run, its reason and its settings
        assert await wait_for(pilot, lambda: reason[:40] in inspector.plain_text(width=400))
        text = inspector.plain_text(width=400)
        assert "run failed" in text and "rollouts=8" in text and "scripted:canonicl" in text


@pytest.mark.parametrize("size", SIZES)
async def test_replay_opens_expanded_to_the_current_step(demo_db: Path, size) -> None:
    from bdc_tui.screens.replay import ReplayScreen
    from bdc_tui.widgets.search_tree import SearchTreeView

    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        app.open_run("r-demo-humaneval", "replay")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        screen = app.screen
        view = screen.query_one(SearchTreeView)
        assert await wait_for(pilot, lambda: view.node_count > 1)
        assert view.root.is_expanded
        # the node the last event is about (or the selection) is on screen and inspected
        assert view.cursor_node is not None and view.cursor_node.data is not None
        assert await wait_for(pilot, lambda: screen.inspector.node_id == view.cursor_node.data)
        # "collapsed" is the tree's own +, never the ▶ that marks the selection path
        assert view.ICON_NODE.strip() != "▶" and view.ICON_NODE_EXPANDED.strip() != "▶"


@pytest.mark.parametrize("size", SIZES)
async def test_a_one_node_tree_inspects_its_root_with_the_problem_and_settings(demo_db: Path, size) -> None:
    from bdc_tui.screens.replay import ReplayScreen

    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        app.open_run("r-demo-humaneval", "replay", 3)  # run_started, problem_started, root
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        screen = app.screen
        assert len(screen.tree.nodes) == 1
        assert await wait_for(pilot, lambda: screen.inspector.node_id == "0")
        assert await wait_for(pilot, lambda: "def has_close_elements" in screen.inspector.plain_text(width=200))
        text = screen.inspector.plain_text(width=200)
        assert "problem HumanEval/0" in text and "rollouts=8" in text and "erratic-1 (scripted:erratic)" in text
        # the picker marks each problem: being searched here, not started for the others
        select = screen.query_one("#problem-select")
        labels = [str(label) for label, _ in select._options[1:]]
        assert labels == ["… HumanEval/0", "· HumanEval/1", "· HumanEval/2"]


@pytest.mark.parametrize("size", SIZES)
async def test_event_log_of_an_ended_run(demo_db: Path, size) -> None:
    from textual.widgets import Footer

    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        screen, table = await open_event_log(pilot, "r-demo-interrupted")
        assert await wait_for(pilot, lambda: table.row_count > 10 and screen.run_status == "cancelled")
        line = str(screen.query_one("#log-filter").render())
        assert "run cancelled" in line and "live" not in line
        # the kind column is not repeated in "what"
        for r in range(table.row_count):
            kind, what = str(table.get_row_at(r)[4]), str(table.get_row_at(r)[5])
            assert not what.startswith(kind.replace("_", " ")), (kind, what)
        await pilot.press("home")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("f")
        assert await wait_for(
            pilot, lambda: any("nothing live to follow" in str(n.message) for n in app._notifications)
        )
        assert screen.query_one(Footer).compact


@pytest.mark.parametrize("size", SIZES)
async def test_copy_code_and_find_nodes(demo_db: Path, size, private_data_dir: Path) -> None:
    from bdc_tui.screens.find_node import FindNodeScreen

    app = make_app(demo_db)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append
    async with app.run_test(size=size) as pilot:
        view = await open_view(pilot, "r-demo-humaneval")
        assert await wait_for(pilot, lambda: view.tree_view.node_count > 3 and view.inspector.node_id == "0")
        # go to node #5 by number
        await pilot.press("g")
        assert await wait_for(pilot, lambda: isinstance(app.screen, FindNodeScreen))
        await pilot.press("#", "5", "enter")
        assert await wait_for(pilot, lambda: app.screen is view and view.inspector.node_id == "5")
        # copy its best program: a file without line numbers, and the clipboard
        await pilot.press("y")
        node = view.tree.nodes["5"]
        code = node.best_solution()["code"]
        files = list((private_data_dir / "exports").glob("*.py"))
        assert len(files) == 1 and "node5" in files[0].name
        assert files[0].read_text().rstrip("\n") == code.rstrip("\n") and copied == [code]
        # list the pruned nodes, pick the second
        await pilot.press("g")
        assert await wait_for(pilot, lambda: isinstance(app.screen, FindNodeScreen))
        find = app.screen
        for ch in "pruned":
            await pilot.press(ch)
        pruned = sorted((n.id for n in view.tree.nodes.values() if n.pruned), key=int)
        assert await wait_for(pilot, lambda: [n.id for n in find.hits] == pruned)
        assert f"pruned: {len(pruned)} nodes" in find.what
        await pilot.press("tab", "down", "enter")
        assert await wait_for(pilot, lambda: app.screen is view and view.inspector.node_id == pruned[1])


@pytest.mark.parametrize("size", SIZES)
async def test_evaluation_detail_lists_problems_and_programs(demo_db: Path, size, private_data_dir: Path) -> None:
    from bdc_tui.screens.eval_detail import EvalDetailScreen
    from bdc_tui.screens.jobs import JobsScreen
    from engine.evaluation.tables import ProblemResult
    from engine.store.eval_results import EvalResults

    with EvalResults(demo_db) as results:  # what an evaluation writes as each problem lands
        results.save(
            "k1",
            "j-demo-eval",
            "DisenLoRA",
            ProblemResult("HumanEval/0", "humaneval", "intro", 1.0, True, program="def f():\n    return 1\n"),
        )
        results.save(
            "k1",
            "j-demo-eval",
            "DisenLoRA",
            ProblemResult("HumanEval/1", "humaneval", "intro", 0.5, False, program="def g():\n    return 2\n"),
        )
        results.save(
            "k1",
            "j-demo-eval",
            "w/o tuning",
            ProblemResult("HumanEval/0", "humaneval", "intro", 0.0, False, error="sandbox crashed"),
        )
    app = make_app(demo_db)
    copied: list[str] = []
    app.copy_to_clipboard = copied.append
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        await pilot.press("j")
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown == "j-demo-eval")
        await pilot.press("d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, EvalDetailScreen) and len(app.screen.rows) == 3)
        screen = app.screen
        table = screen.query_one("#eval-rows")
        assert [str(table.get_row_at(i)[3]) for i in range(3)] == ["passed", "failed", "error"]
        assert "3 results: 1 error, 1 failed, 1 passed" in str(screen.query_one("#eval-summary").render())
        await pilot.press("down")
        await pilot.press("y")
        files = list((private_data_dir / "exports").glob("*.py"))
        assert (
            len(files) == 1
            and files[0].read_text() == "def g():\n    return 2\n"
            and copied == ["def g():\n    return 2\n"]
        )
        await pilot.press("x")
        assert table.row_count == 2 and "failed only" in str(screen.query_one("#eval-summary").render())


@pytest.mark.parametrize("size", SIZES)
async def test_pipeline_exports_then_starts_a_cluster_job_after_confirmation(
    demo_db: Path, size, private_data_dir: Path
) -> None:
    import json

    from bdc_tui.screens.confirm import ConfirmScreen
    from bdc_tui.screens.pipeline import EXAMPLES, PipelineScreen
    from tests.tui.conftest import RecordingLauncher

    launcher = RecordingLauncher()
    app = make_app(demo_db, launcher=launcher)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        app.push_screen(PipelineScreen())
        assert await wait_for(
            pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.finished_runs == ["r-demo-humaneval"]
        )
        screen = app.screen
        await pilot.press("3")  # training before clustering: refused, nothing created
        assert launcher.jobs == [] and "cluster the examples (step 2) first" in str(
            screen.query_one("#form-error").render()
        )
        await pilot.press("1")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: screen.folder is not None and (screen.folder / EXAMPLES).is_file())
        rows = [json.loads(line) for line in (screen.folder / EXAMPLES).read_text().splitlines()]
        # what `bdc export r-demo-humaneval` writes: the demo's problems are solved at the root,
        # so each gives a t2s pair and no p2t (no thoughts on the way)
        assert [r["stage"] for r in rows] == ["t2s"] * 3 and len({r["problem_id"] for r in rows}) == 3
        assert screen.folder.parent == private_data_dir / "pipeline"
        await pilot.press("2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # no: nothing starts
        assert await wait_for(pilot, lambda: app.screen is screen) and launcher.jobs == []
        await pilot.press("2")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: len(launcher.jobs) == 1)
        job = await app.store.job(launcher.jobs[0])
        assert job.kind == "cluster" and job.config["data"] == str(screen.folder / EXAMPLES)
        assert job.config["out"] == str(screen.folder)
