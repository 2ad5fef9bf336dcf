"""Find a node in a tree: type ``#N`` (or ``N``) to go to that node, or ``solved``,
``pruned``, ``refined`` (any prefix) to list those nodes; Enter or a click goes there.

A list, where the tree's filter (``F``, widgets/search_tree.py) shows the matching
nodes in place with their ancestors.
"""

from __future__ import annotations

import re

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from bdc_tui.format import NODE_KINDS as KINDS
from bdc_tui.format import node_label
from engine.search.tree import Node, ProblemTree

LIMIT = 500  # options listed at once


def matching(tree: ProblemTree, query: str) -> tuple[str, list[Node]]:
    """(what the query means, the nodes it names) in node-id order."""
    q = query.strip().lower()
    nodes = sorted(tree.nodes.values(), key=lambda n: int(n.id) if n.id.isdigit() else 0)
    m = re.fullmatch(r"#?(\d+)", q)
    if m:
        hit = tree.nodes.get(m.group(1))
        return (f"node #{m.group(1)}" + ("" if hit else " is not in this tree"), [hit] if hit else [])
    kinds = [k for k in KINDS if q and k.startswith(q)] or ([] if q else list(KINDS))
    if not kinds:
        return (f"“{query}”: type #N, solved, pruned or refined", [])
    hits = [n for n in nodes if any(KINDS[k](n) for k in kinds)]
    return (" or ".join(kinds) + f": {len(hits)} nodes", hits)


class FindNodeScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Close")]
    DEFAULT_CSS = """
    FindNodeScreen { align: center middle; }
    #find-box { width: 90%; max-width: 110; height: 80%; border: round $accent; background: $surface; padding: 0 1; }
    #find-list { height: 1fr; }
    #find-what { height: 1; }
    """

    def __init__(self, tree: ProblemTree) -> None:
        super().__init__()
        self.ptree = tree
        self.hits: list[Node] = []
        self.what = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="find-box"):
            yield Static(f"find in {self.ptree.problem_id}: #N goes to a node; solved / pruned / refined lists them")
            yield Input(placeholder="#12, solved, pruned, refined", id="find-input")
            yield Static("", id="find-what")
            yield OptionList(id="find-list")

    def on_mount(self) -> None:
        self._fill("")

    @on(Input.Changed, "#find-input")
    def _changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def _fill(self, query: str) -> None:
        what, self.hits = matching(self.ptree, query)
        self.what = what
        shown = self.hits[:LIMIT]
        self.query_one("#find-what", Static).update(
            what + (f" (first {LIMIT} listed)" if len(self.hits) > LIMIT else "")
        )
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(node_label(n, thought_width=60), id=n.id) for n in shown])
        if shown:
            options.highlighted = 0

    @on(Input.Submitted, "#find-input")
    def _submitted(self) -> None:
        if self.hits:
            self.dismiss(self.hits[0].id)
        else:
            self.notify(self.what, severity="warning")

    @on(OptionList.OptionSelected, "#find-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
