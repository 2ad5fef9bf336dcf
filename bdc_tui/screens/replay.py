"""Replay a stored run: step, play at a chosen speed, jump to the next prune/refine/solution.

The events are read once (payloads decoded on use); ``engine.search.timeline.Timeline`` folds the same
``TreeState`` the live view uses, lazily per problem with per-problem checkpoints, so
opening a big run or stepping back re-folds only the shown problem from its nearest
checkpoint, and only the touched tree nodes are updated when stepping forward.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding

from bdc_tui.data import replay_events
from bdc_tui.screens.run_view import RunViewScreen
from bdc_tui.widgets.timeline import TimelineBar
from engine.search.timeline import Timeline

SPEEDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
FULL_SYNC_AFTER = 300  # forward jumps longer than this re-sync every node instead


class ReplayScreen(RunViewScreen):
    BINDINGS = [
        Binding("right,l", "step(1)", "Step", priority=True),
        Binding("left,h", "step(-1)", "Step back", show=False, priority=True),
        Binding("shift+right,L", "step(50)", "+50", show=False, priority=True),
        Binding("shift+left,H", "step(-50)", "-50", show=False, priority=True),
        Binding("space", "play", "Play", priority=True),
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower", show=False),
        Binding("n", "jump('any', True)", "Next mark"),
        Binding("N", "jump('any', False)", "Prev mark", show=False),
        Binding("1", "jump('prune', True)", "Next prune", show=False),
        Binding("2", "jump('refine', True)", "Next refine", show=False),
        Binding("3", "jump('solution', True)", "Next solution", show=False),
        Binding("home", "seek_to(0)", "Start", show=False, priority=True),
        Binding("end", "seek_to(-1)", "End", show=False, priority=True),
    ]

    def __init__(self, run_id: str, *, start_at: int | None = None) -> None:
        super().__init__(run_id)
        self.timeline: Timeline | None = None
        self.start_at = start_at
        self.playing = False
        self.speed_index = 3
        self._ticker = None

    def compose_bottom(self) -> ComposeResult:
        yield TimelineBar("loading events…", id="timeline")

    def on_mount(self) -> None:
        self.sub_title = f"replay · {self.run_id}"
        self.load_run_info()
        self.load()

    @work(exclusive=True, group="replay-load", exit_on_error=False)
    async def load(self) -> None:
        store = self.app.store
        try:
            events = await replay_events(store, self.run_id)
            self.run_status = (await store.run(self.run_id)).status
        except Exception as e:
            self.app.report(e, f"loading run {self.run_id}")
            return
        self.open_timeline(events)

    def open_timeline(self, events: list) -> None:
        self.timeline = Timeline(events, interval=1000)
        target = len(events) if self.start_at is None else self.start_at
        self.timeline.seek(target)
        self.state = self.timeline.state
        self._pick_problem()
        self.tree_view.show(self.tree)
        self.rebuild()
        self.reveal_current()
        self.update_timeline()

    def reveal_current(self) -> None:
        """Open the tree down to the node the current event is about (else the selection)."""
        tree = self.tree
        if tree is None or self.timeline is None:
            return
        e = self.timeline.current_event()
        target = e.node_id if e is not None and e.problem_id == tree.problem_id else None
        if target not in tree.nodes:
            target = tree.selection[-1] if tree.selection else None
        if target in tree.nodes:
            self.tree_view.focus_node(target)

    # ------------------------------------------------------------------ moving
    def _pick_problem(self) -> bool:
        """Follow the problem of the current event; True when it changed."""
        e = self.timeline.current_event() if self.timeline else None
        pid = e.problem_id if e is not None and e.problem_id else None
        if pid is None and self.problem_id is None and self.state.problems:
            pid = next(iter(self.state.problems))
        if pid is not None and pid != self.problem_id and (self.follow or self.problem_id is None):
            self.problem_id = pid
            return True
        if self.problem_id is not None and self.problem_id not in self.state.problems:
            self.problem_id = next(iter(self.state.problems), None)
            return True
        return False

    def move_to(self, target: int) -> None:
        tl = self.timeline
        if tl is None:
            return
        target = max(0, min(target, len(tl)))
        if target == tl.position:
            return
        ids: set[str] | None = set()
        if target < tl.position or target - tl.position > FULL_SYNC_AFTER:
            tl.seek(target)
            ids = None
        else:
            while tl.position < target:
                e, changed = tl.step()
                if e.problem_id is not None and e.problem_id == self.problem_id:
                    ids |= changed
        self.state = tl.state
        if self._pick_problem():
            self.tree_view.show(self.tree)
            self._update_problem_select()
            self.inspector.clear()
            self.ensure_inspected()
        elif ids is None:
            self.rebuild()
        elif self.tree is not None:
            if self.tree_view.problem is None or self.tree_view.problem.problem_id != self.problem_id:
                self.tree_view.show(self.tree)
                self._update_problem_select()
                self.ensure_inspected()
            else:
                self.tree_view.sync(self.tree, ids)
            if self.inspector.node_id in ids:
                self.show_inspector(self.inspector.node_id, reload_calls=False)
        self.update_status()
        self.update_timeline()

    def update_timeline(self) -> None:
        tl = self.timeline
        if tl is None:
            return
        marks = {g: tl.marks(g) for g in ("prune", "refine", "solution")}
        self.query_one(TimelineBar).show(
            tl.position, len(tl), marks, tl.current_event(), playing=self.playing, speed=SPEEDS[self.speed_index]
        )

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("step", "play", "jump", "seek_to", "speed") and self.timeline is None:
            return None
        return True

    def action_step(self, delta: int) -> None:
        if self.timeline is not None:
            self.move_to(self.timeline.position + delta)

    def action_seek_to(self, position: int) -> None:
        if self.timeline is not None:
            self.move_to(len(self.timeline) if position < 0 else position)

    def action_jump(self, group: str, forward: bool) -> None:
        if self.timeline is None:
            return
        groups = ("prune", "refine", "solution") if group == "any" else (group,)
        target = self.timeline.next_mark(groups, forward)
        if target is None:
            self.notify(
                f"no {'next' if forward else 'previous'} {group if group != 'any' else 'prune/refine/solution'}"
            )
            return
        self.move_to(target)

    def action_speed(self, delta: int) -> None:
        self.speed_index = max(0, min(len(SPEEDS) - 1, self.speed_index + delta))
        if self.playing:
            self._start_ticker()
        self.update_timeline()

    def action_play(self) -> None:
        if self.timeline is None:
            return
        self.playing = not self.playing
        if self.playing:
            if self.timeline.position >= len(self.timeline):
                self.move_to(0)
            self._start_ticker()
        elif self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self.update_timeline()

    def _start_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        speed = SPEEDS[self.speed_index]
        rate = min(speed, 20)  # at most 20 redraws a second; more events per tick beyond
        self._per_tick = max(1, round(speed / rate))
        self._ticker = self.set_interval(1 / rate, self._tick)

    def _tick(self) -> None:
        tl = self.timeline
        if tl is None or tl.position >= len(tl):
            self.playing = False
            if self._ticker is not None:
                self._ticker.stop()
                self._ticker = None
            self.update_timeline()
            return
        self.move_to(tl.position + self._per_tick)
