"""The tree filter (F): only solved, pruned or refined nodes with their ancestors (dimmed),
a line saying which filter is on and how many match, kept right while the tree grows live
and while a replay steps back and forth."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from bdc_tui.demo import search_events
from bdc_tui.format import NODE_KINDS
from bdc_tui.screens.replay import ReplayScreen
from bdc_tui.widgets.search_tree import FILTERS, SearchTreeView
from engine.search import events as ev
from engine.search.tree import ProblemTree, TreeState
from tests.tui.conftest import wait_for
from tests.tui.test_app import make_app, open_runs
from tests.tui.test_flows import open_view
from tests.tui.test_layouts import footer_keys

SIZES = [(100, 30), (160, 45)]


def expected(tree: ProblemTree, kind: str) -> tuple[set[str], set[str]]:
    """(matching nodes, what the widget must hold: them, their ancestors and the root)."""
    matches = {nid for nid, n in tree.nodes.items() if NODE_KINDS[kind](n)}
    held = {tree.root.id} if tree.root is not None else set()
    for nid in matches:
        cur: str | None = nid
        while cur is not None:
            held.add(cur)
            cur = tree.nodes[cur].parent
    return matches, held


def dimmed(view: SearchTreeView, nid: str) -> bool:
    label = view.item(nid).label
    return any(span.start == 0 and span.end >= len(label.plain) and "dim" in str(span.style) for span in label.spans)


def check_filtered(view: SearchTreeView, tree: ProblemTree) -> None:
    matches, held = expected(tree, view.filter)
    assert set(view._items) == held
    assert view.match_count == len(matches)
    for nid, item in view._items.items():
        assert item.is_expanded
        assert dimmed(view, nid) == (nid not in matches), nid
        # siblings in the fold's order
        kids = [c.data for c in item.children]
        order = tree.nodes[nid].children
        assert kids == [c for c in order if c in kids]


class TreeApp(App):
    def compose(self) -> ComposeResult:
        yield SearchTreeView(id="tree", auto_expand=40)


async def test_the_filter_follows_a_growing_tree_and_its_refines() -> None:
    events = list(search_events("P/0", seed=5, max_nodes=400))
    assert any(e.kind == ev.REFINE for e in events) and any(e.kind == ev.PRUNE for e in events)
    app = TreeApp()
    async with app.run_test(size=(120, 30)):
        view = app.query_one(SearchTreeView)
        state = TreeState()
        shown = False
        polls = 0
        for k in range(0, len(events), 23):  # polls of 23 events, as the live screen folds them
            ids: set[str] = set()
            for e in events[k : k + 23]:
                ids |= state.apply(e)
            tree = state.problems.get("P/0")
            if tree is None or tree.root is None:
                continue
            if not shown:
                view.set_filter("pruned")  # on before the first node arrives
                view.show(tree)
                shown = True
            else:
                view.sync(tree, ids)
            polls += 1
            if polls % 12 == 0:  # the user cycles the filter while the search runs
                view.cycle_filter()
                if view.filter == "all":
                    view.cycle_filter()
            check_filtered(view, tree)
        assert polls > 20
        tree = state.problems["P/0"]
        for kind in ("solved", "pruned", "refined"):
            view.set_filter(kind)
            check_filtered(view, tree)
            assert view.match_count > 0, kind
            assert f"filter: {kind} · {view.match_count} of {len(tree.nodes)} nodes" in view.filter_summary()
        # back to every node: the lazily materialised tree again
        view.set_filter("all")
        assert view.filter_summary() == ""
        assert view.node_count < len(tree.nodes)
        for nid in view._items:
            n = tree.nodes[nid]
            assert n.parent is None or view._items[n.parent].is_expanded
            assert not dimmed(view, nid)
        with pytest.raises(ValueError):
            view.set_filter("bogus")


@pytest.mark.parametrize("size", SIZES)
async def test_F_cycles_the_live_tree_filter_and_says_how_many_match(demo_db: Path, size) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        view = await open_view(pilot, "r-demo-humaneval")
        assert await wait_for(pilot, lambda: view.tree_view.node_count > 3 and view.state.status == "finished")
        assert await wait_for(pilot, lambda: "F" in footer_keys(app) and "q" in footer_keys(app)), footer_keys(app)
        line = view.query_one("#tree-filter")
        assert not line.display
        tv = view.tree_view
        seen = []
        for _ in FILTERS:
            await pilot.press("F")
            await pilot.pause()
            seen.append(tv.filter)
            tree = view.tree
            if tv.filter == "all":
                assert not line.display
                assert tv.node_count == len(tree.nodes)  # small tree: whole again
                continue
            check_filtered(tv, tree)
            matches, held = expected(tree, tv.filter)
            assert line.display and line.region.height == 1 and line.region.bottom <= size[1]
            assert f"filter: {tv.filter} · {len(matches)} of {len(tree.nodes)} nodes" in line.plain
            drawn = "".join(seg.text for seg in line.render_line(0))
            assert line.plain in drawn, (drawn, size)  # whole, even in the narrow tree pane
            # the filtered lines are the tree's lines: every held node has one
            assert len(tv._tree_lines) == len(held)
        assert seen == ["solved", "pruned", "refined", "all"]
        # the help lists the key on this screen and says what the dim lines are
        from bdc_tui.screens.help import HelpScreen

        await pilot.press("question_mark")
        assert await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.plain_text()
        this = text.split("This screen: Live search tree")[1].split("Replay")[0]
        assert any(line.split()[:2] == ["F", "Filter"] for line in this.splitlines())
        assert any(line.strip().startswith("dim ") and "ancestor" in line for line in text.splitlines())
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: app.screen is view)
        # pruned again; go to a node the filter hides: the filter goes off, the cursor gets there
        await pilot.press("F", "F")
        assert tv.filter == "pruned"
        hidden = next(nid for nid, n in view.tree.nodes.items() if not n.pruned and nid not in tv._items)
        await pilot.press("g", *f"#{hidden}", "enter")
        assert await wait_for(pilot, lambda: view.inspector.node_id == hidden)
        assert tv.filter == "all" and not line.display
        assert any("tree filter off" in str(n.message) for n in app._notifications)


@pytest.mark.parametrize("size", SIZES)
async def test_the_filter_stays_right_while_a_replay_steps(demo_db: Path, size) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        app.open_run("r-demo-humaneval", "replay", 40)
        assert await wait_for(pilot, lambda: isinstance(app.screen, ReplayScreen) and app.screen.timeline is not None)
        screen = app.screen
        tv = screen.tree_view
        await pilot.press("F", "F")  # pruned
        assert tv.filter == "pruned"
        for keys in (["right"] * 4, ["shift+right"] * 2, ["left"] * 3, ["n"], ["end"], ["home"]):
            await pilot.press(*keys)
            await pilot.pause()
            tree = screen.tree
            if tree is None or tree.root is None:
                continue
            assert tv.problem is tree
            check_filtered(tv, tree)
            line = screen.query_one("#tree-filter")
            assert line.display and f"of {len(tree.nodes)} nodes" in line.plain


@pytest.mark.parametrize("size", SIZES)
async def test_the_filter_follows_a_live_search_as_its_events_arrive(tmp_path: Path, size) -> None:
    from bdc_tui.demo import demo_problems
    from bdc_tui.screens.search import SearchScreen

    app = make_app(tmp_path / "live.db")
    async with app.run_test(size=size) as pilot:
        store = app.store
        run_id = await store.create_run(
            dataset="humaneval", strategy="mcts", agents=["a"], config={}, problems=demo_problems(1), run_id="r-live"
        )
        await store.claim_run(run_id)
        await open_runs(pilot)
        app.open_run(run_id)
        assert await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        screen = app.screen
        await pilot.press("F", "F")  # pruned, before the first node arrives
        tv = screen.tree_view
        assert tv.filter == "pruned"
        events = list(search_events("HumanEval/0", seed=2, max_nodes=120))
        checked = 0
        for k in range(0, len(events), 60):
            for e in events[k : k + 60]:
                store.emit(run_id, e.kind, e.payload, problem_id=e.problem_id, node_id=e.node_id)
            await store.flush()
            last = (await store.events(run_id))[-1].seq
            assert await wait_for(pilot, lambda last=last: screen.state.last_seq >= last)
            await pilot.pause()
            tree = screen.tree
            if tree is None or tree.root is None:
                continue
            check_filtered(tv, tree)
            line = screen.query_one("#tree-filter")
            assert f"of {len(tree.nodes)} nodes" in line.plain
            checked += 1
        assert checked >= 5 and tv.match_count > 0
