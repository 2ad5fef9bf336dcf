"""Everything about one search node: thought, refinements, reflection, solutions, verdicts, LLM calls.

The tree gives the overview; this panel answers "why is this node scored like that":
each policy's program with syntax highlighting, which tests it passed, what a failing
test expected and got, the reflection that led to a refine, and the LLM calls (tokens,
cost, latency) that produced the node.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from bdc_tui.format import BEST, PRUNED, REFINED, SOLVED, money, node_solved, pct
from bdc_tui.widgets.search_tree import best_id_of
from engine.search.tree import ProblemTree

_SLOW = {"timeout", "time_limit", "time_limit_exceeded"}


def verdict_name(v: Any) -> str:
    return str(v.get("verdict", "?") if isinstance(v, dict) else v)


def verdict_text(verdicts: list[Any]) -> Text:
    """One notation everywhere: ``✓ t1`` for a passed test, ``✗ t2 wrong_answer`` for the rest."""
    t = Text()
    for i, v in enumerate(verdicts, 1):
        name = verdict_name(v)
        if name == "passed":
            t.append(f"{SOLVED} t{i}  ", style="green")
        else:
            t.append(f"{PRUNED} t{i} ", style="bold yellow" if name in _SLOW else "bold red")
            t.append(f"{name}  ", style="yellow" if name in _SLOW else "red")
    t.rstrip()
    return t


def failure_detail(t: dict) -> str:
    """Why one test failed: expected vs got when the checker compared outputs, else the error
    type and message (a crash has no output to compare: never "expected None, got None")."""
    exp, got = t.get("expected"), t.get("got", t.get("actual"))
    if exp is not None or got is not None:
        return f"expected {str(exp)[:60]!s}, got {str(got)[:60]!s}"
    stderr = str(t.get("stderr_excerpt") or t.get("stderr") or "").strip().splitlines()
    message = stderr[-1].strip() if stderr else ""
    error_type = t.get("error_type")
    if error_type and message.startswith(f"{error_type}:"):
        return message[:120]
    return ": ".join(x for x in (error_type, message) if x)[:120] or "(no output recorded)"


def _detail_rows(tests: list[dict]) -> Table | None:
    """Each failing test once, with why it failed (when the store has the sandbox's record)."""
    failing = [(i, t) for i, t in enumerate(tests, 1) if verdict_name(t) != "passed"]
    if not failing:
        return None
    table = Table("test", "verdict", "why", box=None, padding=(0, 1), show_edge=False)
    for i, t in failing[:8]:
        table.add_row(f"{PRUNED} t{i}", verdict_name(t), failure_detail(t))
    if len(failing) > 8:
        table.add_row("…", f"{len(failing) - 8} more", "")
    return table


@lru_cache(maxsize=512)
def highlighted(code: str) -> Text:
    """Pygments lexing is the slow part of showing a node: do it once per program."""
    return Syntax(code, "python", theme="ansi_dark").highlight(code)


def numbered(code: str) -> Text:
    lines = highlighted(code).split("\n", allow_blank=True)
    width = len(str(len(lines)))
    out = Text()
    for i, line in enumerate(lines, 1):
        out.append(f"{i:>{width}} ", style="dim")
        out.append_text(line)
        out.append("\n")
    out.rstrip()
    return out


class NodeInspector(ScrollView, can_focus=True):
    """Scrollable details of the node under the tree cursor.

    The content is rendered to lines once per update and those lines are scrolled, so
    scrolling never re-renders (or re-highlights) the node's programs. Unlike ``RichLog``
    or ``Static``, a new node never triggers a layout pass of the screen: the vertical
    scrollbar is always there and the virtual size is set without the reactive's layout
    refresh, so only this panel is repainted on a key press.
    """

    DEFAULT_CSS = """
    NodeInspector { padding: 0 1; overflow-y: scroll; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.node_id: str | None = None
        self._content: RenderableType = Text("Select a node in the tree.")
        self._lines: list[Strip] = []
        self._rendered_width = 0

    def on_resize(self) -> None:
        if self.scrollable_content_region.width != self._rendered_width:
            self._render_content()

    def _show(self, content: RenderableType) -> None:
        self._content = content
        self._render_content()
        self.scroll_to(0, 0, animate=False, immediate=True)

    def _render_content(self) -> None:
        width = self.scrollable_content_region.width
        self._rendered_width = width
        if width <= 0:
            self._lines = []
            return
        console = self.app.console
        options = console.options.update(width=width, max_width=width, height=None, highlight=False)
        lines = console.render_lines(self._content, options, pad=True)
        self._lines = [Strip(line, width) for line in lines]
        size = Size(width, len(self._lines))
        if size != self.virtual_size:
            self.set_reactive(Widget.virtual_size, size)
            self._scroll_update(size)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if index < len(self._lines):
            strip = self._lines[index].crop_extend(0, width, self.rich_style)
        else:
            strip = Strip.blank(width, self.rich_style)
        return strip.apply_style(self.rich_style)

    def clear(self, message: str = "Select a node in the tree.") -> NodeInspector:
        self.node_id = None
        self._show(Text(message))
        return self

    def show_node(
        self,
        tree: ProblemTree,
        node_id: str,
        *,
        calls: list[dict] | None = None,
        sandbox: list[dict] | None = None,
        best_id: str | None = None,
        context: list[RenderableType] | None = None,
    ) -> None:
        """Show ``node_id``; ``best_id`` is the tree's best node when the caller tracks it
        (the tree view does, incrementally) so a key press never rescans the whole tree."""
        node = tree.nodes.get(node_id)
        if node is None:
            self.clear(f"node #{node_id} is not in the tree at this point")
            return
        self.node_id = node_id
        parts: list[RenderableType] = []
        head = Text()
        head.append(f"#{node.id}" if node.parent is not None else "root", style="bold")
        if node.policy:
            head.append(f"  policy {node.policy}", style="cyan")
        head.append(
            f"  depth {node.depth}  visits {node.visits}  value {node.value:.3f}  pass rate {pct(node.pass_rate)}  prior {node.prior:.2f}"
        )
        parts.append(head)
        flags = Text()
        if node.pruned:
            flags.append(f"{PRUNED} pruned (its pass rate fell below its parent's) ", style="bold red")
        if node.refinements:
            flags.append(f"{REFINED} refined {node.refinements}× ", style="bold yellow")
        if node_solved(node):
            flags.append(f"{SOLVED} passes every public test ", style="bold green")
        if best_id is None:
            best_id = best_id_of(tree)
        if best_id == node.id:
            flags.append(f"{BEST} best node of the tree", style="bold magenta")
        if tree.solved_by == node.id:
            flags.append("  (first solution)", style="green")
        if flags.plain:
            parts.append(flags)
        if node.parent is None:
            parts.append(
                Text(
                    f"problem {tree.problem_id}: {len(tree.nodes)} nodes, {tree.rollouts_done} rollouts, "
                    f"{tree.prunes} prunes, {tree.refinements} refines"
                )
            )
            parts.extend(context or [])
        if node.thought:
            parts.append(Panel(Text(node.thought), title="thought", title_align="left", border_style="blue"))
        for i, old in enumerate(node.old_thoughts, 1):
            parts.append(
                Panel(
                    Text(old, style="strike dim"),
                    title=f"old thought {i} (replaced)",
                    title_align="left",
                    border_style="yellow",
                )
            )
        if node.summary:
            parts.append(
                Panel(Text(node.summary), title="reflection summary", title_align="left", border_style="yellow")
            )
        by_policy: dict[str, list[dict]] = {}
        for row in sandbox or []:
            by_policy.setdefault(str(row.get("policy")), []).append(row)
        for sol in node.solutions:
            policy = sol.get("policy", "?")
            title = Text.assemble(
                (f"{policy}", "bold cyan"),
                f"  pass rate {pct(sol.get('pass_rate'))} ({sol.get('passed', '?')}/{sol.get('total', '?')})",
            )
            body: list[RenderableType] = [verdict_text(sol.get("verdicts") or [])]
            if sol.get("parse_error"):
                body.append(Text(f"parse error: {sol['parse_error']}", style="red"))
            details = [
                d
                for row in by_policy.get(policy, [])[-1:]
                if (d := _detail_rows(row.get("verdicts") or [])) is not None
            ]
            if details:  # the sandbox's record says the same as the feedback, per test: show it once
                body.extend(details)
            elif sol.get("feedback") and (sol.get("pass_rate") or 0) < 1:
                body.append(Text(str(sol["feedback"]).rstrip(), style="red"))
            body.append(numbered(sol.get("code", "") or "# (no code)"))
            parts.append(
                Panel(
                    Group(*body),
                    title=title,
                    title_align="left",
                    border_style="green" if (sol.get("pass_rate") or 0) >= 1 else "red",
                )
            )
        if calls is not None:
            parts.append(self._calls_table(calls))
        self._show(Group(*parts))

    def show_parts(self, parts: list[RenderableType]) -> None:
        """Show something other than a node (the run itself when it has no tree)."""
        self.node_id = None
        self._show(Group(*parts))

    def plain_text(self, width: int = 120) -> str:
        """What the panel shows, as plain text (tests and copy-out use it)."""
        from rich.console import Console

        console = Console(width=width, record=True, file=open(os.devnull, "w"), color_system=None)
        console.print(self._content)
        return console.export_text()

    @staticmethod
    def _calls_table(calls: list[dict]) -> RenderableType:
        if not calls:
            return Text("no LLM calls recorded for this node", style="dim")
        cached = any(c.get("cached") for c in calls)
        errors = any(c.get("error") for c in calls)
        table = Table(title="LLM calls", title_justify="left", box=None, padding=(0, 0, 0, 1), expand=False)
        table.add_column("policy", no_wrap=True, overflow="ellipsis", max_width=12)
        table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=14)
        for name, width in (("tok in", 6), ("tok out", 7), ("cost", 7), ("time", 6)):
            table.add_column(name, no_wrap=True, justify="right", min_width=width)
        if cached:
            table.add_column("cached", no_wrap=True)
        if errors:
            table.add_column("error", overflow="fold", ratio=1)
        tin = tout = cost = 0.0
        for c in calls:
            tin += c.get("tokens_in") or 0
            tout += c.get("tokens_out") or 0
            cost += c.get("cost") or 0
            row = [
                str(c.get("policy") or ""),
                str(c.get("model") or ""),
                str(c.get("tokens_in") or 0),
                str(c.get("tokens_out") or 0),
                money(c.get("cost")),
                f"{c.get('latency_s') or 0:.2f}s",
            ]
            if cached:
                row.append("yes" if c.get("cached") else "")
            if errors:
                row.append(Text(str(c.get("error") or ""), style="red"))
            table.add_row(*row)
        table.add_row(
            "total", "", str(int(tin)), str(int(tout)), money(cost), "", *([""] * (cached + errors)), style="bold"
        )
        return table
