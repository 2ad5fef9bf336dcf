"""A live loss curve (textual-plotext), appended to as metrics arrive."""

from __future__ import annotations

from textual_plotext import PlotextPlot


class LossPlot(PlotextPlot):
    def on_mount(self) -> None:
        self.steps: list[float] = []
        self.values: list[float] = []
        self._draw()

    def reset(self) -> None:
        self.steps, self.values = [], []
        self._draw()

    def extend(self, points: list[tuple[float, float]]) -> None:
        for s, v in points:
            self.steps.append(s)
            self.values.append(v)
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("training loss")
        plt.xlabel("step")
        if self.values:
            plt.plot(self.steps, self.values, marker="braille")
        self.refresh()
