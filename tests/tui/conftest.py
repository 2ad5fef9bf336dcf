"""Fixtures for the TUI tests: deterministic demo stores and an app factory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bdc_tui.demo import build_demo_db

SIZE = (140, 40)


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The forms remember their last choices in the data dir: never the user's real one."""
    home = tmp_path_factory.mktemp("bdc-home")
    monkeypatch.setenv("BDC_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; tests copy it (cheaper than regenerating)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    asyncio.run(build_demo_db(path))
    return path


@pytest.fixture
def demo_db(demo_template: Path, tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "demo.db"
    shutil.copy(demo_template, dst)
    return dst


async def wait_for(pilot, predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Pause the pilot until ``predicate()`` holds (tests never sleep a fixed long time)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout

    def check() -> bool:
        try:
            return bool(predicate())
        except Exception:  # the screen may still be composing
            return False

    while loop.time() < end:
        if check():
            return True
        await pilot.pause(step)
    return check()


class RecordingLauncher:
    """Stands in for engine.jobs: records what would have been started."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.jobs: list[str] = []

    def launch_run(self, db_path: str, run_id: str) -> int:
        self.runs.append(run_id)
        return 4242

    def launch_job(self, db_path: str, job_id: str) -> int:
        self.jobs.append(job_id)
        return 4243

    def cancel(self, pid: int) -> bool:
        return True
