"""One evaluation job in detail: every problem's result per solver, and the program it generated.

The rows are the ``eval_results`` table (engine/store/eval_results.py) the evaluation writes
as each problem lands, so a running evaluation shows what it has so far. Read with a
read-only sqlite connection in a thread: the store's async writer is never blocked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from bdc_tui.export import export_program
from bdc_tui.format import pct

COLUMNS = ("solver", "problem", "dataset", "status", "PR", "attempts", "error")
STATUS_STYLE = {"passed": "green", "failed": "red", "error": "bold red", "unscored": "dim", "generated": "yellow"}


def read_eval_results(db: Path, job_id: str) -> list[dict]:
    """The job's per-problem rows, solver then problem order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10.0)
    try:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT solver, problem_id, dataset, difficulty, status, pass_rate, passed, scored, program, error, attempts "
            "FROM eval_results WHERE job_id=? ORDER BY solver, dataset, problem_id",
            (job_id,),
        ).fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


class EvalDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "toggle_failed", "Failed only"),
        Binding("y", "export_program", "Copy program"),
    ]
    AUTO_FOCUS = "#eval-rows"
    DEFAULT_CSS = """
    #eval-rows { height: 1fr; }
    #eval-summary { height: 1; padding: 0 1; }
    #eval-program-box { height: 1fr; border-top: solid $accent; }
    """

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.rows: list[dict] = []
        self.failed_only = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading results…", id="eval-summary")
        yield DataTable(id="eval-rows", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="eval-program-box"):
            yield Static("", id="eval-program")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"evaluation {self.job_id} · per problem"
        table = self.query_one(DataTable)
        for c in COLUMNS:
            table.add_column(c, key=c)
        self.load()

    @work(exclusive=True, group="eval-detail", exit_on_error=False)
    async def load(self) -> None:
        try:
            self.rows = await asyncio.to_thread(read_eval_results, self.app.db_path, self.job_id)
        except Exception as e:
            self.app.report(e, f"reading the results of {self.job_id}")
            return
        self.fill()

    @property
    def shown(self) -> list[dict]:
        return [r for r in self.rows if r["status"] != "passed"] if self.failed_only else self.rows

    def fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for i, r in enumerate(self.shown):
            table.add_row(
                r["solver"],
                r["problem_id"],
                r["dataset"] or "",
                Text(r["status"], style=STATUS_STYLE.get(r["status"], "")),
                pct(r["pass_rate"]) if r["scored"] else "–",
                str(r["attempts"]),
                (r["error"] or "")[:60],
                key=str(i),
            )
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        summary = (
            ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no per-problem results stored for this job"
        )
        self.query_one("#eval-summary", Static).update(
            f"{len(self.rows)} results: {summary}" + ("  · failed only (x: all)" if self.failed_only else "")
        )
        self.show_program()

    def current(self) -> dict | None:
        table = self.query_one(DataTable)
        shown = self.shown
        if not shown or table.row_count == 0:
            return None
        return shown[min(table.cursor_row, len(shown) - 1)]

    def show_program(self) -> None:
        r = self.current()
        box = self.query_one("#eval-program", Static)
        if r is None:
            box.update("")
            return
        code = r["program"] or ""
        head = Text(f"{r['solver']} · {r['problem_id']} · {r['status']}", style="bold")
        if r["error"]:
            head.append(f"\n{r['error']}", style="red")
        body = (
            Syntax(code, "python", theme="ansi_dark", line_numbers=True)
            if code
            else Text("(no program stored)", style="dim")
        )
        box.update(Group(head, body))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_program()

    def action_toggle_failed(self) -> None:
        self.failed_only = not self.failed_only
        self.fill()

    def action_export_program(self) -> None:
        r = self.current()
        if r is None or not r["program"]:
            self.notify("no program stored for this row", severity="warning")
            return
        export_program(self.app, r["program"], self.job_id, r["solver"], r["problem_id"])
