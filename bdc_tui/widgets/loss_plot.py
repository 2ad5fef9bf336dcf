"""Live loss curves (textual-plotext), appended to as metrics arrive.

A job that trains several adapters one after another (the experts of each cluster)
reports them as separate series, and each gets its own line and a legend entry —
never one line joining expert 0's last step to expert 1's first.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot

SINGLE = ""  # the series name of a job that trains one adapter


class LossPlot(PlotextPlot):
    def on_mount(self) -> None:
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self._draw()

    @property
    def values(self) -> list[float]:
        return [v for _, vs in self.series.values() for v in vs]

    def reset(self) -> None:
        self.series = {}
        self._draw()

    def extend(self, points: list[tuple[float, float]], series: str = SINGLE) -> None:
        self.extend_series([(series, s, v) for s, v in points])

    def extend_series(self, points: list[tuple[str, float, float]]) -> None:
        """Add (series, step, value) points; a new series name starts a new line."""
        for name, s, v in points:
            steps, values = self.series.setdefault(name, ([], []))
            steps.append(s)
            values.append(v)
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("training loss")
        plt.xlabel("step")
        for name, (steps, values) in self.series.items():
            if values:
                plt.plot(steps, values, marker="braille", label=name or None)
        self.refresh()
