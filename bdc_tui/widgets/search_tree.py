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

Filtered: ``set_filter("solved"|"pruned"|"refined")`` makes the widget hold exactly the
matching nodes and their ancestors (dimmed, so the path from the root stays readable),
all expanded. Each ``sync`` re-tests only the touched nodes, drops matches a refine
discarded, and adds/removes the lines that changed, so the filter follows a live search
and a replay. ``filter_summary`` says which filter is on and how many nodes match.

The best node is tracked incrementally: an event can only raise the score of the nodes it
touched, so the whole tree is rescanned only when the best node itself lost its solution
(a refine) or was dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from bdc_tui.format import NODE_KINDS, node_label
from engine.search.tree import Node, ProblemTree

AUTO_EXPAND = 400
FILTERS = ("all", *NODE_KINDS)  # the order ``F`` cycles through


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

    class FilterChanged(Message):
        """The filter changed (a key, or going to a node it hid): the status line follows."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind

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
        self.filter = "all"
        self._matches: set[str] = set()  # with a filter on: the nodes that pass it

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
        self._matches = set()
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
        if self.filter != "all":
            return self._sync_filtered(tree, ids)
        nodes = tree.nodes
        full = ids is None
        ids = set(self._items) if full else set(ids)
        # the selection path and best node move: relabel old and new holders
        ids |= self._moved_marks(tree, None if full else ids)
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

    def _moved_marks(self, tree: ProblemTree, ids: set[str] | None) -> set[str]:
        """Track the selection path and the best node; the ids whose ▶/★ mark moved."""
        moved: set[str] = set()
        path = set(tree.selection)
        if path != self._path:
            moved |= path ^ self._path
            self._path = path
        old_best = self._best
        self._update_best(tree, ids)
        if self._best != old_best:
            moved |= {i for i in (self._best, old_best) if i is not None}
        return moved

    # ------------------------------------------------------------------ filtering
    def set_filter(self, kind: str) -> None:
        """Show only ``kind`` nodes (with their ancestors), or every node ("all")."""
        if kind not in FILTERS:
            raise ValueError(f"unknown tree filter {kind!r}: one of {', '.join(FILTERS)}")
        if kind == self.filter:
            return
        keep = self.cursor_node.data if self.cursor_node is not None else None
        self.filter = kind
        self.post_message(self.FilterChanged(kind))
        self.show(self._ptree)
        if keep is not None and keep in self._items:
            self.move_cursor(self._items[keep])

    def cycle_filter(self) -> str:
        """all → solved → pruned → refined → all; returns the new filter."""
        self.set_filter(FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)])
        return self.filter

    @property
    def match_count(self) -> int:
        return len(self._matches)

    def filter_summary(self) -> str:
        """``filter: pruned · 4 of 37 nodes`` (empty with no filter)."""
        if self.filter == "all":
            return ""
        total = len(self._ptree.nodes) if self._ptree is not None else 0
        shown = f"{len(self._matches)} of {total} nodes" if self._matches else f"none of {total} nodes yet"
        return f"filter: {self.filter} · {shown} · dim: ancestors · F: next"

    def _sync_filtered(self, tree: ProblemTree, ids: Iterable[str] | None) -> int:
        """Hold exactly the matching nodes and their ancestors, all expanded."""
        nodes = tree.nodes
        test = NODE_KINDS[self.filter]
        touched = set(nodes) if ids is None else set(ids)
        was = set(self._matches)
        for nid in touched:
            n = nodes.get(nid)
            if n is not None and test(n):  # the root too: a policy can solve from it
                self._matches.add(nid)
            else:
                self._matches.discard(nid)
        root = tree.root
        self._matches &= nodes.keys()  # a refine drops subtrees without naming them
        want: set[str] = set()
        for nid in self._matches:
            cur: str | None = nid
            while cur is not None and cur not in want:
                want.add(cur)
                cur = nodes[cur].parent if cur in nodes else None
        if root is not None:
            want.add(root.id)
        relabel = (touched | self._moved_marks(tree, None if ids is None else touched)) | (was ^ self._matches)
        parents: set[TreeNode[str]] = set()  # items whose shown children changed
        for nid in [i for i in self._items if i not in want]:
            item = self._items.get(nid)
            if item is not None and item.parent is not None:
                parents.add(item.parent)
            self._remove(nid)
        added = 0
        for nid in sorted(want - self._items.keys(), key=lambda i: (nodes[i].depth, _num(i))):
            item = self._add_in_order(tree, nid)
            if item is not None:
                added += 1
                if item.parent is not None:
                    parents.add(item.parent)
        for item in parents:
            # a +/− mark only where there are shown children (setting it re-renders the line)
            if item is not self.root and item.data in self._items and item.allow_expand != bool(item.children):
                item.allow_expand = bool(item.children)
        for nid in relabel:
            if nid in nodes and nid in self._items:
                self._relabel(tree, nid)
        return added

    def _add_in_order(self, tree: ProblemTree, nid: str) -> TreeNode[str] | None:
        """Add ``nid`` expanded, among its shown siblings in the fold's order."""
        n = tree.nodes[nid]
        if n.parent is None:
            return self._add(tree, nid)
        parent = self._items.get(n.parent)
        if parent is None:
            return None
        order = {cid: i for i, cid in enumerate(tree.nodes[n.parent].children)}
        mine = order.get(nid, len(order))
        before = next((c for c in parent.children if order.get(c.data, len(order)) > mine), None)
        label = self._label(tree, nid)
        item = parent.add(label, data=nid, before=before, expand=True, allow_expand=False)
        self._labels[nid] = label.plain + "|" + "".join(str(s.style) for s in label.spans)
        self._items[nid] = item
        return item

    def _label(self, tree: ProblemTree, nid: str) -> Text:
        """The node's line; with a filter on, ancestors that do not match it are dimmed."""
        label = node_label(tree.nodes[nid], on_path=nid in self._path, best=nid == self._best)
        if self.filter != "all" and nid not in self._matches:
            label.stylize("dim")
        return label

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
        label = self._label(tree, nid)
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
        label = self._label(tree, nid)
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
        if not node.is_expanded and self._ptree is not None and self.filter == "all":
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
        """Put the cursor on ``nid``; a node the filter hides turns the filter off first."""
        if self.filter != "all" and nid is not None and nid not in self._items:
            if self._ptree is None or nid not in self._ptree.nodes:
                return False
            self.notify(f"#{nid} is not {self.filter}: tree filter off")
            self.set_filter("all")
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
