"""Clusters from the DisenLoRA stage: a 2-D scatter coloured by cluster, sizes, sample members."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static

from bdc_tui.widgets.cluster_plot import COLORS, MARKERS, ClusterPlot


class ClustersScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("j", "app.jobs", "Jobs")]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="clusters-body"):
            yield ClusterPlot(id="cluster-plot")
            with Vertical(id="cluster-side"):
                yield OptionList(id="cluster-jobs")
                with VerticalScroll():
                    yield Static("", id="cluster-info")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "clusters of the training examples"
        self.cluster_jobs: list = []
        self.shown_sizes: list[int] = []
        self.load()

    @work(exclusive=True, group="clusters", exit_on_error=False)
    async def load(self) -> None:
        try:
            jobs = [j for j in await self.app.store.jobs(kind="cluster") if isinstance(j.result, dict)]
        except Exception as e:
            self.app.report(e, "reading cluster jobs")
            return
        self.cluster_jobs = jobs
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([f"{j.id} (k={j.result.get('k')})" for j in jobs])
        if jobs:
            options.highlighted = 0
            self.show(0)
        else:
            self.query_one(ClusterPlot).show(None)
            self.query_one("#cluster-info", Static).update(
                "No clustering yet. Open the pipeline (ctrl+p, “Pipeline”): export training examples from "
                "finished searches, then cluster them as a background job."
            )

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show(event.option_index)

    def show(self, index: int) -> None:
        if not (0 <= index < len(self.cluster_jobs)):
            return
        result = self.cluster_jobs[index].result
        self.query_one(ClusterPlot).show(result)
        sizes = result.get("sizes") or []
        self.shown_sizes = list(sizes)
        table = Table("cluster", "marker", "size", "share", box=None, title="cluster sizes", title_justify="left")
        total = sum(sizes) or 1
        for c, n in enumerate(sizes):
            table.add_row(
                Text(str(c), style=COLORS[c % len(COLORS)]),
                MARKERS[c % len(MARKERS)],
                str(n),
                f"{100 * n / total:.0f}%",
            )
        parts = [table]
        samples = result.get("samples") or {}
        for c, texts in samples.items():
            t = Text(
                f"\ncluster {c} samples\n", style=f"bold {COLORS[int(c) % len(COLORS)] if str(c).isdigit() else ''}"
            )
            for s in texts[:5]:
                t.append(f" • {str(s)[:200]}\n")
            parts.append(t)
        from rich.console import Group

        self.query_one("#cluster-info", Static).update(Group(*parts))
