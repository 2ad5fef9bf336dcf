"""The evaluation form writes engine.jobs' eval config; results read job.result["rows"];
and a real search launched through the real launcher shows up solved in the live view."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bdc_tui.app import BdcApp
from bdc_tui.format import SOLVED
from bdc_tui.screens.jobs import JobsScreen
from bdc_tui.screens.new_eval import NewEvalScreen, eval_config
from bdc_tui.screens.runs import RunsScreen
from bdc_tui.screens.search import SearchScreen
from engine.errors import BdcError
from tests.tui.conftest import SIZE, RecordingLauncher, wait_for


def make_app(db: Path, **kw) -> BdcApp:
    kw.setdefault("first_start", False)
    kw.setdefault("launcher", None)
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("refresh_interval", 1.0)
    return BdcApp(db, **kw)


async def test_new_eval_form_creates_the_eval_job_config(tmp_path: Path) -> None:
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "e.db", launcher=launcher)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("e")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewEvalScreen))
        form = app.screen
        # the form checks the folders exist before anything starts
        for d in ("out/disen/disenlora", "out/disen/merges/ties", "ad/one", "ad/two"):
            (tmp_path / d).mkdir(parents=True)
        (tmp_path / "apps.jsonl").write_text("")
        form.query_one("#datasets").select("apps")
        form.query_one("#solvers").select("base")
        form.query_one("#solvers").select("disenlora")
        form.query_one("#solvers").select("merge:ties")
        await pilot.pause()  # Difficulty now offers the ticked datasets' levels
        form.query_one("#difficulty").value = "interview"
        form.query_one("#limit").value = "5"
        form.query_one("#data-path").value = str(tmp_path / "apps.jsonl")
        form.query_one("#artifacts").value = str(tmp_path / "out/disen")
        form.query_one("#adapters").value = f"{tmp_path / 'ad/one'}, {tmp_path / 'ad/two'}"
        form.query_one("#quant").value = "4bit"
        form.query_one("#batch-size").value = "4"
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: app.screen.query("#confirm-question"), timeout=10), str(
            app.screen.query_one("#form-error").render()
        )
        await pilot.press("y")
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and launcher.jobs, timeout=10)
        job = await app.store.job(launcher.jobs[0])
        assert job.kind == "eval"
        assert job.config == {
            "solvers": [
                "base",
                "merge:ties",
                "disenlora",
                f"adapter:{tmp_path / 'ad/one'}",
                f"adapter:{tmp_path / 'ad/two'}",
            ],
            "datasets": [
                {"name": "humaneval", "path": None, "limit": 5, "difficulty": None},
                {"name": "apps", "path": str(tmp_path / "apps.jsonl"), "limit": 5, "difficulty": "interview"},
            ],
            "base": None,
            "artifacts": str(tmp_path / "out/disen"),
            "quant": "4bit",
            "max_new_tokens": 512,
            "batch_size": 4,
        }


async def test_new_eval_form_explains_what_is_missing(tmp_path: Path) -> None:
    app = make_app(tmp_path / "e.db", launcher=RecordingLauncher())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("e")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewEvalScreen))
        app.screen.query_one("#solvers").select("sft")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "artifacts folder" in str(app.screen.query_one("#form-error").render())
        assert isinstance(app.screen, NewEvalScreen)


def test_eval_config_validation() -> None:
    kw = dict(
        solvers=["base"],
        adapters=[],
        datasets=["humaneval"],
        difficulty=None,
        limit=None,
        data_path="d/x.jsonl",
        base=None,
        artifacts=None,
        quant="none",
        max_new_tokens=None,
        batch_size=None,
    )
    cfg = eval_config(**kw)
    assert cfg["datasets"] == [{"name": "humaneval", "path": None, "limit": None, "difficulty": None}]
    assert eval_config(**dict(kw, datasets=["mbpp"]))["datasets"][0]["path"] == "d/x.jsonl"
    for bad in (
        dict(solvers=[]),
        dict(datasets=[]),
        dict(limit=0),
        dict(difficulty="interview"),
        dict(solvers=["experts"]),
        dict(batch_size=0),
    ):
        with pytest.raises(BdcError):
            eval_config(**dict(kw, **bad))


async def test_eval_results_read_the_rows_of_the_job_result(tmp_path: Path) -> None:
    """The exact shape engine.jobs.kinds.run_eval returns."""
    from engine.store import Store

    db = tmp_path / "r.db"
    store = await Store.open(db)
    job = await store.create_job("eval", {"solvers": ["base", "disenlora"], "datasets": [{"name": "apps"}]})
    rows = [
        {"solver": s, "dataset": "apps", "difficulty": d, "pr": pr, "ac": ac, "n": 10}
        for s, base in (("w/o tuning", 10.0), ("DisenLoRA", 20.0))
        for d, pr, ac in (("introductory", base + 1.5, base), ("interview", base + 0.5, base - 5))
    ]
    await store.finish_job(job, "finished", result={"rows": rows, "summaries": {}, "results": {}, "base": "tiny"})
    await store.close()
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        app.action_jobs()
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.shown == job)
        # the table fills in from a worker after the job is shown
        assert await wait_for(pilot, lambda: "DisenLoRA" in app.screen.query_one("ResultsTable").plain_text())
        text = app.screen.query_one("ResultsTable").plain_text()
        assert "DisenLoRA" in text and "w/o tuning" in text and "Intro. (10)" in text and "Inter. (10)" in text
        assert "21.50" in text and "10.50" in text  # PR cells
        assert "21.00" in text and "11.00" in text  # overall PR: mean over the difficulties


@pytest.mark.timeout(180)
async def test_real_search_through_the_real_launcher_shows_the_solved_tree(tmp_path: Path) -> None:
    """engine.jobs.launch_run spawns `python -m engine --db DB resume RUN`; the app attaches."""
    from engine import jobs
    from engine.search.config import RunConfig, SearchConfig
    from engine.search.runner import create_search_run
    from engine.store import Store

    db = tmp_path / "real.db"
    store = await Store.open(db)
    cfg = RunConfig(
        dataset="humaneval",
        strategy="mcts",
        agents=[{"name": "good", "model": "scripted:canonical"}],
        subset={"limit": 1},
        search=SearchConfig(rollouts=2, thoughts_per_policy=2),
    )
    run_id = await create_search_run(store, cfg)
    await store.close()

    app = make_app(db, launcher=jobs, poll_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and run_id in app.run_ids, timeout=20)
        app.resume_run(run_id)  # the app's own path: launcher.launch_run, then the live view
        assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=10)
        screen = app.screen
        finished = await wait_for(
            pilot, lambda: screen.state.status == "finished" and screen.run_status == "finished", timeout=90, step=0.2
        )
        log = jobs.log_dir(db) / f"{run_id}.log"
        assert finished, log.read_text() if log.exists() else "no log"
        tree = screen.tree
        assert tree is not None and tree.problem_id == "HumanEval/0"
        assert tree.solved_by is not None
        assert await wait_for(pilot, lambda: screen.tree_view.best_id is not None)
        best = screen.tree_view.best_id
        await pilot.press("b")
        assert await wait_for(pilot, lambda: screen.inspector.node_id == best)
        assert SOLVED in str(screen.tree_view.item(best).label)
        assert "passes every public test" in screen.inspector.plain_text()
        assert await wait_for(pilot, lambda: ("HumanEval/0", best) in screen._sandbox, timeout=10)
        # the sandbox verdicts the search recorded are read back for the inspector
        assert screen._sandbox[("HumanEval/0", best)], "no sandbox rows for the best node"
    await asyncio.sleep(0)
