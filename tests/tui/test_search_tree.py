"""SearchTreeView on big trees: lazy materialisation, expand-on-demand, incremental best node."""

from __future__ import annotations

from textual.app import App, ComposeResult

from bdc_tui.demo import search_events
from bdc_tui.widgets.search_tree import SearchTreeView
from engine.search.tree import TreeState
from tests.tui.conftest import wait_for


class TreeApp(App):
    def __init__(self, auto_expand: int) -> None:
        super().__init__()
        self.auto_expand = auto_expand

    def compose(self) -> ComposeResult:
        yield SearchTreeView(id="tree", auto_expand=self.auto_expand)


def _events(max_nodes: int = 600):
    return list(search_events("P/0", seed=5, max_nodes=max_nodes))


async def test_big_tree_materialises_lazily_and_tracks_best_incrementally() -> None:
    app = TreeApp(auto_expand=40)
    async with app.run_test(size=(120, 30)) as pilot:
        view = app.query_one(SearchTreeView)
        state = TreeState()
        events = _events()
        shown = False
        for k in range(0, len(events), 37):  # polls of 37 events
            ids: set[str] = set()
            for e in events[k : k + 37]:
                ids |= state.apply(e)
            tree = state.problems.get("P/0")
            if tree is None or "0" not in tree.nodes:
                continue
            if not shown:
                view.show(tree)
                shown = True
            else:
                view.sync(tree, ids)
            expected = tree.best_node()
            assert view.best_id == (expected.id if expected else None)
            # the widget holds a parent-closed subset: every held node's parent is held and expanded
            for nid in view._items:
                n = tree.nodes[nid]
                assert n.parent is None or (n.parent in view._items and view._items[n.parent].is_expanded)
        tree = state.problems["P/0"]
        assert len(tree.nodes) > 200
        assert view.node_count < len(tree.nodes)
        # expanded held nodes have all their children held; collapsed ones none yet
        for nid, item in view._items.items():
            kids = {c.data for c in item.children}
            if item.is_expanded:
                assert kids == set(tree.nodes[nid].children)
        # "best" reveals the best node (materialising its ancestors) and puts the cursor on it
        best = view.best_id
        assert best is not None
        view.focus()
        await pilot.press("b")
        assert await wait_for(pilot, lambda: view.cursor_node is not None and view.cursor_node.data == best)
        # expanding a collapsed node from the keyboard materialises its children
        collapsed = next(nid for nid, it in view._items.items() if not it.is_expanded and tree.nodes[nid].children)
        view.move_cursor(view.item(collapsed))
        await pilot.pause()
        await pilot.press("space")
        assert await wait_for(pilot, lambda: view.item(collapsed).is_expanded)
        assert {c.data for c in view.item(collapsed).children} == set(tree.nodes[collapsed].children)
        # labels of held nodes match their nodes after all the incremental updates
        for nid in view._items:
            assert f"N={tree.nodes[nid].visits} " in str(view.item(nid).label)
