"""Evaluation results in the paper's Table 2 layout: one row per solver, PR/AC per difficulty.

Column groups are dataset × difficulty, each followed by the dataset's Overall (mean over
its difficulties), so a DisenLoRA run reads like the paper's table.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

DIFFICULTY_ORDER = ("introductory", "interview", "competition", "easy", "medium", "hard")


def _order(d: str) -> tuple[int, str]:
    return (DIFFICULTY_ORDER.index(d) if d in DIFFICULTY_ORDER else 99, d)


def table2(rows: list[dict[str, Any]]) -> Table:
    datasets: dict[str, list[str]] = {}
    solvers: list[str] = []
    cells: dict[tuple[str, str, str], tuple[float, float]] = {}
    for r in rows:
        ds, diff, solver = str(r.get("dataset", "?")), str(r.get("difficulty", "all")), str(r.get("solver", "?"))
        if diff not in datasets.setdefault(ds, []):
            datasets[ds].append(diff)
        if solver not in solvers:
            solvers.append(solver)
        cells[(solver, ds, diff)] = (float(r.get("pr") or 0), float(r.get("ac") or 0))
    table = Table(title="PR / AC (%) per difficulty — paper Table 2 layout", title_justify="left", show_lines=False)
    table.add_column("solver", style="bold")
    for ds, diffs in datasets.items():
        diffs.sort(key=_order)
        for d in [*diffs, "overall"]:
            table.add_column(f"{ds}\n{d}\nPR", justify="right")
            table.add_column("\n\nAC", justify="right")
    best: dict[int, float] = {}
    body: list[list[float]] = []
    for solver in solvers:
        vals: list[float] = []
        for ds, diffs in datasets.items():
            got = [cells[(solver, ds, d)] for d in diffs if (solver, ds, d) in cells]
            for d in diffs:
                pr, ac = cells.get((solver, ds, d), (float("nan"), float("nan")))
                vals += [pr, ac]
            if got:
                vals += [sum(g[0] for g in got) / len(got), sum(g[1] for g in got) / len(got)]
            else:
                vals += [float("nan"), float("nan")]
        body.append(vals)
        for i, v in enumerate(vals):
            if v == v:
                best[i] = max(best.get(i, float("-inf")), v)
    for solver, vals in zip(solvers, body):
        out = [Text(f"{v:.2f}", style="bold green" if v == best.get(i) and len(solvers) > 1 else "") if v == v else Text("–")
               for i, v in enumerate(vals)]
        table.add_row(solver, *out)
    return table


class ResultsTable(Static):
    def show(self, result: Any) -> None:
        rows = (result or {}).get("rows") if isinstance(result, dict) else None
        self._content = table2(rows) if rows else Text("no results yet", style="dim")
        self.update(self._content)

    def plain_text(self, width: int = 200) -> str:
        import os

        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
        console.print(getattr(self, "_content", ""))
        return console.export_text()
