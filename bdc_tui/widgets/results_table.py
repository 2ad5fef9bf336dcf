"""Evaluation results in the paper's Table 2 layout — the very table `bdc eval` prints.

The table is drawn by ``engine.evaluation.tables.table2`` (one implementation for the CLI
and the TUI) from the job result's ``summaries``. Results that only carry flat ``rows``
(older jobs) are folded back into summaries first; a dataset's Overall is then the
problem-weighted mean of its difficulties, as ``tables.summarize`` computes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Static

from engine.evaluation.tables import table2

Summaries = dict[str, dict[str, dict[str, dict[str, float]]]]


def summaries_from_rows(rows: list[dict[str, Any]]) -> Summaries:
    """{solver: {dataset: {difficulty|"overall": {pr, ac, n}}}} from flat result rows."""
    out: Summaries = {}
    for r in rows:
        cell = {"pr": float(r.get("pr") or 0), "ac": float(r.get("ac") or 0), "n": float(r.get("n") or 0)}
        out.setdefault(str(r.get("solver", "?")), {}).setdefault(str(r.get("dataset", "?")), {})[
            str(r.get("difficulty") or "unknown")
        ] = cell
    for by_ds in out.values():
        for diffs in by_ds.values():
            if "overall" in diffs:
                continue
            parts = list(diffs.values())
            weights = [p["n"] for p in parts] if any(p["n"] for p in parts) else [1.0] * len(parts)
            total = sum(weights)
            diffs["overall"] = {
                "pr": sum(p["pr"] * w for p, w in zip(parts, weights)) / total,
                "ac": sum(p["ac"] * w for p, w in zip(parts, weights)) / total,
                "n": sum(p["n"] for p in parts),
            }
    return out


def result_table(result: Any) -> Any | None:
    """The CLI's table for an eval job result, or None when it has no results."""
    if not isinstance(result, dict):
        return None
    summaries = result.get("summaries") or (summaries_from_rows(result["rows"]) if result.get("rows") else None)
    if not summaries:
        return None
    base = result.get("base")
    return table2(summaries, title=f"PR / AC  (base: {Path(base).name})" if base else "PR / AC")


class ResultsTable(Static):
    def show(self, result: Any, *, empty: str = "no results yet") -> None:
        table = result_table(result)
        self._content = table if table is not None else Text(empty, style="dim")
        self.update(self._content)

    def plain_text(self, width: int = 400) -> str:
        import io

        from rich.console import Console

        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(getattr(self, "_content", ""))
        return console.export_text()
