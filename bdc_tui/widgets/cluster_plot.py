"""The 2-D projection of training examples, one colour and marker per cluster (textual-plotext)."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot

MARKERS = ("dot", "x", "+", "o", "*", "#", "@", "$")
COLORS = ("cyan", "magenta", "yellow", "green", "red", "blue", "orange", "white")


class ClusterPlot(PlotextPlot):
    def show(self, result: dict[str, Any] | None) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if not result or not result.get("points"):
            plt.title("no cluster data")
            self.refresh()
            return
        points, labels = result["points"], result.get("labels") or [0] * len(result["points"])
        k = int(result.get("k") or (max(labels) + 1 if labels else 1))
        plt.title(f"training examples, 2-D projection, k={k}")
        for c in range(k):
            xs = [p[0] for p, lab in zip(points, labels) if lab == c]
            ys = [p[1] for p, lab in zip(points, labels) if lab == c]
            if xs:
                plt.scatter(
                    xs, ys, marker=MARKERS[c % len(MARKERS)], color=COLORS[c % len(COLORS)], label=f"cluster {c}"
                )
        self.refresh()
