"""Every screen at the two sizes the issue names (100x30 and 160x45): its key widgets are on
screen with room to show something, its footer keeps the keys that matter, and the lines a
user reads (tree labels, status, filter line) are not cut where they carry the meaning.

One app session walks the screens a user reaches from the runs list (cheaper than one app
per screen); the first start and the store error screen get their own apps.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from textual.widget import Widget

from bdc_tui.screens.clusters import ClustersScreen
from bdc_tui.screens.error import ErrorScreen
from bdc_tui.screens.eval_detail import EvalDetailScreen
from bdc_tui.screens.event_log import EventLogScreen
from bdc_tui.screens.find_node import FindNodeScreen
from bdc_tui.screens.jobs import JobsScreen
from bdc_tui.screens.replay import ReplayScreen
from bdc_tui.screens.search import SearchScreen
from bdc_tui.screens.welcome import WelcomeScreen
from tests.tui.conftest import wait_for
from tests.tui.test_app import make_app, open_runs
from tests.tui.test_layouts import footer_keys

SIZES = [(100, 30), (160, 45)]


def on_screen(widget: Widget, size: tuple[int, int], *, min_width: int = 1, min_height: int = 1) -> bool:
    """Laid out inside the terminal with at least this much room."""
    r = widget.region
    return (
        r.width >= min_width
        and r.height >= min_height
        and r.x >= 0
        and r.y >= 0
        and r.right <= size[0]
        and r.bottom <= size[1]
    )


def drawn(widget: Widget) -> str:
    """The text the widget draws in its region right now (what the user sees)."""
    return "\n".join("".join(seg.text for seg in widget.render_line(y)) for y in range(widget.region.height))


async def has_keys(pilot, keys: set[str]) -> bool:
    return await wait_for(pilot, lambda: keys <= footer_keys(pilot.app), timeout=5)


@pytest.mark.parametrize("size", SIZES)
async def test_each_screen_shows_its_widgets_and_keys(demo_db: Path, size) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)

        # live tree: picker, tree, inspector and status line; labels keep id, policy and N/Q/PR
        app.open_run("r-demo-humaneval")
        assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        view = app.screen
        assert await wait_for(pilot, lambda: view.tree_view.node_count > 3 and view.inspector.node_id is not None)
        await pilot.pause()
        for selector, width in (("#problem-select", 20), ("#tree", 40), ("#inspector", 25), ("#run-status", 60)):
            assert on_screen(view.query_one(selector), size, min_width=width), selector
        assert view.query_one("#tree").region.height >= 10
        # the thought may be cut (the inspector shows it whole); a line's statistics never are
        lines = [line for line in drawn(view.tree_view).splitlines() if "N=" in line]
        assert len(lines) >= min(len(view.tree.nodes), view.tree_view.content_region.height - 1)
        for line in lines:
            assert re.search(r"N=\d+ Q=\d\.\d\d PR=(\d+%|–)", line), line
        status = drawn(view.query_one("#run-status"))
        for part in ("finished", view.tree.problem_id, f"nodes {len(view.tree.nodes)}", "solved by #", "problems 3"):
            assert part in status, (part, status)
        assert await has_keys(pilot, {"escape", "f", "y", "g", "F", "l", "p", "b", "question_mark", "q"}), footer_keys(
            app
        )
        # the finder: input and list on screen
        await pilot.press("g")
        assert await wait_for(pilot, lambda: isinstance(app.screen, FindNodeScreen))
        await pilot.pause()
        assert on_screen(app.screen.query_one("#find-input"), size, min_width=40)
        assert on_screen(app.screen.query_one("#find-list"), size, min_width=40, min_height=5)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is view)

        # replay: the timeline under the tree and the stepping keys
        await pilot.press("p")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        replay = app.screen
        await pilot.pause()
        assert on_screen(replay.query_one("#timeline"), size, min_width=60, min_height=2)
        assert on_screen(replay.query_one("#tree"), size, min_width=40, min_height=10)
        assert await has_keys(
            pilot, {"right", "space", "plus", "n", "b", "escape", "g", "F", "y", "question_mark", "q"}
        ), footer_keys(app)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is view)

        # event log: the filter line and the table, with the paging keys
        await pilot.press("l")
        assert await wait_for(pilot, lambda: isinstance(app.screen, EventLogScreen))
        log = app.screen
        table = log.query_one("#log")
        assert await wait_for(pilot, lambda: table.row_count > 10)
        assert on_screen(log.query_one("#log-filter"), size, min_width=60)
        assert on_screen(table, size, min_width=80, min_height=10)
        assert await has_keys(pilot, {"escape", "o", "n", "f", "enter", "q"}), footer_keys(app)
        await pilot.press("escape")
        await pilot.press("escape")
        await open_runs(pilot)

        # jobs: the table, the detail and its keys; then an evaluation's per-problem view
        await pilot.press("j")
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown == "j-demo-eval")
        jobs = app.screen
        await pilot.pause()
        assert on_screen(jobs.query_one("#jobs"), size, min_width=80, min_height=3)
        assert on_screen(jobs.query_one("#job-detail"), size, min_width=80, min_height=5)
        assert await has_keys(pilot, {"escape", "e", "x", "c", "d", "q"}), footer_keys(app)
        await pilot.press("d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, EvalDetailScreen))
        detail = app.screen
        await pilot.pause()
        for selector in ("#eval-summary", "#eval-rows", "#eval-program-box"):
            assert on_screen(detail.query_one(selector), size, min_width=40), selector
        assert await has_keys(pilot, {"escape", "x", "y", "q"}), footer_keys(app)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is jobs)

        # clusters: the scatter plot beside the sizes table
        await pilot.press("c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ClustersScreen) and app.screen.shown_sizes)
        clusters = app.screen
        await pilot.pause()
        plot, side = clusters.query_one("#cluster-plot"), clusters.query_one("#cluster-side")
        assert on_screen(plot, size, min_width=50, min_height=15) and on_screen(side, size, min_width=30)
        assert plot.region.right <= side.region.x  # side by side, not overlapping
        info = drawn(clusters.query_one("#cluster-info"))
        assert "cluster sizes" in info and all(f"{n}" in info for n in clusters.shown_sizes)
        assert await has_keys(pilot, {"escape", "j", "q"}), footer_keys(app)


@pytest.mark.parametrize("size", SIZES)
async def test_the_welcome_dialog_fits_with_its_three_choices(tmp_path: Path, size) -> None:
    def fake_install(name: str, progress=None) -> None:
        from engine.agents.install import InstallProgress

        progress(InstallProgress(model=name, stage="download", done=100, total=100))

    app = make_app(tmp_path / "fresh.db", first_start=True, installer=fake_install)
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        screen = app.screen
        await pilot.pause()
        for button in ("#install", "#search", "#later"):
            assert on_screen(screen.query_one(button), size, min_width=8), button
        text = screen.query_one("#welcome-text")
        assert on_screen(text, size, min_width=60)
        # every line of the explanation is drawn: the dialog is tall enough, nothing scrolled away
        assert text.region.height >= len(str(text.render()).splitlines())
        await pilot.press("i")
        bar = screen.query_one("ProgressBar")
        assert await wait_for(pilot, lambda: bar.progress == 100)
        await pilot.pause()
        assert on_screen(bar, size) and on_screen(screen.query_one("#install-status"), size)
        assert on_screen(screen.query_one("#search"), size)  # the next step stays in reach


@pytest.mark.parametrize("size", SIZES)
async def test_the_store_error_screen_shows_the_reason_and_how_to_quit(tmp_path: Path, size) -> None:
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    app = make_app(newer)
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
        screen = app.screen
        await pilot.pause()
        message = screen.query_one("#error-message")
        assert on_screen(message, size, min_width=40)
        assert "newer" in str(message.render())
        assert on_screen(screen.query_one(".hint"), size)
        assert await has_keys(pilot, {"q"}), footer_keys(app)
        await pilot.press("q")
