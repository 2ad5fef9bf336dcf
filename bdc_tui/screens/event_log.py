"""The event log of a run, filterable by kind group (prune, refine, solution, error), tailing live.

The table holds one page of at most ``PAGE`` matching events, read with a single
``ORDER BY seq DESC LIMIT`` query: a 50,000-event run opens as fast as a small one and
nothing outside the page is decoded. Live, the page is the newest events and follows the
run; ``o`` pages back to older events (following stops), ``n`` pages forward, ``f`` returns
to live. Enter opens the replay at the highlighted event.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from bdc_tui.format import local_clock
from bdc_tui.messages import OpenRun
from bdc_tui.widgets.timeline import details
from engine.search import events as ev
from engine.search.events import KIND_GROUPS

KIND_STYLE = {
    ev.PRUNE: "red",
    ev.REFLECT: "yellow",
    ev.REFINE: "yellow",
    ev.SOLUTION_FOUND: "bold green",
    ev.PROBLEM_FINISHED: "green",
    ev.LLM_ERROR: "bold red",
    ev.BUDGET_EXHAUSTED: "bold red",
    ev.RUN_FINISHED: "bold",
}
# the error filter also reads run_finished: a run that failed says why there (and only
# failed/cancelled ends are kept under "error", see ``_shown``)
LOG_GROUPS: dict[str, tuple[str, ...]] = {**KIND_GROUPS, "error": (*KIND_GROUPS["error"], ev.RUN_FINISHED)}
ENDED = ("finished", "failed", "cancelled", "interrupted")


class EventLogScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        # the filter line above the table names these keys, so the footer keeps room for the rest
        Binding("a", "filter('all')", "All", show=False),
        Binding("1", "filter('prune')", "Prune", show=False),
        Binding("2", "filter('refine')", "Refine", show=False),
        Binding("3", "filter('solution')", "Solution", show=False),
        Binding("4", "filter('error')", "Error", show=False),
        Binding("o", "older", "Older"),
        Binding("n", "newer", "Newer"),
        Binding("f", "follow", "Follow live"),
        Binding("home", "cursor_edge(0)", "First", show=False, priority=True),
        Binding("end", "cursor_edge(-1)", "Last", show=False, priority=True),
        Binding("enter", "replay_here", "Replay here", priority=True),
    ]
    AUTO_FOCUS = "DataTable"
    PAGE = 2000  # rows in the table at once

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.group = "all"
        self.last_seq = 0
        self.total = 0
        self.live = True  # following the newest events, or showing an older page
        self.run_status: str | None = None
        self.run_error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="log-filter")
        yield DataTable(id="log", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"events · {self.run_id}"
        table = self.query_one(DataTable)
        for c in ("seq", "time", "problem", "node", "kind", "what"):
            table.add_column(c, key=c)
        self._show_filter()
        self.tail()

    @property
    def kinds(self) -> tuple[str, ...] | None:
        return None if self.group == "all" else LOG_GROUPS[self.group]

    @property
    def ended(self) -> bool:
        """The run is over: there is nothing live to follow."""
        return self.run_status in ENDED

    def _show_filter(self) -> None:
        parts = []
        for key, g in (("a", "all"), ("1", "prune"), ("2", "refine"), ("3", "solution"), ("4", "error")):
            parts.append(f"[b]{key}[/][reverse] {g} [/]" if g == self.group else f"[b]{key}[/] {g} ")
        if self.ended:
            where = f"run {self.run_status}" + ("" if self.live else " · older page, f: newest")
        else:
            where = "live" if self.live else "older page · f: follow live"
        line = Text.from_markup("filter: " + " ".join(parts) + f"   ({self.total} shown, {where})")
        if self.run_error:
            line.append(f"\n{self.run_status or 'failed'}: {self.run_error}", style="bold red")
        self.query_one("#log-filter", Static).update(line)

    def action_filter(self, group: str) -> None:
        if group == self.group:
            return
        self.group = group
        self.action_follow()

    def action_follow(self) -> None:
        if self.ended and self.live:
            self.notify(f"the run is {self.run_status}: there is nothing live to follow")
        self.live = True
        self._clear()
        self.tail()

    def action_older(self) -> None:
        first = self._seq_at(0)
        if first is not None:
            self.page(until=first - 1, newest=True)

    def action_newer(self) -> None:
        last = self._seq_at(-1)
        if last is not None and not self.live:
            self.page(after=last, newest=False)

    def action_cursor_edge(self, row: int) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=row % table.row_count, animate=False)

    def _clear(self) -> None:
        self.query_one(DataTable).clear()
        self.last_seq = 0
        self.total = 0
        self._show_filter()

    def _seq_at(self, row: int) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        row = row % table.row_count
        return int(table.coordinate_to_cell_key((row, 0)).row_key.value)

    @work(exclusive=True, group="log-tail", exit_on_error=False)
    async def page(self, *, after: int = 0, until: int | None = None, newest: bool) -> None:
        """Show one page before ``until`` (newest=True) or after ``after``; stops following.
        An empty page leaves the table as it is; paging forward past the end goes live."""
        try:
            events = await self.app.store.events(
                self.run_id, after=after, until=until, kinds=self.kinds, limit=self.PAGE, newest=newest
            )
        except Exception as e:
            self.app.report(e, "reading the event log")
            return
        if not events:
            if not newest:
                self.action_follow()
            return
        self.live = False
        self._clear()
        self._add(events, select=0 if newest else None)

    @work(exclusive=True, group="log-tail", exit_on_error=False)
    async def tail(self) -> None:
        store = self.app.store
        first = True
        while True:
            try:
                if first or not self.ended:
                    run = await store.run(self.run_id)
                    if (run.status, run.error) != (self.run_status, self.run_error):
                        self.run_status, self.run_error = run.status, run.error
                        self._show_filter()
                if first:
                    last = await store.last_seq(self.run_id)
                    events = await store.events(self.run_id, until=last, kinds=self.kinds, limit=self.PAGE, newest=True)
                    first = False
                    self.last_seq = last
                else:
                    events = await store.events(self.run_id, after=self.last_seq, kinds=self.kinds)
                    self.last_seq = (
                        await store.last_seq(self.run_id) if not events else max(self.last_seq, events[-1].seq)
                    )
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.app.report(e, "reading the event log")
                await asyncio.sleep(2)
                continue
            if events:
                self._add(events)
            await asyncio.sleep(self.app.poll_interval * 2)

    def _add(self, events: list, select: int | None = None) -> None:
        table = self.query_one(DataTable)
        follow = select is None and table.cursor_row >= table.row_count - 1
        for e in events:
            if not self._shown(e):
                continue
            table.add_row(
                str(e.seq),
                local_clock(e.ts),
                e.problem_id or "",
                e.node_id or "",
                Text(e.kind, style=KIND_STYLE.get(e.kind, "")),
                details(e),
                key=str(e.seq),
            )
        while table.row_count > self.PAGE:
            table.remove_row(table.coordinate_to_cell_key((0, 0)).row_key)
        self.total = table.row_count
        self._show_filter()
        if select is not None:
            table.move_cursor(row=select)
        elif follow and table.row_count:
            table.move_cursor(row=table.row_count - 1)

    def _shown(self, e) -> bool:
        """Under "error", a run's end counts only when it did not finish normally."""
        if self.group == "error" and e.kind == ev.RUN_FINISHED:
            return e.payload.status != "finished" or bool(e.payload.error)
        return True

    def action_replay_here(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        seq = int(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        self.post_message(OpenRun(self.run_id, "replay", seq=seq))
