"""Regenerate screenshots/*.svg from the app itself (App.save_screenshot).

    python scripts/screenshots.py [--out screenshots]                 # demo data
    python scripts/screenshots.py --db RUNS.db --run RUN_ID [--out D]  # a real run: real_*.svg
    python scripts/screenshots.py --db RUNS.db --pipeline [--out D]    # real clusters, training, eval

Demo data is ``bdc_tui.demo`` (built through the real engine with scripted agents; every
screen says "demo data") and the screens are the named scenes of ``bdc_tui.scenes`` that the
snapshot tests also use, so the images are reproducible. ``--db`` shoots the runs list, the
live tree and the event log of a real store instead (the README's pictures of a real search);
``--pipeline`` shoots its clusters screen, a training job with its losses and an evaluation
job with its results (a ``bdc reproduce`` store has all three): real_clusters.svg,
real_jobs_training.svg, real_jobs_eval.svg.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from textual.widgets import DataTable  # noqa: E402

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


def snapshot(db: Path, copy: Path) -> None:
    """A consistent copy of a store that may be live (its WAL included), via SQLite's backup."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


async def shoot_real(db: Path, run_id: str, out: Path) -> list[Path]:
    """The runs list, the run's tree (root inspected) and its event log, from a copy of ``db``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "runs.db"
        snapshot(db, copy)
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


def _pick_jobs(jobs: list, train_job: str | None, eval_job: str | None) -> tuple[str, str]:
    """The training job to show (default: the experts', whose losses are one curve per
    expert) and the evaluation job (default: the one with the most solvers x datasets)."""
    finished = [j for j in jobs if j.status == "finished"]
    if train_job is None:
        trains = [j for j in finished if j.kind == "train" and j.config.get("mode") == "experts"]
        trains = trains or [j for j in finished if j.kind == "train" and j.config.get("mode") != "merge"]
        if not trains:
            raise SystemExit("no finished training job in the store (pass --train-job)")
        train_job = trains[-1].id  # jobs() is newest first: the first one trained
    if eval_job is None:
        evals = [j for j in finished if j.kind == "eval" and isinstance(j.result, dict)]
        if not evals:
            raise SystemExit("no finished evaluation job in the store (pass --eval-job)")
        eval_job = max(evals, key=lambda j: len(str(j.result))).id
    return train_job, eval_job


async def shoot_pipeline(db: Path, out: Path, train_job: str | None, eval_job: str | None) -> list[Path]:
    """The clusters screen, a training job (losses) and an evaluation job (results) of ``db``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "runs.db"
        snapshot(db, copy)
        for name in ("real_clusters", "real_jobs_training", "real_jobs_eval"):
            app = BdcApp(copy, first_start=False, launcher=None, poll_interval=0.05, refresh_interval=30)
            async with app.run_test(size=scenes.SIZE) as pilot:
                await scenes.runs(pilot)
                if name == "real_clusters":
                    app.action_clusters()
                    await scenes.wait_until(pilot, lambda app=app: app.screen.shown_sizes)
                else:
                    train, evaluation = _pick_jobs(await app.store.jobs(), train_job, eval_job)
                    job = train if name == "real_jobs_training" else evaluation
                    app.action_jobs()
                    await scenes.wait_until(pilot, lambda app=app, job=job: job in getattr(app.screen, "jobs", {}))
                    table = app.screen.query_one(DataTable)
                    table.move_cursor(row=table.get_row_index(job))
                    await scenes.wait_until(pilot, lambda app=app, job=job: app.screen.shown == job)
                    if name == "real_jobs_training":
                        await scenes.wait_until(pilot, lambda app=app: len(app.screen.query_one("LossPlot").values) > 0)
                await pilot.pause(0.3)
                app.save_screenshot(filename=f"{name}.svg", path=str(out))
                written.append(out / f"{name}.svg")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "screenshots"))
    parser.add_argument("--db", type=Path, help="a real run store (shoots real_*.svg instead of the demo)")
    parser.add_argument("--run", help="with --db: the run to show")
    parser.add_argument("--pipeline", action="store_true", help="with --db: its clusters, training and eval jobs")
    parser.add_argument("--train-job", help="with --pipeline: the training job (default: the experts')")
    parser.add_argument("--eval-job", help="with --pipeline: the evaluation job (default: the largest)")
    args = parser.parse_args()
    if args.pipeline:
        if not args.db:
            parser.error("--pipeline needs --db RUNS.db")
        shots = asyncio.run(shoot_pipeline(args.db, Path(args.out), args.train_job, args.eval_job))
    elif args.db:
        if not args.run:
            parser.error("--db needs --run RUN_ID")
        shots = asyncio.run(shoot_real(args.db, args.run, Path(args.out)))
    else:
        shots = asyncio.run(shoot(Path(args.out)))
    for p in shots:
        print(p)


if __name__ == "__main__":
    main()
