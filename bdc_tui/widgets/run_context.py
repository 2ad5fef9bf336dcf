"""What the root of a run's tree stands for: the run's outcome, its settings, the problem.

The inspector shows these on the root node (and alone when a run has no tree at all, e.g. it
failed before its first problem), so "why did it fail" and "what was asked" are one key away.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from engine.store import RunRow

SEARCH_KEYS = (
    "rollouts",
    "c_puct",
    "c_base",
    "gamma",
    "thoughts_per_policy",
    "max_depth",
    "backup",
    "prune",
    "refine",
    "refine_limit",
    "refine_limit_per_node",
    "stop_on_solve",
    "beam_width",
    "max_policies",
)


def outcome(run: RunRow) -> Text | None:
    """The run's end when it did not simply finish: status and the store's reason."""
    if run.status in ("finished", "running", "pending", "queued") and not run.error:
        return None
    t = Text(f"run {run.status}", style="bold red" if run.status == "failed" else "bold yellow")
    if run.error:
        t.append(f": {run.error}", style="red")
    return t


def settings(run: RunRow) -> Table:
    """Dataset, strategy, agents, subset and the search constants the run was started with."""
    cfg: dict[str, Any] = run.config or {}
    table = Table(title="run settings", title_justify="left", box=None, padding=(0, 1), show_header=False)
    table.add_column("key", style="dim", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("run", f"{run.id}" + (f" ({run.name})" if run.name else ""))
    table.add_row("dataset", str(cfg.get("dataset") or run.dataset or "–"))
    table.add_row("strategy", str(cfg.get("strategy") or run.strategy or "–"))
    agents = cfg.get("agents") or []
    names = [f"{a.get('name')} ({a.get('model')})" if isinstance(a, dict) else str(a) for a in agents]
    table.add_row("agents", ", ".join(names) or ", ".join(run.agents) or "–")
    subset = cfg.get("subset") or {}
    table.add_row("subset", ", ".join(f"{k}={v}" for k, v in subset.items()) or "all problems")
    search = cfg.get("search") or {}
    consts = [f"{k}={search[k]}" for k in SEARCH_KEYS if k in search]
    consts += [f"{k}={v}" for k, v in search.items() if k not in SEARCH_KEYS and k != "terminal_marker"]
    table.add_row("search", ", ".join(consts) or "–")
    return table


def statement(problem: dict | None) -> RenderableType | None:
    """The problem statement as the run stored it."""
    if not problem:
        return None
    text = problem.get("statement") or problem.get("prompt") or problem.get("description")
    if not text:
        return None
    return Panel(
        Text(str(text).rstrip()),
        title=f"problem {problem.get('id', '')}".rstrip(),
        title_align="left",
        border_style="cyan",
    )


def run_summary(run: RunRow) -> list[RenderableType]:
    """The inspector's content for a run with no tree to show."""
    parts: list[RenderableType] = []
    end = outcome(run)
    parts.append(end if end is not None else Text(f"run {run.status}: no problem has started yet", style="bold"))
    parts.append(settings(run))
    return parts
