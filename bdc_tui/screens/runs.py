"""Runs: every run in the store with status, progress, PR/AC and cost; the app's home.

Actions act on the highlighted run and are disabled (``check_action``) when they cannot
apply: resume needs a stopped run and a launcher, cancel a live process, delete a run
that is not running.
"""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from bdc_tui.data import summarize_all
from bdc_tui.messages import OpenRun
from bdc_tui.widgets.runs_table import RunsTable


class RunsScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("p", "replay", "Replay"),
        Binding("l", "log", "Log"),
        Binding("n", "app.new_search", "Search", tooltip="start a new search"),
        Binding("e", "app.new_eval", "Eval", tooltip="start a new evaluation"),
        Binding("r", "resume", "Resume"),
        Binding("x", "cancel", "Stop", tooltip="stop the highlighted run's process"),
        Binding("d", "delete", "Delete"),
        Binding("j", "app.jobs", "Jobs"),
        Binding("c", "app.clusters", "Clusters"),
    ]
    AUTO_FOCUS = "RunsTable"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="runs-empty", classes="hint")
        yield RunsTable(id="runs")
        yield Static("", id="runs-columns", classes="hint")
        # compact, and the palette's own label left out (? lists ctrl+p): every key fits 100 columns
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.sub_title = f"runs · {self.app.db_path.name}"
        self.reload()
        self.set_interval(self.app.refresh_interval, self._tick)

    def _tick(self) -> None:
        if self.is_current:  # hidden under another screen: no need to poll
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @work(exclusive=True, group="runs-reload", exit_on_error=False)
    async def reload(self) -> None:
        store = self.app.store
        if store is None:
            return
        try:
            summaries = await summarize_all(store)
        except Exception as e:  # a locked or vanished file: say so, keep going
            self.app.report(e, "reading runs")
            return
        self.app.run_ids = [s.id for s in summaries]
        self.table.load(summaries)
        empty = self.query_one("#runs-empty", Static)
        empty.update(
            ""
            if summaries
            else f"No runs in {self.app.db_path} yet. Press n to start a search (or run `bdc search` headless; it appears here live)."
        )
        empty.display = not summaries
        self.refresh_bindings()

    def on_runs_table_columns_fitted(self, event: RunsTable.ColumnsFitted) -> None:
        """Say what a narrow terminal hides, instead of dropping columns silently."""
        parts = []
        if event.hidden:
            parts.append(f"{', '.join(event.hidden)} hidden at this width (widen the terminal; enter opens the run)")
        if event.scrolls:
            parts.append("more columns →  (←/→ scroll)")
        hint = self.query_one("#runs-columns", Static)
        hint.update("  ·  ".join(parts))
        hint.display = bool(parts)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        sel = self.table.selected if self.is_mounted else None
        if action in ("open", "replay", "log"):
            return sel is not None or None
        if action == "resume":
            ok = sel is not None and not sel.alive and sel.run.status != "finished" and self.app.launcher is not None
            return True if ok else None
        if action == "cancel":
            return True if sel is not None and sel.alive and self.app.launcher is not None else None
        if action == "delete":
            return True if sel is not None and not sel.alive else None
        return True

    def action_open(self) -> None:
        if (sel := self.table.selected) is not None:
            self.post_message(OpenRun(sel.id, "live"))

    def action_replay(self) -> None:
        if (sel := self.table.selected) is not None:
            self.post_message(OpenRun(sel.id, "replay"))

    def action_log(self) -> None:
        if (sel := self.table.selected) is not None:
            self.post_message(OpenRun(sel.id, "log"))

    def action_resume(self) -> None:
        if (sel := self.table.selected) is not None:
            self.app.resume_run(sel.id)

    def action_cancel(self) -> None:
        sel = self.table.selected
        if sel is not None and sel.run.pid:
            try:
                self.app.launcher.cancel(sel.run.pid)
                self.notify(f"asked run {sel.id} (pid {sel.run.pid}) to stop")
            except Exception as e:
                self.app.report(e, "cancelling")
            self.reload()

    def action_delete(self) -> None:
        sel = self.table.selected
        if sel is None:
            return
        run_id = sel.id

        async def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            try:
                await self.app.store.delete_run(run_id)
                self.notify(f"deleted run {run_id}")
            except Exception as e:
                self.app.report(e, "deleting")
            await asyncio.sleep(0)
            self.reload()

        from bdc_tui.screens.confirm import ConfirmScreen

        self.app.push_screen(
            ConfirmScreen(f"Delete run {run_id} and all its events? This cannot be undone."), confirmed
        )
