"""Help: what the tree's letters and marks mean, and every screen's keys (? or F1).

The keys are read from the screens' own bindings (the screen help was opened from, as
it is right now, first), so this page cannot drift from what the keys really do.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from bdc_tui.format import BEST, ON_PATH, PRUNED, REFINED, SOLVED

# (mark, meaning): the tree, the runs table and the status bars use these
LEGEND: tuple[tuple[str, str], ...] = (
    ("N", "visits: how many MCTS rollouts went through the node"),
    ("Q", "value: the mean reward backed up through the node (0–1)"),
    (
        "PR",
        "pass rate: share of the tests the program passes (public tests during a search; "
        "private tests in the runs table and evaluations)",
    ),
    ("AC", "accuracy: share of problems whose solution passes every private test"),
    (ON_PATH, "on the path from the root to the selected node (the tree's own +/− mean collapsed/expanded)"),
    (BEST, "the best node of the tree (highest pass rate, then shallowest)"),
    (SOLVED, "solved: the node's program passes every public test"),
    (PRUNED, "pruned: a reflection judged the thought a dead end"),
    (REFINED, "refined: a reflection rewrote the thought (↻2 = twice)"),
    ("–", "not known yet (not simulated, no result)"),
    ("dim", "with a tree filter on (F: solved, pruned, refined): an ancestor kept so the path reads"),
)


def screen_sections() -> list[tuple[str, type[Screen]]]:
    """(title, class) of every screen with keys of its own, in the order a user meets them."""
    from bdc_tui.screens.clusters import ClustersScreen
    from bdc_tui.screens.event_log import EventLogScreen
    from bdc_tui.screens.jobs import JobsScreen
    from bdc_tui.screens.new_eval import NewEvalScreen
    from bdc_tui.screens.new_search import NewSearchScreen
    from bdc_tui.screens.pipeline import PipelineScreen
    from bdc_tui.screens.replay import ReplayScreen
    from bdc_tui.screens.runs import RunsScreen
    from bdc_tui.screens.search import SearchScreen

    return [
        ("Runs (home)", RunsScreen),
        ("Live search tree", SearchScreen),
        ("Replay", ReplayScreen),
        ("Event log", EventLogScreen),
        ("Jobs: training and evaluation", JobsScreen),
        ("Clusters", ClustersScreen),
        ("New search form", NewSearchScreen),
        ("New evaluation form", NewEvalScreen),
        ("Training pipeline", PipelineScreen),
    ]


def class_bindings(cls: type) -> list[Binding]:
    """A class's bindings with its bases' (as Textual merges them), each key once."""
    seen: dict[str, Binding] = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("bdc_tui"):
            continue  # Textual's own (focus, copy) keys are the same on every screen
        for b in klass.__dict__.get("BINDINGS", ()):
            binding = b if isinstance(b, Binding) else Binding(*b)
            for key in binding.key.split(","):
                seen[key.strip()] = binding
    out: list[Binding] = []
    for b in seen.values():
        if b not in out:
            out.append(b)
    return out


def keys_table(app, bindings: list[Binding]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for b in bindings:
        if b.description:
            keys = [k.strip() for k in b.key.split(",")]
            shown = " / ".join(
                app.get_key_display(Binding(k, b.action, b.description, key_display=b.key_display)) for k in keys
            )
            table.add_row(shown, b.description)
    return table


def legend_table() -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold magenta", no_wrap=True)
    table.add_column()
    for mark, meaning in LEGEND:
        table.add_row(mark, meaning)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close"),
    ]

    def __init__(self, current: Screen | None = None) -> None:
        super().__init__()
        self.current = current

    def sections(self) -> list[tuple[str, object]]:
        """(heading, renderable) in the order shown."""
        app = self.app
        out: list[tuple[str, object]] = [("Marks and letters", legend_table())]
        current_cls = type(self.current) if self.current is not None else None
        if self.current is not None:
            # the screen's own keys, then its focused widget's (cursor keys...); the app's
            # keys are listed under "Everywhere"
            generic = {b.action for b in Screen.BINDINGS}  # focus and copy: not this screen's own
            active = [
                ab
                for ab in self.current.active_bindings.values()
                if ab.node is not app and ab.binding.action not in generic
            ]
            active.sort(key=lambda ab: ab.node is not self.current)
            live = [ab.binding for ab in active]
            title = next((t for t, c in screen_sections() if c is current_cls), current_cls.__name__)
            out.append((f"This screen: {title}", keys_table(app, live)))
        for title, cls in screen_sections():
            if cls is not current_cls:
                out.append((title, keys_table(app, class_bindings(cls))))
        everywhere = class_bindings(type(app)) + [Binding("ctrl+p", "command_palette", "Command palette")]
        out.append(("Everywhere", keys_table(app, everywhere)))
        return out

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Static(Text("Help  (esc closes · ctrl+p finds any command or run by name)", style="bold"))
            for heading, body in self.sections():
                yield Static(Text(f"\n{heading}", style="bold underline"))
                yield Static(body)

    def plain_text(self) -> str:
        """Everything the help shows, as text (for tests and copy)."""
        import io

        from rich.console import Console

        console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
        for heading, body in self.sections():
            console.print(heading)
            console.print(body)
        return console.export_text()
