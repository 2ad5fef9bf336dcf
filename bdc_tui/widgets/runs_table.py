"""The runs of the store as a DataTable, updated in place by run id (no flicker, cursor kept)."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from bdc_tui.data import RunSummary
from bdc_tui.format import local_time, money, pct

STATUS_STYLE = {
    "running": ("● running", "bold green"),
    "finished": ("✓ finished", "green"),
    "interrupted": ("⏸ interrupted", "yellow"),
    "failed": ("✗ failed", "bold red"),
    "cancelled": ("■ cancelled", "dim"),
    "pending": ("… pending", "cyan"),
}
COLUMNS = ("run", "status", "dataset", "strategy", "agents", "progress", "PR", "AC", "cost", "created")
# PR and AC are as wide as their longest value ("100%") from the start, so a live update
# ("–" -> "100%") never lands in a column sized for the shorter value; every other column
# (status too: a failed run may carry its reason) grows with its cells on each update.
STATUS_WIDTH = max(len(label) for label, _ in STATUS_STYLE.values())
FIXED_WIDTHS = {"PR": len("100%"), "AC": len("100%")}
# what a narrow terminal leaves out first (the run opens with all of it anyway)
DROP_ORDER = ("agents", "strategy", "dataset", "created")


REASON_WIDTH = 24


def status_text(status: str, error: str | None = None) -> Text:
    """The status cell; a failed run carries the start of its reason (the whole of it is in `bdc show`)."""
    label, style = STATUS_STYLE.get(status, (status, ""))
    if status == "failed" and error:
        reason = error.split(": ", 1)[1] if error.split(": ", 1)[0].isidentifier() and ": " in error else error
        label += ": " + (reason if len(reason) <= REASON_WIDTH else reason[: REASON_WIDTH - 1] + "…")
    return Text(label, style=style)


class RunsTable(DataTable):
    """Rows keyed by run id and updated in place. When the terminal is too narrow for
    every column, the low-value ones (``DROP_ORDER``) are left out first, and
    ``ColumnsFitted`` tells the screen what is hidden so it can say so."""

    class ColumnsFitted(Message):
        def __init__(self, hidden: tuple[str, ...], scrolls: bool) -> None:
            self.hidden = hidden
            self.scrolls = scrolls  # still wider than the view after dropping: it scrolls
            super().__init__()

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.summaries: dict[str, RunSummary] = {}
        self.shown: tuple[str, ...] = ()
        self.fitted: tuple[tuple[str, ...], bool] = ((), False)
        self._fit()

    def row_cells(self, s: RunSummary) -> list:
        r = s.run
        agents = ", ".join(r.agents[:3]) + (f" +{len(r.agents) - 3}" if len(r.agents) > 3 else "")
        return [
            r.id,
            status_text(r.status, r.error),
            r.dataset or "–",
            r.strategy or "–",
            agents,
            f"{s.done}/{s.total}",
            pct(s.pr),
            pct(s.ac),
            money(s.cost),
            local_time(r.created_at),
        ]

    def _cells(self, s: RunSummary) -> dict[str, Any]:
        return dict(zip(COLUMNS, self.row_cells(s)))

    def column_widths(self) -> dict[str, int]:
        """Each column's drawn width (padding included) for the current rows."""
        rows = [self._cells(s) for s in self.summaries.values()]
        return {
            c: 2 * self.cell_padding + (FIXED_WIDTHS.get(c) or max([cell_len(c)] + [cell_len(str(r[c])) for r in rows]))
            for c in COLUMNS
        }

    def fitting_columns(self, width: int) -> tuple[str, ...]:
        """COLUMNS minus the fewest low-value ones that make the rest fit in ``width``."""
        widths = self.column_widths()
        shown = list(COLUMNS)
        total = sum(widths.values())
        for c in DROP_ORDER:
            if total <= width:
                break
            if c in shown:
                shown.remove(c)
                total -= widths[c]
        return tuple(shown)

    def _fit(self) -> None:
        """Rebuild the columns when the set that fits changed (cursor kept on its run)."""
        room = max(0, self.size.width - self.styles.scrollbar_size_vertical) or 10_000
        shown = self.fitting_columns(room)
        if shown != self.shown:
            selected = self.selected.id if self.shown and self.selected else None
            self.clear(columns=True)
            self.shown = shown
            for c in shown:
                self.add_column(c, key=c, width=FIXED_WIDTHS.get(c))
            for s in self.summaries.values():
                cells = self._cells(s)
                self.add_row(*[cells[c] for c in shown], key=s.id)
            if selected is not None:
                self.move_cursor(row=self.get_row_index(selected))
        widths = self.column_widths()
        fitted = (tuple(c for c in COLUMNS if c not in self.shown), sum(widths[c] for c in self.shown) > room)
        if fitted != self.fitted:
            self.fitted = fitted
            self.post_message(self.ColumnsFitted(*fitted))

    def on_resize(self) -> None:
        self._fit()

    def load(self, summaries: list[RunSummary]) -> None:
        keep = {s.id for s in summaries}
        for rid in [k for k in self.summaries if k not in keep]:
            self.remove_row(rid)
            del self.summaries[rid]
        for s in summaries:
            cells = self._cells(s)
            if s.id in self.summaries:
                old = self._cells(self.summaries[s.id])
                for col in self.shown:
                    if str(cells[col]) != str(old[col]):
                        self.update_cell(s.id, col, cells[col], update_width=True)
            else:
                self.add_row(*[cells[c] for c in self.shown], key=s.id)
            self.summaries[s.id] = s
        self._fit()

    @property
    def selected(self) -> RunSummary | None:
        if not self.summaries or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        return self.summaries.get(key)
