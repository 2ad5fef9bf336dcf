"""The launch forms, driven through the Pilot at the two sizes the issue names (100x30,
160x45): nothing heavy pre-ticked, focus on the first field, ticks readable without
colour, the action bar on screen, every error at once, paths checked, and a confirmation
that names what will run before anything is created or started."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bdc_tui.app import BdcApp
from bdc_tui.screens.confirm import ConfirmScreen
from bdc_tui.screens.jobs import JobsScreen
from bdc_tui.screens.new_eval import NewEvalScreen
from bdc_tui.screens.new_search import NewSearchScreen
from bdc_tui.screens.runs import RunsScreen
from bdc_tui.widgets.check_list import CheckList
from tests.tui.conftest import RecordingLauncher, wait_for

SIZES = [(100, 30), (160, 45)]


def make_app(db: Path, **kw) -> BdcApp:
    kw.setdefault("first_start", False)
    kw.setdefault("launcher", RecordingLauncher())
    kw.setdefault("poll_interval", 0.05)
    kw.setdefault("refresh_interval", 1.0)
    return BdcApp(db, **kw)


async def open_form(pilot, key: str, screen_type):
    assert await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen))
    await pilot.press(key)
    assert await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type))
    await pilot.pause()
    return pilot.app.screen


def on_screen(app, selector: str) -> bool:
    """The widget is laid out inside the terminal, above the footer (not below the fold)."""
    w = app.screen.query_one(selector)
    r = w.region
    return w.display and r.height > 0 and r.y >= 0 and r.bottom <= app.size.height - 1 and r.right <= app.size.width


def error_text(app) -> str:
    return str(app.screen.query_one("#form-error").render())


@pytest.mark.parametrize("size", SIZES)
async def test_eval_form_opens_safe_and_focused(tmp_path: Path, size) -> None:
    app = make_app(tmp_path / "e.db")
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "e", NewEvalScreen)
        solvers = form.query_one("#solvers", CheckList)
        assert solvers.selected == []
        assert app.focused is form.query_one("#datasets")
        assert on_screen(app, "#launch") and on_screen(app, "#cancel")
        # one ctrl+s as the form opens never starts anything
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: "choose at least one solver" in error_text(app))
        assert isinstance(app.screen, NewEvalScreen) and app.launcher.jobs == []
        # a tick is a glyph, not only a colour
        assert not solvers.is_ticked_on_screen(0)
        solvers.select("base")
        await pilot.pause()
        assert solvers.is_ticked_on_screen(0) and not solvers.is_ticked_on_screen(1)


@pytest.mark.parametrize("size", SIZES)
async def test_search_form_opens_safe_and_focused(tmp_path: Path, size) -> None:
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "s.db", launcher=launcher)
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "n", NewSearchScreen)
        assert form.query_one("#agents", CheckList).selected == []
        assert app.focused is form.query_one("#dataset")
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: "choose at least one agent" in error_text(app))
        assert on_screen(app, "#form-error") and on_screen(app, "#launch")
        assert launcher.runs == []


@pytest.mark.parametrize("size", SIZES)
async def test_eval_form_shows_every_problem_at_once_and_checks_paths(tmp_path: Path, size) -> None:
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "e.db", launcher=launcher)
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "e", NewEvalScreen)
        form.query_one("#solvers").select("sft")
        form.query_one("#datasets").select("mbpp")
        form.query_one("#limit").value = "many"
        form.query_one("#data-path").value = str(tmp_path / "no-such.jsonl")
        form.query_one("#artifacts").value = str(tmp_path / "no-artifacts")
        form.query_one("#adapters").value = str(tmp_path / "no-adapter")
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = error_text(app)
        assert "Limit must be a whole number" in text
        assert "no-such.jsonl does not exist" in text
        assert "artifacts folder" in text and "no-artifacts does not exist" in text
        assert "no-adapter does not exist" in text
        assert on_screen(app, "#form-error") and on_screen(app, "#launch")
        assert isinstance(app.screen, NewEvalScreen) and launcher.jobs == []

        # the folder exists but the solver's own sub-folder does not
        (tmp_path / "art").mkdir()
        form.query_one("#artifacts").value = str(tmp_path / "art")
        form.query_one("#limit").value = "3"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert f"sft needs {tmp_path / 'art' / 'sft'}" in error_text(app)
        assert "Limit" not in error_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_eval_launch_asks_first_and_names_what_will_run(tmp_path: Path, size) -> None:
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "e.db", launcher=launcher)
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "e", NewEvalScreen)
        form.query_one("#solvers").select("base")
        form.query_one("#limit").value = "2"
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = app.screen.plain_text()
        assert "solvers    base" in text and "humaneval (first 2)" in text
        assert on_screen(app, "#yes") and on_screen(app, "#no")
        assert app.focused is app.screen.query_one("#no")  # enter alone starts nothing
        await pilot.press("n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewEvalScreen))
        assert launcher.jobs == [] and await app.store.jobs() == []
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen) and launcher.jobs)
        job = await app.store.job(launcher.jobs[0])
        assert job.config["solvers"] == ["base"] and job.config["datasets"][0]["limit"] == 2


@pytest.mark.parametrize("size", SIZES)
async def test_search_launch_asks_first_and_names_the_problems(tmp_path: Path, size) -> None:
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "s.db", launcher=launcher)
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "n", NewSearchScreen)
        names = [spec["name"] for _, spec in form.agent_specs]
        form.query_one("#agents").select(names.index("scripted-canonical"))
        form.query_one("#limit").value = "2"
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        text = app.screen.plain_text()
        assert "problems   2: HumanEval/0, HumanEval/1" in text
        assert "scripted-canonical (scripted:canonical)" in text
        assert launcher.runs == [] and await app.store.runs() == []
        await pilot.press("y")
        assert await wait_for(pilot, lambda: launcher.runs)
        run = await app.store.run(launcher.runs[0])
        assert run.config["subset"]["limit"] == 2 and run.agents == ["scripted-canonical"]


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return False


class SpawningLauncher(RecordingLauncher):
    """Starts a real short-lived child the way engine.jobs does (Popen, object dropped)."""

    def launch_job(self, db_path: str, job_id: str) -> int:
        import subprocess
        import sys

        super().launch_job(db_path, job_id)
        proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
        self.pid = proc.pid
        return proc.pid


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
async def test_a_finished_job_process_is_reaped_not_left_defunct(tmp_path: Path) -> None:
    launcher = SpawningLauncher()
    app = make_app(tmp_path / "z.db", launcher=launcher)
    async with app.run_test(size=SIZES[0]) as pilot:
        form = await open_form(pilot, "e", NewEvalScreen)
        form.query_one("#solvers").select("base")
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: launcher.jobs)
        pid = launcher.pid
        # the child ends at once; the app waits for it within its next reaper tick
        assert await wait_for(pilot, lambda: pid in app.reaper.exit_codes, timeout=10)
        assert app.reaper.exit_codes[pid] == 0
        assert not zombie(pid) and not Path(f"/proc/{pid}").exists()


async def offered(pilot, select) -> list[str]:
    """The difficulties the form offers (its record of what it gave the Select), after
    checking the Select takes each and nothing else."""
    from textual.widgets.select import InvalidSelectValueError

    await pilot.pause()
    values = list(select.screen.difficulties)
    keep = select.value
    for v in values:
        select.value = v
    with pytest.raises(InvalidSelectValueError):
        select.value = "no-such-level"
    select.value = keep
    return values


@pytest.mark.parametrize("size", SIZES)
async def test_difficulty_choices_follow_the_dataset(tmp_path: Path, size) -> None:
    from textual.widgets import Select

    app = make_app(tmp_path / "d.db")
    async with app.run_test(size=size) as pilot:
        form = await open_form(pilot, "n", NewSearchScreen)
        difficulty = form.query_one("#difficulty", Select)
        assert await offered(pilot, difficulty) == ["any"]
        form.query_one("#dataset", Select).value = "apps"
        await pilot.pause()
        assert await offered(pilot, difficulty) == ["any", "introductory", "interview", "competition"]
        difficulty.value = "interview"
        form.query_one("#dataset", Select).value = "codecontests"
        await pilot.pause()
        assert await offered(pilot, difficulty) == ["any", "easy", "hard"] and difficulty.value == "any"
        # the subset fields explain themselves
        for field in ("start", "end", "sample", "seed"):
            assert form.query_one(f"#{field}").tooltip
        assert "Seed" in str(form.query_one("#subset-hint").render())

        await pilot.press("escape")
        form = await open_form(pilot, "e", NewEvalScreen)
        difficulty = form.query_one("#difficulty", Select)
        assert form.query_one("#datasets").selected == ["humaneval"]
        assert await offered(pilot, difficulty) == ["any"]
        form.query_one("#datasets").select("codecontests")
        await pilot.pause()
        assert await offered(pilot, difficulty) == ["any", "easy", "hard"]


async def test_forms_remember_the_last_choices_in_an_owner_only_file(tmp_path: Path, private_data_dir: Path) -> None:
    from textual.widgets import Select

    from bdc_tui import form_memory

    app = make_app(tmp_path / "m.db")
    async with app.run_test(size=SIZES[0]) as pilot:
        form = await open_form(pilot, "n", NewSearchScreen)
        names = [spec["name"] for _, spec in form.agent_specs]
        form.query_one("#agents").select(names.index("scripted-canonical"))
        form.query_one("#limit").value = "2"
        form.query_one("#seed").value = "7"
        form.query_one("#sample").value = "2"
        form.query_one("#rollouts").value = "3"
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        await pilot.press("n")  # declined: the choices are still remembered
        await pilot.press("escape")
        form = await open_form(pilot, "n", NewSearchScreen)
        assert [form.query_one(f"#{f}").value for f in ("limit", "seed", "sample", "rollouts")] == ["2", "7", "2", "3"]
        assert form.query_one("#agents").selected == []  # heavy choices are never kept
        assert form.query_one("#dataset", Select).value == "humaneval"
        await pilot.press("escape")
        form = await open_form(pilot, "e", NewEvalScreen)
        form.query_one("#solvers").select("base")
        form.query_one("#datasets").select("codecontests")
        form.query_one("#limit").value = "5"
        form.query_one("#data-path").value = str(tmp_path)
        await pilot.pause()
        form.query_one("#difficulty", Select).value = "hard"
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen)), error_text(app)
        await pilot.press("n")
        await pilot.press("escape")
        form = await open_form(pilot, "e", NewEvalScreen)
        assert form.query_one("#limit").value == "5" and form.query_one("#data-path").value == str(tmp_path)
        assert form.query_one("#datasets").selected == ["humaneval", "codecontests"]
        assert form.query_one("#difficulty", Select).value == "hard"
        assert form.query_one("#solvers").selected == []
    path = form_memory.path()
    assert path.parent == private_data_dir and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a damaged file costs the remembered values, nothing else
    path.write_text("{not json")
    assert form_memory.load("search") == {}
    form_memory.save("eval", {"limit": "4"})
    assert form_memory.load("eval") == {"limit": "4"} and stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_the_first_search_from_the_welcome_screen_ticks_only_free_agents(tmp_path: Path, monkeypatch) -> None:
    from bdc_tui import services
    from bdc_tui.screens.welcome import WelcomeScreen, first_search_agents

    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(
        services, "catalog_models", lambda: [("qwen2.5-coder-0.5b", "Qwen", True), ("smollm2-135m", "SmolLM2", False)]
    )
    assert first_search_agents() == ["qwen-coder"]  # the model just installed, nothing else
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setattr(services, "catalog_models", lambda: [("qwen2.5-coder-0.5b", "Qwen", False)])
    assert first_search_agents() is None  # only paid models could run: the user picks
    monkeypatch.delenv("OPENAI_API_KEY")

    app = make_app(tmp_path / "w.db", first_start=True, installer=None)
    async with app.run_test(size=SIZES[0]) as pilot:
        assert await wait_for(pilot, lambda: isinstance(app.screen, WelcomeScreen))
        await pilot.press("s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewSearchScreen))
        form = app.screen
        ticked = [form.agent_specs[i][1]["name"] for i in form.query_one("#agents").selected]
        assert ticked == ["scripted-canonical", "scripted-broken"]
        await pilot.press("ctrl+s")  # still asks first
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        assert "HumanEval/0" in app.screen.plain_text()


async def test_a_single_model_strategy_launches_one_run_per_agent(tmp_path: Path) -> None:
    """As `bdc search` does: reflexion with two agents is two runs, never one run that drops an agent."""
    launcher = RecordingLauncher()
    app = make_app(tmp_path / "s.db", launcher=launcher)
    async with app.run_test(size=SIZES[-1]) as pilot:
        form = await open_form(pilot, "n", NewSearchScreen)
        names = [spec["name"] for _, spec in form.agent_specs]
        form.query_one("#agents").select(names.index("scripted-canonical"))
        form.query_one("#agents").select(names.index("scripted-broken"))
        form.query_one("#strategy").value = "reflexion"
        form.query_one("#limit").value = "1"
        await pilot.press("ctrl+s")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), timeout=20)
        assert "2 runs, one per agent" in app.screen.plain_text()
        await pilot.press("y")
        assert await wait_for(pilot, lambda: len(launcher.runs) == 2)
        runs = [await app.store.run(r) for r in launcher.runs]
        assert sorted(r.agents for r in runs) == [["scripted-broken"], ["scripted-canonical"]]
        assert all(r.strategy == "reflexion" and len(r.config["agents"]) == 1 for r in runs)
