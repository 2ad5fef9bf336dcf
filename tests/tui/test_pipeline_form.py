"""The pipeline screen's settings form: every step takes the settings the CLI takes, checks
them all at once, asks before starting, and remembers them (never the ticked solvers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.widgets import Input, Label, Select

from bdc_tui.screens.confirm import ConfirmScreen
from bdc_tui.screens.pipeline import EXAMPLES, PipelineScreen, cluster_config, train_jobs
from bdc_tui.widgets.check_list import CheckList
from tests.tui.conftest import RecordingLauncher, wait_for
from tests.tui.test_app import make_app, open_runs
from tests.tui.test_layouts import footer_keys

SIZES = [(100, 30), (160, 45)]


async def open_pipeline(pilot) -> PipelineScreen:
    app = pilot.app
    await open_runs(pilot)
    app.push_screen(PipelineScreen())
    assert await wait_for(pilot, lambda: isinstance(app.screen, PipelineScreen) and app.screen.finished_runs)
    await pilot.pause()
    return app.screen


def set_input(screen, selector: str, value: str) -> None:
    screen.query_one(selector, Input).value = value


async def start(pilot, screen, step: str) -> str:
    """Choose ``step`` and press ctrl+s; the form's error text ('' when a confirmation opened)."""
    screen.query_one("#step", Select).value = step
    await pilot.press("ctrl+s")
    await pilot.pause()
    if isinstance(pilot.app.screen, ConfirmScreen):
        return ""
    return str(screen.query_one("#form-error").render())


async def confirm(pilot, screen, answer: str) -> str:
    assert await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    dialog = pilot.app.screen
    await pilot.pause()
    for button in ("#yes", "#no"):  # both answers in reach, whatever the size
        region = dialog.query_one(button).region
        assert region.width and region.bottom <= pilot.app.size.height and region.right <= pilot.app.size.width
    assert pilot.app.focused is dialog.query_one("#no")  # enter alone starts nothing
    text = dialog.plain_text()
    await pilot.press(answer)
    assert await wait_for(pilot, lambda: pilot.app.screen is screen)
    return text


@pytest.mark.parametrize("size", SIZES)
async def test_pipeline_steps_with_settings_checks_and_confirmation(demo_db: Path, size, private_data_dir) -> None:
    launcher = RecordingLauncher()
    app = make_app(demo_db, launcher=launcher)
    async with app.run_test(size=size) as pilot:
        screen = await open_pipeline(pilot)
        # opens safe: the next step is the export, nothing ticked, overlap off, focus on the step
        assert screen.query_one("#step", Select).value == "export"
        assert app.focused is screen.query_one("#step", Select)
        assert list(screen.query_one("#solvers", CheckList).selected) == []
        assert screen.query_one("#allow-overlap", Select).value == "refuse"
        assert await wait_for(pilot, lambda: {"escape", "ctrl+s", "j"} <= footer_keys(app)), footer_keys(app)
        assert screen.query_one("#launch").region.bottom <= size[1] - 1  # above the footer, at any height
        for label in screen.query(Label):
            text = str(label.render())
            assert cell_len(text) <= label.content_region.width, f"label {text!r} cut at {size}"

        # every problem of a step at once
        set_input(screen, "#epochs", "two")
        set_input(screen, "#max-steps", "0")
        error = await start(pilot, screen, "train")
        for problem in (
            "tick at least one solver",
            "cluster the examples (step 2) first",
            "Epochs must be",
            "Max steps",
        ):
            assert problem in error, (problem, error)
        assert launcher.jobs == []
        set_input(screen, "#epochs", "2")
        set_input(screen, "#max-steps", "")

        # export: min pass rate belongs to the every-node export, and is a share
        set_input(screen, "#min-pass-rate", "0.5")
        assert "every-node export only" in await start(pilot, screen, "export")
        screen.query_one("#export", Select).value = "node"
        set_input(screen, "#min-pass-rate", "1.5")
        assert "between 0 and 1" in await start(pilot, screen, "export")
        set_input(screen, "#min-pass-rate", "0.3")
        assert await start(pilot, screen, "export") == ""
        text = await confirm(pilot, screen, "y")
        assert "pass rate ≥ 0.3" in text and "r-demo-humaneval" in text
        assert await wait_for(pilot, lambda: screen.folder is not None and (screen.folder / EXAMPLES).is_file())
        folder = screen.folder
        rows = [json.loads(line) for line in (folder / EXAMPLES).read_text().splitlines()]
        # per node: several pairs per problem, none under the bar (`bdc export --per-node --min-pass-rate 0.3`)
        assert len(rows) > 3 and all(r["pass_rate"] >= 0.3 for r in rows)
        assert await wait_for(pilot, lambda: screen.query_one("#step", Select).value == "cluster")

        # cluster: K must be >= 2; "no" starts nothing; "yes" starts the CLI's config
        set_input(screen, "#k", "1")
        assert "Clusters K must be at least 2" in await start(pilot, screen, "cluster")
        set_input(screen, "#k", "")
        set_input(screen, "#k-max", "5")
        screen.query_one("#encoder", Select).value = "minilm"
        assert await start(pilot, screen, "cluster") == ""
        await confirm(pilot, screen, "n")
        assert launcher.jobs == [] and "not started" in str(screen.query_one("#form-error").render())
        screen.query_one("#step", Select).focus()
        await pilot.press("2")  # the step's key starts it too (when no text field has the focus)
        text = await confirm(pilot, screen, "y")
        assert "auto (silhouette, 2..5)" in text and "MiniLM" in text
        assert await wait_for(pilot, lambda: len(launcher.jobs) == 1)
        job = await app.store.job(launcher.jobs[0])
        assert job.kind == "cluster"
        assert job.config == cluster_config(folder, k=None, k_max=5, encoder="minilm", base=None)

        # train: the clustering job's output arrives; experts + sft start, DisenLoRA waits for the experts
        (folder / "clusters.json").write_text("{}")
        solvers = screen.query_one("#solvers", CheckList)
        for spec in ("experts", "sft", "disenlora"):
            solvers.select(spec)
        set_input(screen, "#base", "/models/tiny")
        assert await start(pilot, screen, "train") == ""
        text = await confirm(pilot, screen, "y")
        assert "disenlora waits for the experts" in text and "2 job(s) start at once" in text
        assert await wait_for(pilot, lambda: len(launcher.jobs) == 3)
        jobs = [await app.store.job(j) for j in launcher.jobs[1:]]
        assert sorted(j.config["mode"] for j in jobs) == ["experts", "sft"]
        for j in jobs:
            assert j.kind == "train" and j.config["base"] == "/models/tiny"
            assert j.config["train"]["epochs"] == 2 and j.config["out"] == str(folder)

        # evaluate: the base model only, on a dataset, trained-on problems scored on request
        solvers.deselect_all()
        solvers.select("base")
        screen.query_one("#allow-overlap", Select).value = "score"
        set_input(screen, "#limit", "5")
        assert await start(pilot, screen, "evaluate") == ""
        text = await confirm(pilot, screen, "y")
        assert "trained-on problems: scored" in text
        assert await wait_for(pilot, lambda: len(launcher.jobs) == 4)
        job = await app.store.job(launcher.jobs[3])
        assert job.kind == "eval" and job.config["solvers"] == ["base"] and job.config["allow_overlap"] is True
        assert job.config["datasets"][0]["limit"] == 5 and job.config["artifacts"] == str(folder)

        # reopened: the settings are remembered, the ticks are not
        await pilot.press("escape")
        screen = await open_pipeline(pilot)
        assert screen.query_one("#k-max", Input).value == "5" and screen.query_one("#epochs", Input).value == "2"
        assert screen.query_one("#encoder", Select).value == "minilm"
        assert screen.query_one("#export", Select).value == "node"
        assert list(screen.query_one("#solvers", CheckList).selected) == []
        assert screen.query_one("#allow-overlap", Select).value == "refuse"


def test_train_configs_read_back_as_the_cli_writes_them(tmp_path: Path) -> None:
    """The engine reads the same LoRA and training settings from the form's config as from
    `bdc train experts DATA --out OUT --epochs 3 --max-steps 40 --base B`'s."""
    from engine.cli.train import _train_config
    from engine.jobs.kinds import _lora, _train_settings

    (tmp_path / "experts" / "expert_0").mkdir(parents=True)
    jobs, waiting = train_jobs(
        tmp_path, ["experts", "sft", "disenlora", "merge", "twin"], base="B", epochs=3, max_steps=40
    )
    assert waiting == [] and [j["mode"] for j in jobs] == ["experts", "sft", "hyper", "merge", "twin"]
    data, out = str(tmp_path / EXAMPLES), str(tmp_path)
    cli = _train_config("experts", data, out, "B", "none", clusters=None, r=8, alpha=None, epochs=3, max_steps=40)
    assert _train_settings(jobs[0]) == _train_settings(cli) and _lora(jobs[0]) == _lora(cli)
    assert jobs[3]["methods"] == ["linear", "cat", "ties", "dare_linear", "dare_ties"]
    jobs, waiting = train_jobs(tmp_path / "none", ["merge"], base=None, epochs=None, max_steps=None)
    assert jobs == [] and "waits for the experts" in waiting[0]
