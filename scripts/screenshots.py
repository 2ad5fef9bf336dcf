"""Regenerate screenshots/*.svg from the app itself (App.save_screenshot).

    python scripts/screenshots.py [--out screenshots]                 # demo data
    python scripts/screenshots.py --db RUNS.db --run RUN_ID [--out D]  # a real run: real_*.svg

Demo data is ``bdc_tui.demo`` (built through the real engine with scripted agents; every
screen says "demo data") and the screens are the named scenes of ``bdc_tui.scenes`` that the
snapshot tests also use, so the images are reproducible. ``--db`` shoots the runs list, the
live tree and the event log of a real store instead (the README's pictures of a real search).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bdc_tui import scenes  # noqa: E402
from bdc_tui.app import BdcApp  # noqa: E402
from bdc_tui.demo import build_demo_db  # noqa: E402


async def shoot(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "demo.db"
        await build_demo_db(template)
        for name, scene in scenes.SCENES.items():
            db = Path(tmp) / name / "demo.db"
            db.parent.mkdir()
            db.write_bytes(template.read_bytes())
            app = BdcApp(db, first_start=False, launcher=None, poll_interval=0.05, refresh_interval=30)
            async with app.run_test(size=scenes.SIZE) as pilot:
                await scene(pilot)
                await pilot.pause(0.2)
                path = out / f"{name}.svg"
                app.save_screenshot(filename=path.name, path=str(out))
                written.append(path)
    return written


async def shoot_real(db: Path, run_id: str, out: Path) -> list[Path]:
    """The runs list, the run's tree (root inspected) and its event log, from a copy of ``db``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "runs.db"
        copy.write_bytes(db.read_bytes())
        for name, mode in (("real_runs", None), ("real_search_tree", "live"), ("real_event_log", "log")):
            app = BdcApp(
                copy, first_start=False, launcher=None, poll_interval=0.05, refresh_interval=30
            )  # a copy: migrating it is fine
            async with app.run_test(size=scenes.SIZE) as pilot:
                await scenes.runs(pilot)
                if mode == "live":
                    app.open_run(run_id, "live")
                    await scenes.wait_until(pilot, lambda app=app: app.screen.tree_view.node_count > 0)
                    await pilot.press("b")
                    await pilot.pause(0.5)
                elif mode == "log":
                    app.open_run(run_id, "log")
                    await scenes.wait_until(pilot, lambda app=app: app.screen.query_one("DataTable").row_count > 0)
                    await pilot.pause(0.3)
                app.save_screenshot(filename=f"{name}.svg", path=str(out))
                written.append(out / f"{name}.svg")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "screenshots"))
    parser.add_argument("--db", type=Path, help="a real run store (shoots real_*.svg instead of the demo)")
    parser.add_argument("--run", help="with --db: the run to show")
    args = parser.parse_args()
    if args.db:
        if not args.run:
            parser.error("--db needs --run RUN_ID")
        shots = asyncio.run(shoot_real(args.db, args.run, Path(args.out)))
    else:
        shots = asyncio.run(shoot(Path(args.out)))
    for p in shots:
        print(p)


if __name__ == "__main__":
    main()
