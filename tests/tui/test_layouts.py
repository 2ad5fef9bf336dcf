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
        rid = await store.create_run(
            dataset="humaneval", strategy="mcts", agents=["scripted-canonical"], config={}, problems=problems
        )
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


def eval_result() -> dict:
    """The exact shape engine.jobs.kinds.run_eval returns, from real summaries."""
    from engine.evaluation.tables import ProblemResult, summarize

    summaries = {}
    for solver, passed in (("w/o tuning", 1), ("DisenLoRA", 3)):
        res = [ProblemResult(f"mbpp/{i}", "mbpp", "all", 1.0 if i < passed else 0.25, i < passed) for i in range(4)]
        res += [
            ProblemResult(f"apps/{i}", "apps", d, 1.0 if i < passed else 0.0, i < passed)
            for i, d in enumerate(("introductory", "interview", "interview", "competition"))
        ]
        summaries[solver] = summarize(res)
    rows = [
        {"solver": s, "dataset": ds, "difficulty": diff, "pr": v["pr"], "ac": v["ac"], "n": v["n"]}
        for s, by_ds in summaries.items()
        for ds, by_diff in by_ds.items()
        for diff, v in by_diff.items()
    ]
    return {"rows": rows, "summaries": summaries, "results": {}, "base": "/models/tiny-base"}


@pytest.mark.parametrize("size", SIZES)
async def test_eval_results_are_the_cli_table_without_a_repeated_group(tmp_path: Path, size) -> None:
    from rich.console import Console

    from engine.evaluation.tables import table2

    result = eval_result()
    app = make_app(tmp_path / "r.db")
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        job = await app.store.create_job("eval", {"solvers": ["base", "disenlora"]})
        await app.store.finish_job(job, "finished", result=result)
        app.action_jobs()
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown == job)
        widget = app.screen.query_one("ResultsTable")
        assert await wait_for(pilot, lambda: "DisenLoRA" in widget.plain_text())
        shown = widget.plain_text()
    cli = Console(width=400, record=True, color_system=None, file=__import__("io").StringIO())
    cli.print(table2(result["summaries"], title="PR / AC  (base: tiny-base)"))
    assert shown == cli.export_text()
    header = shown.splitlines()[2]
    # (PR, AC) per group, none repeated: mbpp has one difficulty, so Overall alone
    assert header.count("mbpp") == 2 and header.count("apps") == 8
    assert shown.count("Overall") == 4  # one (PR, AC) pair per dataset


def test_rows_only_results_fold_into_the_same_table() -> None:
    from bdc_tui.widgets.results_table import summaries_from_rows

    result = eval_result()
    rows = [r for r in result["rows"] if r["difficulty"] != "overall"]

    def figures(summaries):  # what the table draws: PR, AC and n of each cell
        return {
            s: {
                d: {k: {m: float(c[m]) for m in ("pr", "ac", "n")} for k, c in by_k.items()} for d, by_k in by_d.items()
            }
            for s, by_d in summaries.items()
        }

    assert figures(summaries_from_rows(rows)) == figures(result["summaries"])


@pytest.fixture
def kolkata_time(monkeypatch: pytest.MonkeyPatch):
    """A zone 5h30 off UTC, so local and UTC times can never be confused."""
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def test_times_are_local(tmp_path: Path, kolkata_time) -> None:
    from bdc_tui.format import local_clock, local_time

    assert local_time(0.0 + 3600) == "1970-01-01 06:30" and local_clock(3600 + 59) == "06:30:59"
    app = make_app(tmp_path / "t.db")
    async with app.run_test(size=SIZES[0]) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        rid = await app.store.create_run(dataset="humaneval", strategy="mcts", agents=[], config={})
        assert await wait_for(pilot, lambda: rid in app.screen.table.summaries)
        created = app.screen.table.summaries[rid].run.created_at
        import time

        assert str(app.screen.table.get_cell(rid, "created")) == time.strftime(
            "%Y-%m-%d %H:%M", time.gmtime(created + 5.5 * 3600)
        )


def footer_keys(app) -> set[str]:
    """The keys the footer shows whole inside the terminal (FooterKey is not exported:
    found by type name, its ``key`` attribute read with a default)."""
    out = set()
    for fk in app.screen.query("FooterKey"):
        r = fk.region
        if r.width and r.right <= app.size.width:
            out.add(getattr(fk, "key", ""))
    return out


async def keys_shown(pilot, keys: set[str]) -> bool:
    """The footer is recomposed after the screen's bindings settle: wait for it."""
    return await wait_for(pilot, lambda: keys <= footer_keys(pilot.app), timeout=5)


@pytest.mark.parametrize("size", SIZES)
async def test_runs_screen_fits_or_says_what_it_hides(demo_db: Path, size) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.table.row_count == 3)
        await pilot.pause()
        screen, table = app.screen, app.screen.table
        hint = screen.query_one("#runs-columns")
        # the valuable columns are always there and inside the view
        x = 0
        for col in table.ordered_columns:
            width = col.get_render_width(table)
            if col.key.value in ("run", "status", "progress", "PR", "AC", "cost"):
                assert x + width <= table.size.width, f"{col.key.value} is off screen at {size}"
            x += width
        hidden = [c for c in ("agents", "strategy", "dataset", "created") if c not in table.shown]
        if size[0] < 120:
            assert hidden and hint.display and all(c in str(hint.render()) for c in hidden)
        else:
            assert hidden == [] and not hint.display
        assert await keys_shown(pilot, {"q", "c", "j", "n", "e", "d", "p", "l"}), footer_keys(app)


@pytest.mark.parametrize("size", SIZES)
async def test_jobs_and_forms_keep_their_keys_and_whole_labels(demo_db: Path, size) -> None:
    from textual.widgets import Label

    from bdc_tui.screens.new_eval import NewEvalScreen
    from bdc_tui.screens.new_search import NewSearchScreen
    from tests.tui.conftest import RecordingLauncher

    app = make_app(demo_db, launcher=RecordingLauncher())
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("j")
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.pause()
        assert await keys_shown(pilot, {"escape", "e", "c", "q"}), footer_keys(app)
        for key, form in (("n", NewSearchScreen), ("e", NewEvalScreen)):
            await pilot.press("escape")
            assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
            await pilot.press(key)
            assert await wait_for(pilot, lambda form=form: isinstance(app.screen, form))
            await pilot.pause()
            assert await keys_shown(pilot, {"escape", "ctrl+s"}), footer_keys(app)
            for label in app.screen.query(Label):
                text = str(label.render())
                assert cell_len(text) <= label.content_region.width, f"label {text!r} cut at {size}"


@pytest.mark.parametrize("size", SIZES)
async def test_jobs_screen_training_results_and_one_curve_per_expert(tmp_path: Path, size) -> None:
    from engine.jobs.reporter import JobReporter

    app = make_app(tmp_path / "j.db")
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        store = app.store
        cluster = await store.create_job("cluster", {"k": 3})
        await store.finish_job(cluster, "finished", result={"k": 3, "n": 90, "points": [[0, 0]] * 3})
        train = await store.create_job("train", {"mode": "experts"})
        # the real reporter, fed what experts.py's tagged progress sends: 3 experts x 4 steps
        import asyncio

        rep = JobReporter(store, train, asyncio.get_running_loop())
        for k in range(3):
            for step in range(1, 5):
                rep(
                    {
                        "event": "progress",
                        "step": step,
                        "total": 4,
                        "loss": 2.0 - 0.1 * step + k,
                        "expert": k,
                        "experts": 3,
                    }
                )
        await pilot.pause()
        await store.flush()
        await store.finish_job(
            train, "finished", result={"mode": "experts", "status": "done", "step": 4, "total": 4, "final_loss": 1.6}
        )
        app.action_jobs()
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown)
        screen = app.screen
        table = screen.query_one("#jobs", DataTable)
        for job in (train, cluster):
            table.move_cursor(row=table.get_row_index(job))
            assert await wait_for(pilot, lambda job=job: screen.shown == job)
            await pilot.pause(0.2)
            assert not screen.query_one("#job-results-box").display  # no "no results yet" under it
            line = str(screen.query_one("#job-result-line").render())
            assert ("k 3" in line and "n 90" in line) if job == cluster else "final loss 1.6" in line
        table.move_cursor(row=table.get_row_index(train))
        plot = screen.query_one("LossPlot")
        assert await wait_for(pilot, lambda: sorted(plot.series) == ["expert 0", "expert 1", "expert 2"])
        assert all(len(v) == 4 for _, v in plot.series.values())
        assert plot.series["expert 2"][1] == pytest.approx([3.9, 3.8, 3.7, 3.6])


def test_the_loss_plot_draws_a_legend_entry_per_expert() -> None:
    """plotext draws each labelled series with its name in the legend."""
    from bdc_tui.widgets.loss_plot import LossPlot

    plot = LossPlot()
    plot.series = {}
    plot.refresh = lambda *a, **k: None  # not mounted: only the plotext figure is built
    plot.extend_series([(f"expert {k}", s, 1.0 + k - 0.1 * s) for k in range(3) for s in range(1, 5)])
    plot.plt.plotsize(80, 20)
    drawn = plot.plt.build()
    assert all(f"expert {k}" in drawn for k in range(3))


@pytest.mark.parametrize("size", SIZES)
async def test_help_explains_the_marks_and_every_screens_keys(demo_db: Path, size) -> None:
    from bdc_tui.screens.help import HelpScreen
    from bdc_tui.screens.new_search import NewSearchScreen
    from tests.tui.conftest import RecordingLauncher

    app = make_app(demo_db, launcher=RecordingLauncher())
    async with app.run_test(size=size) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.table.row_count)
        await pilot.press("question_mark")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.plain_text()
        for mark in ("N ", "Q ", "PR ", "AC ", "▶ ", "★ ", "✓ ", "✗ ", "↻ "):
            assert any(line.strip().startswith(mark) for line in text.splitlines()), mark
        this = text.split("This screen: Runs (home)")[1].split("Live search tree")[0]
        assert "Clusters" in this and "Delete" in this and "Jobs" in this
        for section in (
            "Live search tree",
            "Replay",
            "Event log",
            "Jobs: training and evaluation",
            "Clusters",
            "New search form",
            "New evaluation form",
            "Everywhere",
        ):
            assert section in text
        assert "Command palette" in text.split("Everywhere")[1] and "Quit" in text.split("Everywhere")[1]
        assert app.screen.query_one("#help-box").region.bottom <= size[1]
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("f1")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        # from the palette
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Help: keys")
        await pilot.pause(0.3)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        # in a form, ? is just a character
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewSearchScreen))
        app.screen.query_one("#path").focus()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, NewSearchScreen) and app.screen.query_one("#path").value == "?"


async def test_two_refreshes_at_once_never_draw_the_loss_twice(demo_db: Path) -> None:
    """The refresh timer and a cursor move both read new metric points; only one keeps them."""
    import asyncio

    app = make_app(demo_db, refresh_interval=30)
    async with app.run_test(size=SIZES[0]) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        app.action_jobs()
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown)
        screen = app.screen
        table = screen.query_one("#jobs", DataTable)
        table.move_cursor(row=table.get_row_index("j-demo-train"))
        plot = screen.query_one("LossPlot")
        assert await wait_for(pilot, lambda: screen.shown == "j-demo-train" and len(plot.values) == 60)
        screen.shown = None  # as if just selected: the next refresh re-reads every point
        await asyncio.gather(screen.refresh_detail(), screen.refresh_detail())
        assert len(plot.values) == 60
