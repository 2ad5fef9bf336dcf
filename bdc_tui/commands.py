"""Command palette provider: every screen and every run reachable by typing (ctrl+p)."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class BdcCommands(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        out: list[tuple[str, object, str]] = [
            ("New search", app.action_new_search, "dataset, subset, strategy, agents, budgets"),
            ("New evaluation", app.action_new_eval, "evaluate solvers: PR and AC per difficulty"),
            ("Runs", app.action_runs, "every run in the store"),
            ("Jobs: training and evaluation", app.action_jobs, "progress, loss curve, results tables"),
            ("Clusters", app.action_clusters, "DisenLoRA clusters of the training examples"),
            (
                "Pipeline: export → cluster → train → evaluate",
                self._pipeline,
                "training examples from finished searches, then background jobs",
            ),
            ("Help: keys and symbols", app.action_help, "what N, Q, PR, AC, ▶ ★ ✓ ✗ ↻ mean; every screen's keys"),
        ]
        if app.launcher is None:
            out = [c for c in out if c[0] not in ("New search", "New evaluation")] + [
                ("New search (unavailable: no engine.jobs launcher)", app.action_new_search, "")
            ]
        for rid in getattr(app, "run_ids", [])[:50]:
            out.append((f"Open run {rid}", partial(app.open_run, rid, "live"), "live search tree"))
            out.append((f"Replay run {rid}", partial(app.open_run, rid, "replay"), "timeline"))
            out.append((f"Event log of {rid}", partial(app.open_run, rid, "log"), "filter by kind"))
        return out

    def _pipeline(self) -> None:
        from bdc_tui.screens.pipeline import PipelineScreen

        self.app.push_screen(PipelineScreen())

    async def discover(self) -> Hits:
        for name, cb, help_text in self._commands()[:7]:
            yield DiscoveryHit(name, cb, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, cb, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=help_text)
