"""The live search tree: tail the run's events from the store and fold them as they arrive.

The search runs in another process (launched by ``engine.jobs`` or a headless ``bdc
search``); this screen only polls ``events(run_id, after=last_seq)`` in a worker, so it
attaches the same way to any run, and a finished run simply shows its final tree.
"""

from __future__ import annotations

import asyncio

from textual import work
from textual.binding import Binding

from bdc_tui.messages import OpenRun
from bdc_tui.screens.run_view import RunViewScreen
from bdc_tui.widgets.run_status import RunStatus
from engine.store.call_progress import calls_in_flight

BATCH = 5000


class SearchScreen(RunViewScreen):
    BINDINGS = [
        Binding("l", "log", "Event log"),
        Binding("p", "replay", "Replay"),
    ]

    def on_mount(self) -> None:
        self.sub_title = f"live · {self.run_id}"
        self.events_seen = 0
        self.load_run_info()
        self.poll()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        store = self.app.store
        if store is None:
            return
        ticks = 0
        while True:
            try:
                events = await store.events(self.run_id, after=self.state.last_seq, limit=BATCH)
                if ticks % 8 == 0 or events:
                    run = await store.run(self.run_id)
                    self.run_status, self.run_error = run.status, run.error
                in_flight = await calls_in_flight(store, self.run_id) if self.run_status == "running" else []
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.app.report(e, f"reading run {self.run_id}")
                await asyncio.sleep(2.0)
                continue
            status_line = self.query_one(RunStatus)
            if in_flight or status_line.in_flight:  # calls in flight changed or are counting up
                status_line.show_in_flight(in_flight)
                if not events:
                    self.update_status()
            if events:
                try:
                    self.events_seen += self.apply_events(events)
                except Exception as e:  # an event the fold cannot apply: report, skip past it
                    self.app.report(e, f"applying events of {self.run_id} up to seq {events[-1].seq}")
                    self.state.last_seq = max(self.state.last_seq, events[-1].seq)
            elif ticks % 8 == 0:
                self.update_status()
            ticks += 1
            if len(events) < BATCH:
                await asyncio.sleep(self.app.poll_interval)

    def action_log(self) -> None:
        self.post_message(OpenRun(self.run_id, "log"))

    def action_replay(self) -> None:
        self.post_message(OpenRun(self.run_id, "replay"))
