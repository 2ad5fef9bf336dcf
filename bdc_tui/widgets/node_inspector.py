"""Everything about one search node: thought, refinements, reflection, solutions, verdicts, LLM calls.

The tree gives the overview; this panel answers "why is this node scored like that":
each policy's program with syntax highlighting, which tests it passed, what a failing
test expected and got, the reflection that led to a refine, and the LLM calls (tokens,
cost, latency) that produced the node.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from functools import lru_cache

from textual.widgets import RichLog

from bdc_tui.format import BEST, PRUNED, REFINED, SOLVED, money, node_solved, pct
from engine.search.tree import ProblemTree

_VERDICT_MARK = {"passed": ("✓", "green"), "failed": ("✗", "red"), "error": ("!", "red"),
                 "timeout": ("⏱", "yellow"), "memory": ("M", "yellow")}


def verdict_text(verdicts: list[Any]) -> Text:
    t = Text()
    for i, v in enumerate(verdicts, 1):
        name = v.get("verdict", "?") if isinstance(v, dict) else str(v)
        mark, style = _VERDICT_MARK.get(name, ("?", "yellow"))
        t.append(f"{mark}", style=f"bold {style}")
        t.append(f"t{i}:{name} ", style=style)
    return t


def _detail_rows(tests: list[dict]) -> Table | None:
    """Expected vs got for failing tests recorded by the sandbox (when the store has them)."""
    failing = [(i, t) for i, t in enumerate(tests, 1) if t.get("verdict") != "passed"]
    if not failing:
        return None
    table = Table("test", "verdict", "expected", "got", box=None, padding=(0, 1), show_edge=False)
    for i, t in failing[:8]:
        got = t.get("got", t.get("stdout", t.get("actual", "")))
        exp = t.get("expected", t.get("output", ""))
        if not got and t.get("stderr"):
            got = str(t["stderr"]).strip().splitlines()[-1:] or ""
            got = got[0] if got else ""
        table.add_row(str(i), str(t.get("verdict")), str(exp)[:80], str(got)[:80])
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


class NodeInspector(RichLog):
    """Scrollable details of the node under the tree cursor.

    A ``RichLog`` renders its content to lines once per update, so scrolling and screen
    layout never re-render (or re-highlight) the node's programs: key presses stay cheap.
    """

    DEFAULT_CSS = """
    NodeInspector { padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, wrap=True, markup=False, highlight=False, auto_scroll=False)
        self.node_id: str | None = None
        self._content: RenderableType = Text("Select a node in the tree.")

    def on_mount(self) -> None:
        self._show(self._content)

    def _show(self, content: RenderableType) -> None:
        self._content = content
        super().clear()
        self.write(content, scroll_end=False)
        self.scroll_home(animate=False)

    def clear(self, message: str = "Select a node in the tree.") -> "NodeInspector":  # type: ignore[override]
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
    ) -> None:
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
        head.append(f"  depth {node.depth}  visits {node.visits}  value {node.value:.3f}  pass rate {pct(node.pass_rate)}  prior {node.prior:.2f}")
        parts.append(head)
        flags = Text()
        if node.pruned:
            flags.append(f"{PRUNED} pruned (its pass rate fell below its parent's) ", style="bold red")
        if node.refinements:
            flags.append(f"{REFINED} refined {node.refinements}× ", style="bold yellow")
        if node_solved(node):
            flags.append(f"{SOLVED} passes every public test ", style="bold green")
        best = tree.best_node()
        if best is not None and best.id == node.id:
            flags.append(f"{BEST} best node of the tree", style="bold magenta")
        if tree.solved_by == node.id:
            flags.append("  (first solution)", style="green")
        if flags.plain:
            parts.append(flags)
        if node.parent is None:
            parts.append(Text(f"problem {tree.problem_id}: {len(tree.nodes)} nodes, {tree.rollouts_done} rollouts, "
                              f"{tree.prunes} prunes, {tree.refinements} refines"))
        if node.thought:
            parts.append(Panel(Text(node.thought), title="thought", title_align="left", border_style="blue"))
        for i, old in enumerate(node.old_thoughts, 1):
            parts.append(Panel(Text(old, style="strike dim"), title=f"old thought {i} (replaced)",
                               title_align="left", border_style="yellow"))
        if node.summary:
            parts.append(Panel(Text(node.summary), title="reflection summary", title_align="left", border_style="yellow"))
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
            if sol.get("feedback"):
                body.append(Text(str(sol["feedback"]).rstrip(), style="red"))
            for row in by_policy.get(policy, [])[-1:]:
                detail = _detail_rows(row.get("verdicts") or [])
                if detail is not None:
                    body.append(detail)
            body.append(numbered(sol.get("code", "") or "# (no code)"))
            parts.append(Panel(Group(*body), title=title, title_align="left",
                               border_style="green" if (sol.get("pass_rate") or 0) >= 1 else "red"))
        if calls is not None:
            parts.append(self._calls_table(calls))
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
        table = Table("policy", "model", "tok in", "tok out", "cost", "latency", "cached", "error",
                      title="LLM calls", title_justify="left", box=None, padding=(0, 1))
        tin = tout = cost = 0.0
        for c in calls:
            tin += c.get("tokens_in") or 0
            tout += c.get("tokens_out") or 0
            cost += c.get("cost") or 0
            table.add_row(str(c.get("policy") or ""), str(c.get("model") or ""), str(c.get("tokens_in") or 0),
                          str(c.get("tokens_out") or 0), money(c.get("cost")), f"{c.get('latency_s') or 0:.2f}s",
                          "yes" if c.get("cached") else "", Text(str(c.get("error") or ""), style="red"))
        table.add_row("total", "", str(int(tin)), str(int(tout)), money(cost), "", "", "", style="bold")
        return table
