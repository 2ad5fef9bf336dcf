"""A failed run says why: in the runs list and on the live tree's status line (issue 10)."""

from __future__ import annotations

from pathlib import Path

from bdc_tui.screens.search import SearchScreen
from bdc_tui.widgets.run_status import RunStatus
from bdc_tui.widgets.runs_table import REASON_WIDTH, status_text
from tests.tui.conftest import SIZE, wait_for
from tests.tui.test_app import make_app, open_runs


def demo_reason(db: Path) -> str:
    """The demo store's failed run's reason, as the engine recorded it (an unknown scripted agent)."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        (error,) = conn.execute("SELECT error FROM runs WHERE id = 'r-demo-failed'").fetchone()
    return error


def test_the_status_cell_carries_the_start_of_the_reason() -> None:
    assert str(status_text("failed", "AgentsFailed: all 17 LLM calls failed")) == "✗ failed: all 17 LLM calls failed"
    long = status_text("failed", "AgentsFailed: " + "x" * 100).plain
    assert long.endswith("…") and len(long) == len("✗ failed: ") + REASON_WIDTH
    assert str(status_text("finished", "ignored")) == "✓ finished"
    assert str(status_text("failed")) == "✗ failed"


async def test_runs_list_and_live_tree_show_why_a_run_failed(demo_db: Path) -> None:
    reason = demo_reason(demo_db)
    assert "unknown scripted agent" in reason
    shown = reason.split(": ", 1)[1] if reason.split(": ", 1)[0].isidentifier() and ": " in reason else reason
    app = make_app(demo_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_runs(pilot)
        cell = screen.table.get_cell("r-demo-failed", "status")
        assert str(cell) == f"✗ failed: {shown[: REASON_WIDTH - 1]}…"
        app.open_run("r-demo-failed")  # it failed before its first node: the tree is empty

        def status_line() -> str:
            lines = app.screen.query(RunStatus) if isinstance(app.screen, SearchScreen) else []
            return lines[0]._content.plain if lines else ""

        assert await wait_for(pilot, lambda: status_line().startswith(f" failed  {reason}")), status_line()


async def test_the_new_search_form_refuses_an_unknown_agent_before_creating_a_run(tmp_path: Path) -> None:
    from bdc_tui.screens.new_search import NewSearchScreen
    from bdc_tui.screens.runs import RunsScreen

    app = make_app(tmp_path / "f.db", launcher=object())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewSearchScreen))
        form = app.screen
        form.query_one("#limit").value = "1"
        form.query_one("#agents").select(0)  # nothing is ticked when the form opens
        for i in form.query_one("#agents").selected:  # whatever is chosen now names a provider that does not exist
            label, _ = form.agent_specs[i]
            form.agent_specs[i] = (label, {"name": "typo", "model": "nosuch/model-xyz"})
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error")
        assert await wait_for(pilot, lambda: "unknown provider 'nosuch'" in str(error.render()), timeout=30)
        assert isinstance(app.screen, NewSearchScreen) and await app.store.runs() == []
