"""Small text helpers shared by widgets: node labels, percentages, money, times, durations.

Times are shown in the machine's local time zone (what the user's clock says), never
as unlabelled UTC.

Every state is spelled with a symbol as well as a colour (✗ pruned, ↻ refined, ✓ solved,
★ best, ▶ on the current selection path) so the tree reads the same without colour.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text

from engine.search.tree import Node

PRUNED = "✗"
REFINED = "↻"
SOLVED = "✓"
BEST = "★"
ON_PATH = "▶"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def money(x: float | None) -> str:
    return "–" if not x else f"${x:.4f}" if x < 1 else f"${x:.2f}"


def local_time(ts: float | None) -> str:
    """A stored epoch timestamp as local date and time (``2026-12-02 14:05``)."""
    if not ts:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def local_clock(ts: float | None) -> str:
    """A stored epoch timestamp as local time of day (``14:05:09``), for event lists."""
    if not ts:
        return "–"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return "–"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def node_solved(node: Node) -> bool:
    sol = node.best_solution()
    return sol is not None and sol.get("pass_rate", 0.0) >= 1.0


# what the tree filter and the finder can show: each kind with the test a node passes
NODE_KINDS: dict[str, Callable[[Node], bool]] = {
    "solved": node_solved,
    "pruned": lambda n: n.pruned,
    "refined": lambda n: bool(n.refinements),
}


def node_label(node: Node, *, on_path: bool = False, best: bool = False, thought_width: int = 48) -> Text:
    """One tree line: markers, id, policy, N/Q/PR and the start of the thought."""
    t = Text(no_wrap=True, overflow="ellipsis")
    if node.parent is None:
        # a policy can solve the problem from the root (no thought needed): mark it too
        if node_solved(node):
            t.append(f"{SOLVED} ", style="bold green")
        if best:
            t.append(f"{BEST} ", style="bold magenta")
        t.append("root", style="bold")
    else:
        marks = ""
        if node.pruned:
            t.append(f"{PRUNED} ", style="bold red")
        if node.refinements:
            t.append(f"{REFINED}{node.refinements if node.refinements > 1 else ''} ", style="bold yellow")
        if node_solved(node):
            t.append(f"{SOLVED} ", style="bold green")
        if best:
            t.append(f"{BEST} ", style="bold magenta")
        t.append(marks)
        t.append(f"#{node.id}", style="bold" if not node.pruned else "dim strike")
        if node.policy:
            t.append(f" {node.policy}", style="cyan")
    stats = f"  N={node.visits} Q={node.value:.2f} PR={pct(node.pass_rate)}"
    t.append(stats, style="dim" if node.pruned else "")
    if node.thought:
        t.append("  " + short(node.thought, thought_width), style="dim italic" if node.pruned else "italic")
    if on_path:
        t.stylize("reverse" if node.parent is None else "on #303060")
        t = Text(f"{ON_PATH} ", style="bold") + t
    return t
