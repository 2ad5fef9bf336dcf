"""bdc-tui: the Textual application — store lifecycle, navigation, error reporting, launching.

The app owns one ``Store`` opened on its own event loop; screens read through it. Work
(searches, training, evaluation) always runs in separate processes started by
``engine.jobs``; the app attaches to them through the store exactly as it does to a
headless ``bdc search`` started elsewhere.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from bdc_tui import services
from bdc_tui.commands import BdcCommands
from bdc_tui.messages import OpenRun
from bdc_tui.reaper import ChildReaper
from engine.errors import BdcError, StoreError


class BdcApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "bdc"
    COMMANDS = App.COMMANDS | {BdcCommands}
    # screens get -narrow below 120 columns (app.tcss gives the tree more room there)
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", tooltip="what N, Q, PR and the marks mean; every key"),
        Binding("f1", "help", "Help", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        db_path: str | Path | None = None,
        *,
        poll_interval: float = 0.3,
        refresh_interval: float = 2.0,
        launcher: Any = "auto",
        installer: Any = "auto",
        first_start: bool | None = None,
        readonly: bool = False,
    ) -> None:
        super().__init__()
        from engine.paths import default_db_path

        self.db_path = Path(db_path) if db_path else default_db_path()
        self.poll_interval = poll_interval
        self.refresh_interval = refresh_interval
        self.launcher = services.launcher() if launcher == "auto" else launcher
        self.installer = services.model_installer() if installer == "auto" else installer
        self.first_start = first_start
        self.readonly = readonly
        self.store = None
        self.run_ids: list[str] = []
        self.error_log: list[tuple[float, str]] = []
        self.reaper = ChildReaper()

    # ------------------------------------------------------------------ lifecycle
    async def on_mount(self) -> None:
        from engine.store import Store

        self.sub_title = self.db_path.name
        self.set_interval(1.0, self.reaper.reap)  # finished searches/jobs never stay <defunct>
        try:
            try:
                self.store = await Store.open(self.db_path, readonly=self.readonly)
            except OSError:
                self.store = await Store.open(self.db_path, readonly=True)
                self.readonly = True
                self.notify("the store is read-only here: viewing only", severity="warning")
        except BdcError as e:
            from bdc_tui.screens.error import ErrorScreen

            await self.push_screen(ErrorScreen("Cannot open the run store", str(e)))
            return
        except Exception as e:  # sqlite or file system trouble: still no traceback
            from bdc_tui.screens.error import ErrorScreen

            await self.push_screen(ErrorScreen("Cannot open the run store", f"{type(e).__name__}: {e}"))
            return
        if await self.store.is_demo():  # every screen's header says so
            self.title = f"{self.title} · demo data"
        if not self.readonly:
            try:
                dead = await self.store.mark_dead_runs_interrupted()
                if dead:
                    self.notify(f"{len(dead)} run(s) whose process had died are now marked interrupted")
            except Exception as e:
                self.report(e, "checking for dead runs")
        from bdc_tui.screens.runs import RunsScreen

        await self.push_screen(RunsScreen())
        first = self.first_start
        if first is None:
            first = not await self.store.runs() and services.needs_first_start()
        if first:
            from bdc_tui.screens.welcome import WelcomeScreen

            await self.push_screen(WelcomeScreen())

    async def on_unmount(self) -> None:
        self.reaper.reap()
        if self.store is not None:
            try:
                await self.store.close()
            except Exception:
                pass

    def report(self, error: BaseException, doing: str = "") -> None:
        """Notify (never raise) and keep the message for the log."""
        msg = str(error) if isinstance(error, BdcError) else f"{type(error).__name__}: {error}"
        text = f"{doing}: {msg}" if doing else msg
        self.error_log.append((time.time(), text))
        self.log.error(text)
        self.notify(text, severity="error", timeout=8)

    # ------------------------------------------------------------------ navigation
    def on_open_run(self, message: OpenRun) -> None:
        self.open_run(message.run_id, message.mode, message.seq)

    def open_run(self, run_id: str, mode: str = "live", seq: int | None = None) -> None:
        if self.store is None:
            return
        if mode == "replay":
            from bdc_tui.screens.replay import ReplayScreen

            self.push_screen(ReplayScreen(run_id, start_at=seq))
        elif mode == "log":
            from bdc_tui.screens.event_log import EventLogScreen

            self.push_screen(EventLogScreen(run_id))
        else:
            from bdc_tui.screens.search import SearchScreen

            self.push_screen(SearchScreen(run_id))

    def action_runs(self) -> None:
        from bdc_tui.screens.runs import RunsScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, RunsScreen):
            self.pop_screen()

    def action_help(self) -> None:
        from bdc_tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_jobs(self) -> None:
        from bdc_tui.screens.jobs import JobsScreen

        if self.store is not None:
            self.push_screen(JobsScreen())

    def action_clusters(self) -> None:
        from bdc_tui.screens.clusters import ClustersScreen

        if self.store is not None:
            self.push_screen(ClustersScreen())

    def action_new_search(self, **prefill: Any) -> None:
        if self.store is None or self.readonly:
            self.notify("the store is read-only: cannot start a search", severity="warning")
            return
        from bdc_tui.screens.new_search import NewSearchScreen

        self.push_screen(NewSearchScreen(**prefill))

    def action_new_eval(self) -> None:
        if self.store is None or self.readonly:
            self.notify("the store is read-only: cannot start an evaluation", severity="warning")
            return
        from bdc_tui.screens.new_eval import NewEvalScreen

        self.push_screen(NewEvalScreen())

    # ------------------------------------------------------------------ launching
    def launch_run(self, run_id: str) -> int | None:
        """Start the engine process for ``run_id``; the screens attach through the store."""
        if self.launcher is None:
            self.report(
                BdcError(
                    "cannot launch: engine.jobs (the process launcher) is not available; "
                    f"run `bdc --db {self.db_path} resume {run_id}` in a shell"
                )
            )
            return None
        try:
            pid = int(self.launcher.launch_run(str(self.db_path), run_id))
        except Exception as e:
            self.report(e, f"launching run {run_id}")
            return None
        self.reaper.watch(pid)
        return pid

    def launch_job(self, job_id: str) -> int | None:
        if self.launcher is None:
            self.report(BdcError("cannot launch: engine.jobs (the process launcher) is not available"))
            return None
        try:
            pid = int(self.launcher.launch_job(str(self.db_path), job_id))
        except Exception as e:
            self.report(e, f"launching job {job_id}")
            return None
        self.reaper.watch(pid)
        return pid

    def resume_run(self, run_id: str) -> None:
        pid = self.launch_run(run_id)
        if pid is not None:
            self.notify(f"resuming {run_id} (pid {pid})")
            self.open_run(run_id, "live")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``bdc-tui [--db FILE] [--demo]``."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    parser = argparse.ArgumentParser(prog="bdc-tui", description="Watch searches live, replay runs, launch work.")
    parser.add_argument("--db", help="run store (default: $BDC_DB or bdc.db in the user data dir)")
    parser.add_argument("--demo", action="store_true", help="open a generated demo store (no models needed)")
    parser.add_argument("--readonly", action="store_true", help="never write to the store")
    args = parser.parse_args(argv)
    # tracebacks go to the log file, never to the screen; bdc's own folders stay owner-only
    from engine import logs, paths

    logs.setup(console=False)
    paths.tighten_own_dirs()
    db = args.db
    if args.demo:
        import tempfile

        from bdc_tui.demo import build_demo_db_sync

        db = build_demo_db_sync(Path(tempfile.mkdtemp(prefix="bdc-demo-")) / "demo.db", fixed_time=False)
    try:
        BdcApp(db, readonly=args.readonly).run()
    except StoreError as e:  # belt and braces: the app shows store errors itself
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
