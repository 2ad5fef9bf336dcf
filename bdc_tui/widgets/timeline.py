"""The replay timeline: a bar over the run's events with prune/refine/solution markers.

Rendered as one or two text lines so it costs nothing to redraw at play speed; markers
use symbols as well as colours.
"""

from __future__ import annotations

from rich.text import Text

from bdc_tui.format import PRUNED, REFINED, SOLVED, short
from bdc_tui.widgets.text_line import TextLine
from engine.search import events as ev
from engine.store import Event


def describe(e: Event | None) -> str:
    """A one-line account of an event for the timeline: what happened, then its details."""
    if e is None:
        return "start of the run"
    head = KIND_WORDS.get(e.kind, e.kind.replace("_", " "))
    rest = details(e)
    return f"{head} {rest}" if rest else head


KIND_WORDS = {
    ev.PRUNE: f"{PRUNED} prune",
    ev.REFINE: f"{REFINED} refine",
    ev.SOLUTION_FOUND: f"{SOLVED} solution",
    ev.LLM_ERROR: "! LLM error",
    ev.BUDGET_EXHAUSTED: "! budget exhausted",
    ev.RUN_FINISHED: "run",
    ev.PROBLEM_FINISHED: "problem",
}


def details(e: Event) -> str:
    """What an event says beyond its kind (the event log shows the kind in its own column)."""
    p = e.payload
    k = e.kind
    if k == ev.EXPAND:
        kids = ", ".join(f"#{c.node} {c.policy}" for c in p.children)
        return f"#{p.parent} → {kids}"
    if k == ev.SIMULATE:
        return f"#{p.node} pass rate {p.pass_rate:.2f} over {len(p.solutions)} policies"
    if k == ev.SELECT:
        return " → ".join("#" + x for x in p.path) or "#0"
    if k == ev.BACKUP:
        # the fold updates every node named in q/n; ``path`` omits the evaluated leaf
        touched = sorted(set(p.path) | set(p.q) | set(p.n), key=lambda i: (len(i), i))
        noun = "node" if len(touched) == 1 else "nodes"
        return f"reward {p.reward:.2f} to {len(touched)} {noun} ({', '.join('#' + i for i in touched[:6])}{'…' if len(touched) > 6 else ''})"
    if k == ev.PRUNE:
        return f"#{p.node}: PR {p.pass_rate or 0:.2f} < parent {p.parent_pass_rate:.2f}"
    if k == ev.REFLECT:
        return f"on #{p.node} ({p.policy}): {short(p.summary or '', 70)}"
    if k == ev.REFINE:
        return f"#{p.node}: “{short(p.old_thought, 35)}” → “{short(p.new_thought, 35)}”"
    if k == ev.SOLUTION_FOUND:
        return f"at #{p.node} by {p.policy}"
    if k == ev.PROBLEM_FINISHED:
        private = "unscored" if p.private_pass_rate is None else f"private PR {p.private_pass_rate:.2f}"
        return f"{p.status}, {private}"
    if k == ev.LLM_ERROR:
        return f"{p.policy} ({p.stage}): {p.message}"
    if k == ev.BUDGET_EXHAUSTED:
        return str(p.reason)
    if k == ev.ROLLOUT_FINISHED:
        return str(p.rollout)
    if k == ev.RUN_FINISHED:
        return f"{p.status}: {p.error}" if p.error else p.status
    return ""


class TimelineBar(TextLine):
    """Position, markers and the current event of a replay."""

    def show(
        self, position: int, total: int, marks: dict[str, list[int]], current, *, playing: bool, speed: float
    ) -> None:
        width = max(10, (self.size.width or 80) - 2)
        cells = ["─"] * width
        styles = [""] * width

        def cell(i: int) -> int:
            return min(width - 1, (i - 1) * width // max(total, 1))

        for group, sym, style in (
            ("prune", PRUNED, "red"),
            ("refine", REFINED, "yellow"),
            ("solution", SOLVED, "green"),
        ):
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
