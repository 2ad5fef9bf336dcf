"""The event log of a run, filterable by kind group (prune, refine, solution, error), tailing live.

Only the newest ``MAX_ROWS`` matching events are kept in the table: a 50,000-event run
stays instant to open and the interesting kinds are filters away. Enter opens the
replay at the highlighted event.
"""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from bdc_tui.fold import KIND_GROUPS
from bdc_tui.messages import OpenRun
from bdc_tui.widgets.timeline import describe

MAX_ROWS = 2000
KIND_STYLE = {"prune": "red", "reflect": "yellow", "refine": "yellow", "solution_found": "bold green",
              "problem_finished": "green", "llm_error": "bold red", "budget_exhausted": "bold red"}


class EventLogScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "filter('all')", "All"),
        Binding("1", "filter('prune')", "Prune"),
        Binding("2", "filter('refine')", "Refine"),
        Binding("3", "filter('solution')", "Solution"),
        Binding("4", "filter('error')", "Error"),
        Binding("enter", "replay_here", "Replay here", priority=True),
    ]
    AUTO_FOCUS = "DataTable"

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.group = "all"
        self.last_seq = 0
        self.total = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="log-filter")
        yield DataTable(id="log", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"events · {self.run_id}"
        table = self.query_one(DataTable)
        for c in ("seq", "time", "problem", "node", "kind", "what"):
            table.add_column(c, key=c)
        self._show_filter()
        self.tail()

    @property
    def kinds(self) -> tuple[str, ...] | None:
        return None if self.group == "all" else KIND_GROUPS[self.group]

    def _show_filter(self) -> None:
        parts = []
        for g in ("all", "prune", "refine", "solution", "error"):
            parts.append(f"[reverse] {g} [/]" if g == self.group else f" {g} ")
        self.query_one("#log-filter", Static).update("filter: " + " ".join(parts) + f"   ({self.total} shown)")

    def action_filter(self, group: str) -> None:
        if group == self.group:
            return
        self.group = group
        self.query_one(DataTable).clear()
        self.last_seq = 0
        self.total = 0
        self._show_filter()
        self.tail()

    @work(exclusive=True, group="log-tail", exit_on_error=False)
    async def tail(self) -> None:
        store = self.app.store
        first = True
        while True:
            try:
                if first:
                    # newest MAX_ROWS only: count from the end
                    last = await store.last_seq(self.run_id)
                    events = await store.events(self.run_id, after=0, kinds=self.kinds)
                    events = events[-MAX_ROWS:]
                    first = False
                    self.last_seq = last
                else:
                    events = await store.events(self.run_id, after=self.last_seq, kinds=self.kinds)
                    self.last_seq = await store.last_seq(self.run_id) if not events else max(self.last_seq, events[-1].seq)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.app.report(e, "reading the event log")
                await asyncio.sleep(2)
                continue
            if events:
                self._add(events)
            await asyncio.sleep(self.app.poll_interval * 2)

    def _add(self, events: list) -> None:
        table = self.query_one(DataTable)
        follow = table.cursor_row >= table.row_count - 1
        for e in events:
            table.add_row(
                str(e.seq), time.strftime("%H:%M:%S", time.gmtime(e.ts)), e.problem_id or "", e.node_id or "",
                Text(e.kind, style=KIND_STYLE.get(e.kind, "")), describe(e), key=str(e.seq),
            )
        while table.row_count > MAX_ROWS:
            table.remove_row(table.coordinate_to_cell_key((0, 0)).row_key)
        self.total = table.row_count
        self._show_filter()
        if follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def action_replay_here(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        seq = int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        self.post_message(OpenRun(self.run_id, "replay", seq=seq))
