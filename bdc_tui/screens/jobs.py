"""Training and evaluation jobs: progress with ETA, a live loss curve, results tables.

Jobs run in their own processes (``engine.jobs``); this screen polls the store: the jobs
table, then the highlighted job's new metric points (``after_id``) and its result.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from bdc_tui.format import duration, local_time, short
from bdc_tui.widgets.loss_plot import LossPlot
from bdc_tui.widgets.results_table import ResultsTable
from bdc_tui.widgets.runs_table import STATUS_WIDTH, status_text
from engine.store import pid_alive

JOB_COLUMNS = ("job", "kind", "status", "progress", "ETA", "message", "created")
MESSAGE_WIDTH = 26  # the table's message is the start; the line under the table has all of it


def eta(job) -> float | None:
    """Remaining time from the progress rate so far; None when no live process reports."""
    if job.status != "running" or not job.started_at or not job.progress or job.progress <= 0:
        return None
    if not pid_alive(job.pid):
        return None
    elapsed = time.time() - job.started_at
    return elapsed * (1 - job.progress) / job.progress


def result_summary(result: object) -> str:
    """One line from a training or clustering result: its plain scalar fields."""
    if not isinstance(result, dict):
        return ""
    parts = []
    for key, value in result.items():
        if isinstance(value, float):
            parts.append(f"{key.replace('_', ' ')} {value:.4g}")
        elif isinstance(value, (int, str)) and not isinstance(value, bool):
            parts.append(f"{key.replace('_', ' ')} {value}")
    return "result: " + ", ".join(parts) if parts else ""


class JobsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("e", "app.new_eval", "Eval", tooltip="start a new evaluation"),
        Binding("x", "cancel", "Stop", tooltip="stop the highlighted job's process"),
        Binding("c", "app.clusters", "Clusters"),
        Binding("d", "eval_detail", "Per problem", tooltip="an evaluation's per-problem results and programs"),
    ]
    AUTO_FOCUS = "#jobs"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, object] = {}
        self.shown: str | None = None
        self.metric_after = 0
        self.series = ""  # the loss series being read (one per expert)

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="jobs", cursor_type="row", zebra_stripes=True)
        with Vertical(id="job-detail"):
            yield Static("", id="job-progress-line")
            yield ProgressBar(total=100, show_eta=False, id="job-progress")
            yield Static("", id="job-result-line")
            yield LossPlot(id="job-loss")
            # the table keeps its natural width and scrolls sideways on a narrow terminal
            with ScrollableContainer(id="job-results-box"):
                yield ResultsTable(id="job-results")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "training and evaluation jobs"
        table = self.query_one(DataTable)
        # fixed-vocabulary columns are as wide as their longest value from the start: a
        # live update ("running" -> "cancelled") is never cut to the old width
        widths = {"status": STATUS_WIDTH, "progress": len("100%")}
        for c in JOB_COLUMNS:
            table.add_column(c, key=c, width=widths.get(c))
        self.refresh_jobs()
        self.set_interval(max(0.5, self.app.refresh_interval), self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.refresh_jobs()

    @property
    def selected(self):
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        return self.jobs.get(key)

    @work(exclusive=True, group="jobs-refresh", exit_on_error=False)
    async def refresh_jobs(self) -> None:
        store = self.app.store
        try:
            jobs = [j for j in await store.jobs() if j.kind != "search"]
        except Exception as e:
            self.app.report(e, "reading jobs")
            return
        table = self.query_one(DataTable)
        for j in jobs:
            e = eta(j)
            shown = 1.0 if j.status == "finished" else (j.progress or 0)
            cells = [
                j.id,
                j.kind,
                status_text(j.status),
                f"{100 * shown:.0f}%",
                duration(e) if e is not None else "–",
                Text(short(j.error or j.message or "", MESSAGE_WIDTH), style="red" if j.error else ""),
                local_time(j.created_at),
            ]
            if j.id in self.jobs:
                for col, v in zip(JOB_COLUMNS, cells):
                    table.update_cell(j.id, col, v, update_width=True)
            else:
                table.add_row(*cells, key=j.id)
            self.jobs[j.id] = j
        for gone in [k for k in self.jobs if k not in {j.id for j in jobs}]:
            table.remove_row(gone)
            del self.jobs[gone]
        await self.refresh_detail()
        self.refresh_bindings()

    async def refresh_detail(self) -> None:
        job = self.selected
        if job is None:
            self.query_one("#job-progress-line", Static).update(
                "No training or evaluation jobs yet (e: new evaluation)."
            )
            return
        if job.id != self.shown:
            self.shown = job.id
            self.metric_after = 0
            self.series = ""
            self.query_one(LossPlot).reset()
        e = eta(job)
        line = (
            f"{job.kind} {job.id}: {job.status}  {100 * (1.0 if job.status == 'finished' else job.progress or 0):.0f}%"
        )
        if e is not None:
            line += f"  ETA {duration(e)}"
        if job.message:
            line += f"  — {job.message}"
        if job.error:
            line += f"  error: {job.error}"
        self.query_one("#job-progress-line", Static).update(line)
        self.query_one(ProgressBar).update(
            total=100, progress=100 * (job.progress or 0) if job.status != "finished" else 100
        )
        after = self.metric_after
        try:
            rows = await self.app.store.metrics(job.id, after_id=after)
        except Exception as err:
            self.app.report(err, "reading metrics")
            rows = []
        if self.shown != job.id or self.metric_after != after:
            rows = []  # a concurrent refresh (timer and cursor move) already took these points
        plot = self.query_one(LossPlot)
        if rows:
            self.metric_after = rows[-1]["id"]
            plot.extend_series(self.loss_points(rows))
        plot.display = bool(plot.values) or job.kind in ("train", "training")
        is_eval = self.is_eval(job)
        self.query_one("#job-results-box").display = is_eval
        if is_eval:
            self.query_one(ResultsTable).show(
                job.result, empty="no results yet" if job.status == "running" else "no results"
            )
        summary = result_summary(job.result) if not is_eval and job.status == "finished" else ""
        result_line = self.query_one("#job-result-line", Static)
        result_line.update(summary)
        result_line.display = bool(summary)

    def loss_points(self, rows: list[dict]) -> list[tuple[str, float, float]]:
        """(series, step, loss) from metric rows in write order: an ``expert`` row, written
        just before its step's loss, names the series the following losses belong to."""
        out = []
        for i, r in enumerate(rows):
            if r["name"] == "expert":
                self.series = f"expert {int(r['value'])}"
            elif r["name"] == "loss":
                out.append((self.series, r["step"] if r["step"] is not None else i, r["value"]))
        return out

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        await self.refresh_detail()
        self.refresh_bindings()

    @staticmethod
    def is_eval(job) -> bool:
        return job.kind in ("eval", "evaluation") or (isinstance(job.result, dict) and "rows" in job.result)

    def action_eval_detail(self) -> None:
        from bdc_tui.screens.eval_detail import EvalDetailScreen

        job = self.selected
        if job is not None and self.is_eval(job):
            self.app.push_screen(EvalDetailScreen(job.id))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "eval_detail":
            job = self.selected if self.is_mounted else None
            return True if job is not None and self.is_eval(job) else None
        if action == "cancel":
            job = self.selected if self.is_mounted else None
            ok = job is not None and job.status == "running" and job.pid and self.app.launcher is not None
            return True if ok else None
        return True

    def action_cancel(self) -> None:
        job = self.selected
        if job is not None and job.pid:
            try:
                self.app.launcher.cancel(job.pid)
                self.notify(f"asked job {job.id} to stop")
            except Exception as e:
                self.app.report(e, "cancelling")
