"""The replay timeline: a bar over the run's events with prune/refine/solution markers.

Rendered as one or two text lines so it costs nothing to redraw at play speed; markers
use symbols as well as colours.
"""

from __future__ import annotations

from rich.text import Text
from bdc_tui.widgets.text_line import TextLine

from bdc_tui.format import PRUNED, REFINED, SOLVED, short


def describe(e) -> str:
    """A one-line account of an event for the timeline and the event log."""
    if e is None:
        return "start of the run"
    p = e.payload
    k = e.kind
    node = f"#{p['node']}" if "node" in p else ""
    if k == "expand":
        kids = p.get("children", [])
        return f"expand #{p.get('parent')} → {', '.join('#' + c['node'] + ' ' + str(c.get('policy')) for c in kids)}"
    if k == "simulate":
        return f"simulate {node} pass rate {p.get('pass_rate', 0):.2f} over {len(p.get('solutions', []))} policies"
    if k == "select":
        return "select " + " → ".join("#" + x for x in p.get("path", []))
    if k == "backup":
        return f"backup reward {p.get('reward', 0):.2f} along {len(p.get('path', []))} nodes"
    if k == "prune":
        return f"{PRUNED} prune {node}: PR {p.get('pass_rate', 0):.2f} < parent {p.get('parent_pass_rate', 0):.2f}"
    if k == "reflect":
        return f"reflect on {node} ({p.get('policy')}): {short(p.get('summary') or '', 70)}"
    if k == "refine":
        return f"{REFINED} refine {node}: “{short(p.get('old_thought') or '', 35)}” → “{short(p.get('new_thought') or '', 35)}”"
    if k == "solution_found":
        return f"{SOLVED} solution at {node} by {p.get('policy')}"
    if k == "problem_finished":
        return f"problem finished: {p.get('status')} private PR {p.get('private_pass_rate')}"
    if k == "llm_error":
        return f"! LLM error {p.get('policy')} ({p.get('stage')}): {p.get('message')}"
    if k == "budget_exhausted":
        return f"! budget exhausted: {p.get('reason')}"
    if k == "rollout_finished":
        return f"rollout {p.get('rollout')} finished"
    if k == "run_finished":
        return f"run finished: {p.get('status')}"
    return k


class TimelineBar(TextLine):
    """Position, markers and the current event of a replay."""

    def show(self, position: int, total: int, marks: dict[str, list[int]], current, *, playing: bool, speed: float) -> None:
        width = max(10, (self.size.width or 80) - 2)
        cells = ["─"] * width
        styles = [""] * width

        def cell(i: int) -> int:
            return min(width - 1, (i - 1) * width // max(total, 1))

        for group, sym, style in (("prune", PRUNED, "red"), ("refine", REFINED, "yellow"), ("solution", SOLVED, "green")):
            for i in marks.get(group, []):
                c = cell(i)
                cells[c], styles[c] = sym, style
        bar = Text()
        cur = cell(position) if position else -1
        for c, (ch, st) in enumerate(zip(cells, styles)):
            if c == cur:
                bar.append("█", style="bold white")
            else:
                bar.append(ch, style=st or ("bold blue" if c < cur else "dim"))
        head = Text()
        head.append("▶ playing" if playing else "⏸ paused", style="bold green" if playing else "bold")
        head.append(f"  {speed:g} ev/s  event {position}/{total}  ")
        head.append(describe(current), style="italic")
        self.set(Text("\n").join([head, bar]))
