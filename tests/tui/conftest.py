"""Fixtures for the TUI tests: deterministic demo stores and an app factory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bdc_tui.demo import build_demo_db

SIZE = (140, 40)


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
