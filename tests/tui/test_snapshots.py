"""Snapshot tests (pytest-textual-snapshot) of the main screens at a fixed size.

The data is the deterministic demo store (seeded RNG, fixed timestamps, fixed ids), and
the scenes are the ones the screenshot script uses. Update with ``--snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bdc_tui import scenes
from bdc_tui.app import BdcApp

SNAPSHOT_SCENES = ["runs", "search_tree", "replay", "event_log", "jobs_eval", "clusters"]


@pytest.mark.parametrize("scene", SNAPSHOT_SCENES)
def test_screen_snapshot(scene: str, snap_compare, demo_db: Path) -> None:
    app = BdcApp(demo_db, first_start=False, launcher=None, poll_interval=0.05, refresh_interval=30)
    assert snap_compare(app, terminal_size=scenes.SIZE, run_before=scenes.SCENES[scene])
