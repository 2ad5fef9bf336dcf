"""The MC-Tree-Of-Agents tree as a Textual ``Tree`` that is updated, never rebuilt.

Why incremental: a search emits dozens of events a second and trees reach thousands of
nodes. ``sync(tree, ids)`` touches only the given node ids: new nodes are added under
their parent, labels are recomputed and set only when their text changed, and subtrees
the fold dropped (a refine replaces a thought and discards its subtree) are removed.

Why lazy: every line Textual's ``Tree`` holds costs on each structural change (it
re-walks and re-measures all lines and lays the screen out again). So the widget holds
("materialises") only what can be seen: the children of expanded nodes. While it holds
fewer than ``auto_expand`` nodes every new node arrives expanded, so small trees show
whole; beyond that new nodes arrive collapsed (▶) and their children are materialised
when they are expanded (keyboard, mouse, or ``focus_node`` for "best"/"selection").
Events that only grow collapsed subtrees cost the widget nothing.

The best node is tracked incrementally: an event can only raise the score of the nodes it
touched, so the whole tree is rescanned only when the best node itself lost its solution
(a refine) or was dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bdc_tui.format import node_label
from engine.search.tree import Node, ProblemTree

AUTO_EXPAND = 400


def best_key(n: Node) -> tuple | None:
    """The ordering ``ProblemTree.best_node`` uses (better solution, shallower, earlier).

    None when the node has no solution passing any test: a pass rate of 0 is no "best"."""
    sol = n.best_solution()
    if sol is None or not (sol.get("pass_rate") or 0) > 0:
        return None
    return (sol.get("pass_rate", 0.0), -n.depth, -int(n.id) if n.id.isdigit() else 0)


def best_id_of(tree: ProblemTree) -> str | None:
    """The tree's best node, or None while no solution passes a single public test."""
    best = tree.best_node()
    return best.id if best is not None and best_key(best) is not None else None


class SearchTreeView(Tree[str]):
    """Tree widget over one ``ProblemTree``; ``TreeNode.data`` is the search node id."""

    # the tree's own expand/collapse marks; ▶ (format.ON_PATH) marks the selection path
    ICON_NODE = "+ "
    ICON_NODE_EXPANDED = "− "

    BINDINGS = [
        Binding("b", "goto_best", "Best"),
        Binding("s", "goto_selection", "Selection", show=False),
    ]

    def __init__(self, *, id: str | None = None, classes: str | None = None, auto_expand: int = AUTO_EXPAND) -> None:
        self._widths: dict[int, tuple[Text, int]] = {}  # TreeNode._id -> (label, cell width)
        super().__init__("no problem selected", id=id, classes=classes)
        self.root.allow_expand = False  # a placeholder line, not a collapsed node
        self.show_root = True
        self.guide_depth = 3
        self.auto_expand = auto_expand
        self._ptree: ProblemTree | None = None
        self._items: dict[str, TreeNode[str]] = {}  # materialised nodes only
        self._labels: dict[str, str] = {}
        self._best: str | None = None
        self._best_key: tuple | None = None
        self._path: set[str] = set()

    # ------------------------------------------------------------------ state
    @property
    def problem(self) -> ProblemTree | None:
        return self._ptree

    @property
    def node_count(self) -> int:
        """How many nodes the widget holds (materialised), not how many the tree has."""
        return len(self._items)

    @property
    def best_id(self) -> str | None:
        return self._best

    def item(self, node_id: str) -> TreeNode[str] | None:
        return self._items.get(node_id)

    def show(self, tree: ProblemTree | None) -> None:
        """Switch to another problem tree (or a re-folded one): one full rebuild."""
        self.clear()
        self._items = {}
        self._labels = {}
        self._widths = {}
        self._ptree = tree
        self._best = None
        self._best_key = None
        self._path = set()
        self.root.allow_expand = tree is not None  # no +/− mark on the placeholder line
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
        full = ids is None
        ids = set(self._items) if full else set(ids)
        # the selection path and best node move: relabel old and new holders
        path = set(tree.selection)
        if path != self._path:
            ids |= path ^ self._path
            self._path = path
        old_best = self._best
        self._update_best(tree, None if full else ids)
        if self._best != old_best:
            ids |= {i for i in (self._best, old_best) if i is not None}
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
        # additions, parents first; only under materialised, expanded parents
        added = 0
        if full:
            if "0" in nodes and "0" not in self._items:
                self._add(tree, "0")
            stack = [self.root] if "0" in self._items else []
            while stack:
                item = stack.pop()
                if item.is_expanded:
                    added += self._materialise_children(tree, item)
                    stack.extend(item.children)
            fresh: set[str] = set()
        else:
            new = sorted(
                (i for i in ids if i in nodes and i not in self._items), key=lambda i: (nodes[i].depth, _num(i))
            )
            fresh = set()
            for nid in new:
                n = nodes[nid]
                parent = self._items.get(n.parent) if n.parent is not None else None
                if n.parent is None or (parent is not None and parent.is_expanded):
                    if self._add(tree, nid) is not None:
                        fresh.add(nid)
                        added += 1
        for nid in ids - fresh if fresh else ids:
            if nid in nodes and nid in self._items:
                self._relabel(tree, nid)
        return added

    def _update_best(self, tree: ProblemTree, ids: set[str] | None) -> None:
        nodes = tree.nodes
        cur = self._best
        rescan = ids is None or (
            cur is not None and (cur not in nodes or (cur in ids and best_key(nodes[cur]) != self._best_key))
        )
        if rescan:
            self._best = best_id_of(tree)
            self._best_key = best_key(nodes[self._best]) if self._best is not None else None
            return
        for nid in ids:
            n = nodes.get(nid)
            if n is None:
                continue
            k = best_key(n)
            if k is not None and (self._best_key is None or k > self._best_key):
                self._best, self._best_key = nid, k

    # ------------------------------------------------------------------ materialising
    def _materialise_children(self, tree: ProblemTree, item: TreeNode[str]) -> int:
        """Add the missing children of an expanded item, in the fold's order."""
        n = tree.nodes.get(item.data) if item.data is not None else None
        if n is None:
            return 0
        have = {c.data for c in item.children}
        added = 0
        for cid in n.children:
            if cid not in have and cid in tree.nodes:
                self._add(tree, cid)
                added += 1
        return added

    def _add(self, tree: ProblemTree, nid: str) -> TreeNode[str] | None:
        n = tree.nodes[nid]
        if n.parent is None:
            item = self.root
            item.data = nid
            self._items[nid] = item
            self._labels.pop(nid, None)
            self._relabel(tree, nid)
            return item
        parent = self._items.get(n.parent)
        if parent is None:
            return None
        label = node_label(n, on_path=nid in self._path, best=nid == self._best)
        item = parent.add(label, data=nid, expand=len(self._items) < self.auto_expand, allow_expand=bool(n.children))
        parent.allow_expand = True  # a leaf until now: it gets its +/− mark with its first child
        self._labels[nid] = label.plain + "|" + "".join(str(s.style) for s in label.spans)
        self._items[nid] = item
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
            self._widths.pop(it._id, None)
            stack.extend(it.children)
        if item is not self.root:
            item.remove()

    def _relabel(self, tree: ProblemTree, nid: str) -> None:
        label: Text = node_label(tree.nodes[nid], on_path=nid in self._path, best=nid == self._best)
        plain = label.plain + "|" + "".join(str(s.style) for s in label.spans)
        if self._labels.get(nid) != plain:
            self._labels[nid] = plain
            item = self._items[nid]
            item.set_label(label)

    # ------------------------------------------------------------------ Tree overrides
    def process_label(self, label: str | Text) -> Text:
        # our labels are single-line Text already; skip the split Textual does on every set
        if isinstance(label, Text) and "\n" not in label.plain:
            return label
        return super().process_label(label)

    def get_label_width(self, node: TreeNode[str]) -> int:
        """Cached: Textual re-measures every line on each structural change otherwise."""
        label = node._label
        cached = self._widths.get(node._id)
        if cached is None or cached[0] is not label:
            cached = self._widths[node._id] = (label, label.cell_len)
        return cached[1] + (len(self.ICON_NODE) if node._allow_expand else 0)

    def _toggle_node(self, node: TreeNode[str]) -> None:
        if not node.is_expanded and self._ptree is not None:
            self._materialise_children(self._ptree, node)
        super()._toggle_node(node)

    # ------------------------------------------------------------------ navigation
    def reveal(self, nid: str) -> TreeNode[str] | None:
        """Materialise and expand the ancestors of ``nid`` so it has a line; returns its item."""
        tree = self._ptree
        if tree is None or nid not in tree.nodes:
            return None
        chain: list[str] = []
        cur: str | None = nid
        while cur is not None and cur not in self._items:
            chain.append(cur)
            cur = tree.nodes[cur].parent if cur in tree.nodes else None
        if cur is None:
            return None
        for anc in reversed(chain):
            parent = self._items[tree.nodes[anc].parent]
            self._materialise_children(tree, parent)
            if not parent.is_expanded:
                parent.expand()
        item = self._items.get(nid)
        parent_item = item.parent if item is not None else None
        while parent_item is not None:
            if not parent_item.is_expanded:
                self._materialise_children(tree, parent_item)
                parent_item.expand()
            parent_item = parent_item.parent
        return item

    def focus_node(self, nid: str | None) -> bool:
        item = self.reveal(nid) if nid is not None else None
        if item is None:
            return False
        _ = self._tree_lines  # rebuild line numbers now if an expand invalidated them
        if self.cursor_node is item:
            # already under the cursor: no highlight event would follow, so send one (the
            # inspector may still show something else, e.g. nothing before the first move)
            self.post_message(Tree.NodeHighlighted(item))
        else:
            self.move_cursor(item)
        self.scroll_to_node(item, animate=False)
        return True

    def action_goto_best(self) -> None:
        if not self.focus_node(self._best):
            self.notify("no solution passes a public test yet", severity="warning")

    def action_goto_selection(self) -> None:
        if self._ptree is not None and self._ptree.selection:
            self.focus_node(self._ptree.selection[-1])


def _num(nid: str) -> int:
    return int(nid) if nid.isdigit() else 0
