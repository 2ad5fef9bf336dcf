"""First start: no API key and no local model yet. Explain, offer the install, then a search.

The install runs the engine's model installer in a worker thread and reports into a
ProgressBar; afterwards one key opens the new-search form prefilled with one HumanEval
problem, so a new user reaches a live search tree without reading any docs.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, ProgressBar, Static

from bdc_tui import services

EXPLAIN = """[b]Welcome to bdc.[/b]

bdc searches for solutions to code problems with several LLM policies (MC-Tree-Of-Agents)
and distils what it finds into a small local model.

No API key (OPENAI_API_KEY / ANTHROPIC_API_KEY) is set and no local model is installed
yet, so a search has no model to call. You can:

  • [b]i[/b]  install the default local models now (~600 MB, same as `bdc models install`)
  • [b]s[/b]  start a search on one HumanEval problem (offline scripted agents work without models)
  • [b]esc[/b] look around first (demo data: `bdc-tui --demo`)
"""


def first_search_agents() -> list[str] | None:
    """The agents the first search starts with ticked: the local models just installed
    (free, on this machine), else the offline scripted ones; None (the user picks) when
    only API models could run, since those cost money."""
    installed = {name for name, _, inst in services.catalog_models() if inst}
    if installed:
        return [
            spec["name"]
            for _, spec in services.agent_choices()
            if str(spec.get("model", "")).removeprefix("local/") in installed
        ] or None
    return None if services.has_api_keys() else ["scripted-canonical", "scripted-broken"]


class WelcomeScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("i", "install", "Install models"),
        Binding("s", "search", "Start a search"),
        Binding("escape", "dismiss", "Later"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome-box", classes="dialog"):
            yield Static(EXPLAIN, id="welcome-text")
            yield ProgressBar(total=100, id="install-progress", show_eta=True)
            yield Static("", id="install-status")
            with Horizontal(classes="buttons"):
                yield Button("Install models (i)", variant="primary", id="install")
                yield Button("Search HumanEval/0 (s)", variant="success", id="search")
                yield Button("Later (esc)", id="later")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self.installing = False

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "install":
            return None if self.app.installer is None or getattr(self, "installing", False) else True
        return True

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        {"install": self.action_install, "search": self.action_search, "later": self.action_dismiss}[event.button.id]()

    def action_dismiss(self) -> None:
        self.dismiss(None)

    def action_search(self) -> None:
        self.dismiss(None)
        self.app.action_new_search(dataset="humaneval", limit=1, agents=first_search_agents())

    def action_install(self) -> None:
        if self.app.installer is None:
            self.notify("no model installer in this installation; run `bdc models install`", severity="warning")
            return
        self.installing = True
        self.refresh_bindings()
        bar = self.query_one(ProgressBar)
        bar.display = True
        self.install()

    @work(thread=True, exclusive=True, group="install", exit_on_error=False)
    def install(self) -> None:
        names = [name for name, _, inst in services.catalog_models() if not inst] or ["default"]
        status = self.query_one("#install-status", Static)
        bar = self.query_one(ProgressBar)
        try:
            for i, name in enumerate(names):
                self.app.call_from_thread(status.update, f"installing {name} ({i + 1}/{len(names)})…")

                def progress(
                    report: object, total: float | None = None, *_: object, _i: int = i, name: str = name
                ) -> None:
                    # engine.agents.install reports InstallProgress(stage, done, total, message)
                    done = getattr(report, "done", report)
                    total = getattr(report, "total", total)
                    frac = float(done) / float(total) if total else 0.0
                    frac = max(0.0, min(1.0, frac))
                    stage = getattr(report, "stage", "")
                    self.app.call_from_thread(bar.update, progress=100 * (_i + frac) / len(names))
                    if stage:
                        self.app.call_from_thread(
                            status.update, f"installing {name}: {stage} {getattr(report, 'message', '')}"
                        )

                self.app.installer(name, progress=progress)
            self.app.call_from_thread(bar.update, progress=100)
            self.app.call_from_thread(
                status.update, "[green]models installed.[/] Press s to start a search on HumanEval/0."
            )
        except Exception as e:  # network, disk, checksum: tell the user, keep the app
            self.app.call_from_thread(status.update, f"[red]install failed:[/] {e}")
            self.app.call_from_thread(self.app.report, e, "installing models")
        finally:
            self.installing = False
            self.app.call_from_thread(self.refresh_bindings)
