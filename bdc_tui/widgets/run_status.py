"""One line of run facts under the tree: status (with the reason when the run failed), the LLM call in
flight ("smollm2 writing a solution for #12 · 143 tok · 9s", from the store's ``call_progress``),
problem, rollouts, nodes, prunes, refines, errors."""

from __future__ import annotations

from rich.text import Text

from bdc_tui.format import PRUNED, REFINED, SOLVED, money
from bdc_tui.widgets.text_line import TextLine
from engine.search.tree import ProblemTree, TreeState
from engine.store.call_progress import describe


class RunStatus(TextLine):
    in_flight: list[dict] = []  # the run's calls running now (set by the live screen's poll)

    def show_in_flight(self, calls: list[dict]) -> None:
        self.in_flight = list(calls)

    def _in_flight_text(self, tree: ProblemTree | None) -> str:
        """The call to show (the shown problem's oldest first) and how many more are running."""
        if not self.in_flight:
            return ""
        mine = [c for c in self.in_flight if tree is not None and c.get("problem_id") == tree.problem_id]
        first = (mine or self.in_flight)[0]
        more = len(self.in_flight) - 1
        return describe(first) + (f" (+{more} more)" if more else "")

    def show(
        self,
        state: TreeState,
        tree: ProblemTree | None,
        *,
        status: str | None,
        cost: float | None = None,
        extra: str = "",
        error: str | None = None,
    ) -> None:
        t = Text()
        status = status or state.status or "?"
        t.append(f" {status} ", style="reverse bold red" if status == "failed" else "reverse")
        if status == "failed" and error:
            t.append(f" {error}", style="bold red")
        flight = self._in_flight_text(tree) if status == "running" else ""
        if flight:
            t.append(f"  ⋯ {flight}", style="bold cyan")
        if tree is not None:
            t.append(f"  {tree.problem_id}", style="bold")
            t.append(f"  rollouts {tree.rollouts_done}  nodes {len(tree.nodes)}  ")
            t.append(f"{PRUNED} {tree.prunes}", style="red")
            t.append("  ")
            t.append(f"{REFINED} {tree.refinements}", style="yellow")
            t.append("  ")
            if tree.solved_by is not None:
                t.append(f"{SOLVED} solved by #{tree.solved_by}", style="bold green")
            else:
                t.append("unsolved", style="dim")
            if tree.errors:
                t.append(f"  ! {len(tree.errors)} errors (last: {tree.errors[-1][:50]})", style="bold red")
            if tree.budget_exhausted:
                t.append(f"  budget: {tree.budget_exhausted}", style="yellow")
        t.append(f"  problems {len(state.problems)}  seq {state.last_seq}")
        if cost:
            t.append(f"  cost {money(cost)}")
        if extra:
            t.append("  " + extra)
        self.set(t)
