"""What the live view and the replay share: problem picker, search tree, node inspector.

Both fold ``TreeState`` from the same events; subclasses decide where events come from
(tailing the store, or a ``Timeline`` cursor) and call ``apply_events``/``rebuild``.
"""

from __future__ import annotations

from typing import Iterable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Select, Tree

from bdc_tui.widgets.node_inspector import NodeInspector
from bdc_tui.widgets.run_status import RunStatus
from bdc_tui.widgets.search_tree import SearchTreeView
from engine.search import events as ev
from engine.search.tree import ProblemTree, TreeState


class RunViewScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("[", "problem(-1)", "Prev problem"),
        Binding("]", "problem(1)", "Next problem"),
        Binding("f", "toggle_follow", "Follow"),
    ]
    AUTO_FOCUS = "SearchTreeView"
    INSPECTOR_REFRESH = 0.5  # s between re-renders of the inspected node while events stream
    DETAILS_DELAY = 0.12  # s the cursor must rest on a node before its LLM calls are read

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.state = TreeState()
        self.problem_id: str | None = None
        self.follow = True  # switch to the problem the search is working on
        self.run_status: str | None = None
        self.run_error: str | None = None  # the store's reason when the run failed
        self._calls: dict[tuple[str, str], list] = {}
        self._sandbox: dict[tuple[str, str], list] = {}
        self._inspector_timer = None
        self._details_timer = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="run-body"):
            with Vertical(id="tree-pane"):
                yield Select([], prompt="problem", id="problem-select", allow_blank=True)
                yield SearchTreeView(id="tree")
            yield NodeInspector(id="inspector")
        yield RunStatus(id="run-status")
        yield from self.compose_bottom()
        yield Footer()

    def compose_bottom(self) -> ComposeResult:
        return iter(())

    @property
    def tree_view(self) -> SearchTreeView:
        return self.query_one(SearchTreeView)

    @property
    def inspector(self) -> NodeInspector:
        return self.query_one(NodeInspector)

    @property
    def tree(self) -> ProblemTree | None:
        return self.state.problems.get(self.problem_id) if self.problem_id else None

    # ------------------------------------------------------------------ folding
    def apply_events(self, events: Iterable) -> int:
        """Fold events and update only what they touched. Returns how many were applied."""
        ids: set[str] = set()
        count = 0
        new_problem = False
        for e in events:
            count += 1
            pid = e.problem_id
            if pid is not None and pid not in self.state.problems:
                new_problem = True
            changed = self.state.apply(e)
            if pid is not None and pid == self.problem_id:
                ids |= changed
            if pid is not None and (self.problem_id is None or (self.follow and pid != self.problem_id and e.kind in (ev.PROBLEM_STARTED, ev.ROOT))):
                self.problem_id = pid
                ids = set()
                self.tree_view.show(None)
        if new_problem:
            self._update_problem_select()
        tree = self.tree
        if tree is not None:
            if self.tree_view.problem is None or self.tree_view.problem.problem_id != tree.problem_id:
                self.tree_view.show(tree)
            elif ids:
                self.tree_view.sync(tree, ids)
            if self.inspector.node_id in ids:
                self.refresh_inspector_soon()
        self.update_status()
        return count

    def refresh_inspector_soon(self) -> None:
        """Re-show the inspected node at most every ``INSPECTOR_REFRESH`` seconds.

        The root (and the nodes on the selection path) change with every rollout; while a
        search streams, re-rendering the panel per poll would compete with key presses.
        """
        if self._inspector_timer is None:
            self._inspector_timer = self.set_timer(self.INSPECTOR_REFRESH, self._refresh_inspector)

    def _refresh_inspector(self) -> None:
        self._inspector_timer = None
        if self.inspector.node_id is not None:
            self.show_inspector(self.inspector.node_id, reload_calls=False)

    def rebuild(self) -> None:
        """Re-sync the whole widget after the state was replaced (seeking backwards)."""
        self._update_problem_select()
        tree = self.tree
        if tree is None:
            self.tree_view.show(None)
        else:
            self.tree_view.sync(tree, None)
        if self.inspector.node_id is not None and tree is not None:
            self.show_inspector(self.inspector.node_id, reload_calls=False)
        self.update_status()

    def update_status(self, extra: str = "") -> None:
        self.query_one(RunStatus).show(self.state, self.tree, status=self.run_status, extra=extra, error=self.run_error)

    def _update_problem_select(self) -> None:
        select = self.query_one("#problem-select", Select)
        options = [(pid, pid) for pid in self.state.problems]
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self.problem_id in self.state.problems:
                select.value = self.problem_id

    # ------------------------------------------------------------------ interaction
    @on(Select.Changed, "#problem-select")
    def _problem_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.problem_id:
            self.switch_problem(event.value)

    def switch_problem(self, pid: str) -> None:
        self.problem_id = pid
        self.follow = False
        self.tree_view.show(self.tree)
        self.inspector.clear()
        self.update_status()

    def action_problem(self, delta: int) -> None:
        pids = list(self.state.problems)
        if not pids:
            return
        i = pids.index(self.problem_id) if self.problem_id in pids else 0
        self.switch_problem(pids[(i + delta) % len(pids)])
        with self.prevent(Select.Changed):
            self.query_one("#problem-select", Select).value = self.problem_id

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify(f"follow the active problem: {'on' if self.follow else 'off'}")

    @on(Tree.NodeHighlighted, "#tree")
    def _node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data is not None:
            self.show_inspector(event.node.data)

    def show_inspector(self, node_id: str, reload_calls: bool = True) -> None:
        tree = self.tree
        if tree is None:
            return
        self.inspector.show_node(tree, node_id, calls=self._calls.get((tree.problem_id, node_id)),
                                 sandbox=self._sandbox.get((tree.problem_id, node_id)), best_id=self._best_id(tree))
        if reload_calls:
            # debounced: holding a cursor key must not queue a store read (and a second
            # render of the panel) per node passed over
            if self._details_timer is not None:
                self._details_timer.stop()
            key = (tree.problem_id, node_id)
            self._details_timer = self.set_timer(self.DETAILS_DELAY, lambda: self._load_node_details(*key))

    def _best_id(self, tree: ProblemTree) -> str | None:
        view = self.tree_view
        if view.problem is tree:
            return view.best_id
        best = tree.best_node()
        return best.id if best is not None else None

    @work(exclusive=True, group="node-details", exit_on_error=False)
    async def _load_node_details(self, problem_id: str, node_id: str) -> None:
        """LLM calls and sandbox verdicts behind a node, fetched off the key-press path."""
        store = self.app.store
        if store is None:
            return
        try:
            calls = await store.llm_calls(self.run_id, problem_id=problem_id, node_id=node_id)
            sandbox = await store.sandbox_runs(self.run_id, problem_id=problem_id, node_id=node_id)
        except Exception as e:
            self.app.report(e, "loading node details")
            return
        self._calls[(problem_id, node_id)] = calls
        self._sandbox[(problem_id, node_id)] = sandbox
        tree = self.tree
        if tree is not None and self.inspector.node_id == node_id and tree.problem_id == problem_id:
            self.inspector.show_node(tree, node_id, calls=calls, sandbox=sandbox, best_id=self._best_id(tree))
