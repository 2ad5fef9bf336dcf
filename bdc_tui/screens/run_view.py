"""What the live view and the replay share: problem picker, search tree, node inspector.

Both fold ``TreeState`` from the same events; subclasses decide where events come from
(tailing the store, or a ``Timeline`` cursor) and call ``apply_events``/``rebuild``.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Select, Tree

from bdc_tui.export import export_program
from bdc_tui.format import PRUNED, SOLVED
from bdc_tui.screens.find_node import FindNodeScreen
from bdc_tui.widgets.node_inspector import NodeInspector
from bdc_tui.widgets.run_context import outcome, run_summary, settings, statement
from bdc_tui.widgets.run_status import RunStatus
from bdc_tui.widgets.search_tree import SearchTreeView, best_id_of
from bdc_tui.widgets.text_line import TextLine
from engine.search import events as ev
from engine.search import tree as tree_progress
from engine.search.tree import ProblemTree, TreeState
from engine.store import RunRow


class RunViewScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("[", "problem(-1)", "Prev problem", show=False),
        Binding("]", "problem(1)", "Next problem", show=False),
        Binding("f", "toggle_follow", "Follow"),
        Binding("y", "export_code", "Copy", tooltip="save the node's best program to a file and the clipboard"),
        Binding("g", "find_node", "Find", tooltip="go to node #N, or list solved/pruned/refined nodes"),
        Binding(
            "F",
            "cycle_filter",
            "Filter",
            key_display="F",
            tooltip="show only solved, pruned or refined nodes (with their ancestors); again: the next one",
        ),
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
        self.run_row: RunRow | None = None
        self.problem_rows: dict[str, dict] = {}  # run_problems rows: statement and stored status
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
                yield TextLine("", id="tree-filter")
            yield NodeInspector(id="inspector")
        yield RunStatus(id="run-status")
        yield from self.compose_bottom()
        yield Footer(compact=True)

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

    @work(exclusive=True, group="run-info", exit_on_error=False)
    async def load_run_info(self) -> None:
        """The run's row (settings, failure reason) and its problems (statements, status)."""
        store = self.app.store
        if store is None:
            return
        try:
            self.run_row = await store.run(self.run_id)
            self.problem_rows = {r["problem_id"]: r for r in await store.run_problems(self.run_id)}
        except Exception as e:
            self.app.report(e, f"reading run {self.run_id}")
            return
        self.run_status = self.run_status or self.run_row.status
        self.run_error = self.run_error or self.run_row.error
        self._update_problem_select()
        if self.inspector.node_id == "0":
            self.show_inspector("0", reload_calls=False)
        self.ensure_inspected()

    def ensure_inspected(self) -> None:
        """Never leave the inspector blank: with nothing chosen, show the root (a one-node
        tree gives no highlight event), or the run itself when there is no tree."""
        if self.inspector.node_id is not None:
            return
        tree = self.tree
        if tree is not None and tree.root is not None:
            self.show_inspector(tree.root.id)
        elif self.run_row is not None:
            parts = run_summary(self.run_row)
            problem = self.problem_rows.get(self.problem_id) if self.problem_id else None
            if problem is not None:
                parts.insert(1, statement(problem.get("problem")) or "")
            self.inspector.show_parts(parts)

    def root_context(self, tree: ProblemTree) -> list:
        """Shown on the root: how the run ended (when not simply finished), the statement, settings."""
        parts: list = []
        if self.run_row is not None:
            end = outcome(self.run_row)
            if end is not None:
                parts.append(end)
        row = self.problem_rows.get(tree.problem_id)
        st = statement(row.get("problem")) if row else None
        if st is not None:
            parts.append(st)
        if self.run_row is not None:
            parts.append(settings(self.run_row))
        return parts

    # ------------------------------------------------------------------ folding
    def apply_events(self, events: Iterable) -> int:
        """Fold events and update only what they touched. Returns how many were applied."""
        ids: set[str] = set()
        count = 0
        new_problem = False
        for e in events:
            count += 1
            pid = e.problem_id
            if pid is not None and (
                pid not in self.state.problems or e.kind in (ev.SOLUTION_FOUND, ev.PROBLEM_FINISHED)
            ):
                new_problem = True  # the picker lists it, or its mark changes
            changed = self.state.apply(e)
            if pid is not None and pid == self.problem_id:
                ids |= changed
            if pid is not None and (
                self.problem_id is None
                or (self.follow and pid != self.problem_id and e.kind in (ev.PROBLEM_STARTED, ev.ROOT))
            ):
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
        self.ensure_inspected()
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
        self.ensure_inspected()
        self.update_status()

    def update_status(self, extra: str = "") -> None:
        self.query_one(RunStatus).show(self.state, self.tree, status=self.run_status, extra=extra, error=self.run_error)
        self.update_filter_line()

    def update_filter_line(self) -> None:
        """Which tree filter is on and how many nodes match (hidden with no filter)."""
        line = self.query_one("#tree-filter", TextLine)
        summary = self.tree_view.filter_summary()
        line.display = bool(summary)
        line.set(Text(summary, style="bold yellow") if summary else "")

    def _update_problem_select(self) -> None:
        select = self.query_one("#problem-select", Select)
        pids = list(self.state.problems) + [p for p in self.problem_rows if p not in self.state.problems]
        options = [(f"{self.problem_mark(pid)} {pid}", pid) for pid in pids]
        with self.prevent(Select.Changed):
            select.set_options(options)
            if self.problem_id in pids:
                select.value = self.problem_id

    def problem_mark(self, pid: str) -> str:
        """✓ solved on public tests, ✗ finished unsolved, … being searched, · not started.

        Asks ``TreeState.progress``, which a replay answers from the timeline's index: going
        through ``state.problems`` would fold every problem's tree on open and after each seek.
        """
        standing = self.state.progress(pid)
        if standing is None:
            return "·"
        return {tree_progress.SOLVED: SOLVED, tree_progress.FINISHED: PRUNED}.get(standing, "…")

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
        self.ensure_inspected()
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

    def action_export_code(self) -> None:
        tree, nid = self.tree, self.inspector.node_id
        node = tree.nodes.get(nid) if tree is not None and nid is not None else None
        sol = node.best_solution() if node is not None else None
        if sol is None or not sol.get("code"):
            self.notify(
                "this node has no program to copy" if node is not None else "select a node first", severity="warning"
            )
            return
        export_program(self.app, sol["code"], self.run_id, tree.problem_id, f"node{nid}", str(sol.get("policy") or ""))

    def action_find_node(self) -> None:
        tree = self.tree
        if tree is None:
            self.notify("no tree to search yet", severity="warning")
            return

        def go(nid: str | None) -> None:
            if nid is not None and not self.tree_view.focus_node(nid):
                self.notify(f"node #{nid} is not in this tree", severity="warning")

        self.app.push_screen(FindNodeScreen(tree), go)

    def action_cycle_filter(self) -> None:
        """all → solved → pruned → refined → all, on the shown tree and the next ones."""
        kind = self.tree_view.cycle_filter()
        self.update_filter_line()
        if kind == "all":
            self.notify("tree filter off: every node")
        cursor = self.tree_view.cursor_node
        if cursor is not None and cursor.data is not None and cursor.data != self.inspector.node_id:
            self.show_inspector(cursor.data)

    @on(SearchTreeView.FilterChanged)
    def _filter_changed(self) -> None:
        self.update_filter_line()

    @on(Tree.NodeHighlighted, "#tree")
    def _node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data is not None:
            self.show_inspector(event.node.data)

    def show_inspector(self, node_id: str, reload_calls: bool = True) -> None:
        tree = self.tree
        if tree is None:
            return
        self.inspector.show_node(
            tree,
            node_id,
            calls=self._calls.get((tree.problem_id, node_id)),
            sandbox=self._sandbox.get((tree.problem_id, node_id)),
            best_id=self._best_id(tree),
            context=self.root_context(tree) if node_id == "0" else None,
        )
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
        return best_id_of(tree)

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
            self.inspector.show_node(
                tree,
                node_id,
                calls=calls,
                sandbox=sandbox,
                best_id=self._best_id(tree),
                context=self.root_context(tree) if node_id == "0" else None,
            )
