"""Regenerate screenshots/*.svg from the app itself (App.save_screenshot) on demo data.

    python scripts/screenshots.py [--out screenshots]

The data is ``bdc_tui.demo`` (seeded, fixed clock) and the screens are the named scenes
of ``bdc_tui.scenes`` that the snapshot tests also use, so the images are reproducible.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "screenshots"))
    args = parser.parse_args()
    for p in asyncio.run(shoot(Path(args.out))):
        print(p)


if __name__ == "__main__":
    main()
