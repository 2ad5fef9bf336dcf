"""One line of run facts under the tree: status (with the reason when the run failed), problem, rollouts,
nodes, prunes, refines, errors."""

from __future__ import annotations

from rich.text import Text
from bdc_tui.widgets.text_line import TextLine

from bdc_tui.format import PRUNED, REFINED, SOLVED, money
from engine.search.tree import ProblemTree, TreeState


class RunStatus(TextLine):
    def show(self, state: TreeState, tree: ProblemTree | None, *, status: str | None, cost: float | None = None,
             extra: str = "", error: str | None = None) -> None:
        t = Text()
        status = status or state.status or "?"
        t.append(f" {status} ", style="reverse bold red" if status == "failed" else "reverse")
        if status == "failed" and error:
            t.append(f" {error}", style="bold red")
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
