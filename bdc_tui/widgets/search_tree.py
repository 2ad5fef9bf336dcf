"""The MC-Tree-Of-Agents tree as a Textual ``Tree`` that is updated, never rebuilt.

Why incremental: a search emits dozens of events a second and trees reach thousands of
nodes. ``sync(tree, ids)`` touches only the given node ids: new nodes are added under
their parent (in one batch per poll, so the Tree rebuilds its line cache once), labels are
recomputed and set only when their text changed, and subtrees the fold dropped (a refine
replaces a thought and discards its subtree) are removed.
"""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bdc_tui.format import node_label
from engine.search.tree import ProblemTree


class SearchTreeView(Tree[str]):
    """Tree widget over one ``ProblemTree``; ``TreeNode.data`` is the search node id."""

    BINDINGS = [
        Binding("b", "goto_best", "Best node"),
        Binding("s", "goto_selection", "Selection"),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("no problem selected", id=id, classes=classes)
        self.show_root = True
        self.guide_depth = 3
        self._ptree: ProblemTree | None = None
        self._items: dict[str, TreeNode[str]] = {}
        self._labels: dict[str, str] = {}
        self._best: str | None = None
        self._path: set[str] = set()

    # ------------------------------------------------------------------ state
    @property
    def problem(self) -> ProblemTree | None:
        return self._ptree

    @property
    def node_count(self) -> int:
        return len(self._items)

    def item(self, node_id: str) -> TreeNode[str] | None:
        return self._items.get(node_id)

    def show(self, tree: ProblemTree | None) -> None:
        """Switch to another problem tree (or a re-folded one): one full rebuild."""
        self.clear()
        self._items = {}
        self._labels = {}
        self._ptree = tree
        self._best = None
        self._path = set()
        if tree is None:
            self.root.set_label("no problem selected")
            return
        self.root.data = "0"
        self.root.expand()
        self.sync(tree, None)

    def sync(self, tree: ProblemTree, ids: Iterable[str] | None) -> int:
        """Bring the widget in line with ``tree`` for ``ids`` (None: every node). Returns #added."""
        if tree is not self._ptree and self._ptree is not None and tree.problem_id != self._ptree.problem_id:
            self.show(tree)
            return len(self._items)
        self._ptree = tree
        nodes = tree.nodes
        ids = set(nodes) | set(self._items) if ids is None else set(ids)
        # the selection path and best node move: relabel old and new holders
        path = set(tree.selection)
        if path != self._path:
            ids |= path ^ self._path
            self._path = path
        best = tree.best_node()
        best_id = best.id if best is not None else None
        if best_id != self._best:
            ids |= {i for i in (best_id, self._best) if i is not None}
            self._best = best_id
        # removals (dropped subtrees), then nodes whose children were dropped
        for nid in [i for i in ids if i in self._items and i not in nodes]:
            self._remove(nid)
        for nid in ids:
            n = nodes.get(nid)
            item = self._items.get(nid)
            if n is not None and item is not None and len(item.children) > len(n.children):
                keep = set(n.children)
                for child in list(item.children):
                    if child.data not in keep:
                        self._remove(child.data)
        # additions, parents first
        new = sorted((i for i in ids if i in nodes and i not in self._items), key=lambda i: (nodes[i].depth, _num(i)))
        for nid in new:
            if nid not in self._items:
                self._add(tree, nid)
        fresh = set(new)
        for nid in ids - fresh if fresh else ids:
            if nid in nodes and nid in self._items:
                self._relabel(tree, nid)
        return len(new)

    def _add(self, tree: ProblemTree, nid: str) -> TreeNode[str] | None:
        n = tree.nodes[nid]
        if n.parent is None:
            item = self.root
            item.data = nid
            self._items[nid] = item
            self._labels.pop(nid, None)
            self._relabel(tree, nid)
            return item
        else:
            parent = self._items.get(n.parent)
            if parent is None:
                parent = self._add(tree, n.parent)
                if parent is None:
                    return None
            label = node_label(n, on_path=nid in self._path, best=nid == self._best)
            item = parent.add(label, data=nid, expand=True)
            self._labels[nid] = label.plain + "|" + "".join(str(s.style) for s in label.spans)
            self._items[nid] = item
            return item
        self._items[nid] = item
        self._labels.pop(nid, None)
        return item

    def _remove(self, nid: str) -> None:
        item = self._items.get(nid)
        if item is None:
            return
        stack = [item]
        while stack:
            it = stack.pop()
            self._items.pop(it.data, None)
            self._labels.pop(it.data, None)
            stack.extend(it.children)
        if item is not self.root:
            item.remove()

    def _relabel(self, tree: ProblemTree, nid: str) -> None:
        label: Text = node_label(tree.nodes[nid], on_path=nid in self._path, best=nid == self._best)
        plain = label.plain + "|" + "".join(str(s.style) for s in label.spans)
        if self._labels.get(nid) != plain:
            self._labels[nid] = plain
            self._items[nid].set_label(label)

    # ------------------------------------------------------------------ navigation
    def focus_node(self, nid: str | None) -> bool:
        item = self._items.get(nid) if nid is not None else None
        if item is None:
            return False
        parent = item.parent
        while parent is not None:
            if not parent.is_expanded:
                parent.expand()
            parent = parent.parent
        self.move_cursor(item)
        self.scroll_to_node(item, animate=False)
        return True

    def action_goto_best(self) -> None:
        if not self.focus_node(self._best):
            self.notify("no solution yet", severity="warning")

    def action_goto_selection(self) -> None:
        if self._ptree is not None and self._ptree.selection:
            self.focus_node(self._ptree.selection[-1])


def _num(nid: str) -> int:
    return int(nid) if nid.isdigit() else 0
