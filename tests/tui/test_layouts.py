"""Screens at the two sizes the issue names (100x30 and 160x45): live rows keep every
cell whole, tables say when they hide columns, footers keep the keys that matter."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable

from bdc_tui import services
from bdc_tui.app import BdcApp
from bdc_tui.screens.jobs import JobsScreen
from bdc_tui.screens.runs import RunsScreen
from tests.tui.conftest import wait_for

SIZES = [(100, 30), (160, 45)]


def make_app(db: Path, **kw) -> BdcApp:
    kw.setdefault("first_start", False)
    kw.setdefault("launcher", None)
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("refresh_interval", 0.3)
    return BdcApp(db, **kw)


def cut_cells(table: DataTable) -> list[str]:
    """Every cell whose text is wider than its column (drawn cut off with an ellipsis)."""
    out = []
    for key, column in table.columns.items():
        room = column.get_render_width(table) - 2 * table.cell_padding
        for row_key in table.rows:
            text = str(table.get_cell(row_key, key))
            if cell_len(text) > room:
                out.append(f"{key.value}={text!r} in {room} cells")
    return out


@pytest.mark.parametrize("size", SIZES)
async def test_a_run_row_updated_live_keeps_status_pr_and_ac_whole(tmp_path: Path, size) -> None:
    app = make_app(tmp_path / "live.db")
    problems = services.load_problems("humaneval", None, {"limit": 3})
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        store = app.store
        rid = await store.create_run(dataset="humaneval", strategy="mcts", agents=["scripted-canonical"],
                                     config={}, problems=problems)
        screen = app.screen
        assert await wait_for(pilot, lambda: rid in screen.table.summaries)
        assert screen.table.summaries[rid].run.status == "pending"
        # the run goes on live: every problem solved, the run finished
        for p in problems:
            store.set_problem_result(rid, p.id, "solved", {"private_pass_rate": 1.0, "passed_private": True})
        await store.set_run_status(rid, "finished")
        assert await wait_for(pilot, lambda: screen.table.summaries[rid].run.status == "finished", timeout=10)
        await pilot.pause()
        table = screen.table
        assert str(table.get_cell(rid, "PR")) == "100%" and str(table.get_cell(rid, "AC")) == "100%"
        assert str(table.get_cell(rid, "status")) == "✓ finished"
        assert cut_cells(table) == []


@pytest.mark.parametrize("size", SIZES)
async def test_a_job_row_updated_live_keeps_its_status_whole(tmp_path: Path, size) -> None:
    app = make_app(tmp_path / "jobs.db")
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        job = await app.store.create_job("eval", {"solvers": ["base"]})
        app.action_jobs()
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and job in app.screen.jobs)
        await app.store.finish_job(job, "cancelled", error="stopped by the user after a long message to show")
        table = app.screen.query_one("#jobs", DataTable)
        assert await wait_for(pilot, lambda: "cancelled" in str(table.get_cell(job, "status")), timeout=10)
        assert str(table.get_cell(job, "status")) == "■ cancelled"
        assert cut_cells(table) == []
