"""The runs of the store as a DataTable, updated in place by run id (no flicker, cursor kept)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from bdc_tui.data import RunSummary
from bdc_tui.format import ago, money, pct

STATUS_STYLE = {
    "running": ("● running", "bold green"),
    "finished": ("✓ finished", "green"),
    "interrupted": ("⏸ interrupted", "yellow"),
    "failed": ("✗ failed", "bold red"),
    "cancelled": ("■ cancelled", "dim"),
    "pending": ("… pending", "cyan"),
}
COLUMNS = ("run", "status", "dataset", "strategy", "agents", "progress", "PR", "AC", "cost", "created")


REASON_WIDTH = 40


def status_text(status: str, error: str | None = None) -> Text:
    """The status cell; a failed run carries the start of its reason (the whole of it is in `bdc show`)."""
    label, style = STATUS_STYLE.get(status, (status, ""))
    if status == "failed" and error:
        reason = error.split(": ", 1)[1] if error.split(": ", 1)[0].isidentifier() and ": " in error else error
        label += ": " + (reason if len(reason) <= REASON_WIDTH else reason[: REASON_WIDTH - 1] + "…")
    return Text(label, style=style)


class RunsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for c in COLUMNS:
            self.add_column(c, key=c)
        self.summaries: dict[str, RunSummary] = {}

    def row_cells(self, s: RunSummary) -> list:
        r = s.run
        agents = ", ".join(r.agents[:3]) + (f" +{len(r.agents) - 3}" if len(r.agents) > 3 else "")
        return [
            r.id, status_text(r.status, r.error), r.dataset or "–", r.strategy or "–", agents,
            f"{s.done}/{s.total}", pct(s.pr), pct(s.ac), money(s.cost), ago(r.created_at),
        ]

    def load(self, summaries: list[RunSummary]) -> None:
        keep = {s.id for s in summaries}
        for rid in [k for k in self.summaries if k not in keep]:
            self.remove_row(rid)
            del self.summaries[rid]
        for s in summaries:
            cells = self.row_cells(s)
            if s.id in self.summaries:
                old = self.row_cells(self.summaries[s.id])
                for col, new, prev in zip(COLUMNS, cells, old):
                    if str(new) != str(prev):
                        self.update_cell(s.id, col, new)
            else:
                self.add_row(*cells, key=s.id)
            self.summaries[s.id] = s

    @property
    def selected(self) -> RunSummary | None:
        if not self.summaries or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        return self.summaries.get(key)
