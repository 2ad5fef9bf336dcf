"""PR / AC summaries per difficulty and the paper's Table 2 layout (one row per solver,
a (PR, AC) column pair per difficulty and per dataset's Overall)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

# the paper's column order; unknown difficulties follow in sorted order
DIFFICULTY_ORDER = ["introductory", "interview", "competition", "easy", "medium", "hard", "unknown"]
_SHORT = {"introductory": "Intro.", "interview": "Inter.", "competition": "Comp."}


@dataclass
class ProblemResult:
    problem_id: str
    dataset: str
    difficulty: str
    pass_rate: float
    passed: bool
    program: str = ""
    error: str | None = None
    scored: bool = True  # False: no private test apart from public ones, left out of PR/AC

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _order(ds: Iterable[str]) -> list[str]:
    ds = set(ds)
    known = [d for d in DIFFICULTY_ORDER if d in ds]
    return known + sorted(ds - set(known))


def summarize(results: Sequence[ProblemResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{dataset: {difficulty|"overall": {"pr", "ac", "n", "unscored"}}}, PR and AC in percent.

    Overall is over problems (each problem weighs the same), as in the paper. Unscored
    problems (``scored`` False) are left out of n, PR and AC and counted in ``unscored``.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    by_ds: dict[str, list[ProblemResult]] = {}
    for r in results:
        by_ds.setdefault(r.dataset, []).append(r)
    for ds, rs in by_ds.items():
        groups: dict[str, list[ProblemResult]] = {}
        for r in rs:
            groups.setdefault(r.difficulty or "unknown", []).append(r)
        table = {}
        for diff in _order(groups):
            table[diff] = _stats(groups[diff])
        table["overall"] = _stats(rs)
        out[ds] = table
    return out


def _stats(rs: Sequence[ProblemResult]) -> dict[str, float]:
    scored = [r for r in rs if r.scored]
    n = len(scored)
    return {
        "pr": 100.0 * sum(r.pass_rate for r in scored) / n if n else 0.0,
        "ac": 100.0 * sum(1 for r in scored if r.passed) / n if n else 0.0,
        "n": n,
        "unscored": len(rs) - n,
    }


def unscored_note(summaries: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    """One line naming how many problems per dataset were left out of PR/AC, or ""."""
    counts: dict[str, int] = {}
    for summ in summaries.values():
        for ds, diffs in summ.items():
            counts[ds] = max(counts.get(ds, 0), int(diffs.get("overall", {}).get("unscored", 0)))
    parts = [f"{ds}: {k}" for ds, k in counts.items() if k]
    if not parts:
        return ""
    return ("left out of PR/AC (no private tests apart from the public ones): " + ", ".join(parts))


def table2(summaries: dict[str, dict[str, dict[str, dict[str, float]]]], title: str = "PR / AC") -> Any:
    """A Rich table: rows = solvers, column pairs = dataset x difficulty (+ Overall)."""
    from rich.table import Table

    cols: list[tuple[str, str, int]] = []  # (dataset, difficulty, n)
    for summ in summaries.values():
        for ds, diffs in summ.items():
            for diff, st in diffs.items():
                if not any(c[0] == ds and c[1] == diff for c in cols):
                    cols.append((ds, diff, int(st["n"])))
    # per dataset: difficulties in order, overall last
    ordered: list[tuple[str, str, int]] = []
    for ds in dict.fromkeys(c[0] for c in cols):
        diffs = [c for c in cols if c[0] == ds]
        names = _order(d for _, d, _ in diffs if d != "overall") + ["overall"]
        ordered += [next(c for c in diffs if c[1] == d) for d in names if any(c[1] == d for c in diffs)]
    t = Table(title=title)
    t.add_column("Solver", style="bold")
    for ds, diff, n in ordered:
        label = "Overall" if diff == "overall" else f"{_SHORT.get(diff, diff.capitalize())} ({n})"
        t.add_column(f"{ds}\n{label}\nPR", justify="right")
        t.add_column(f"{ds}\n{label}\nAC", justify="right")
    for solver, summ in summaries.items():
        row = [solver]
        for ds, diff, _ in ordered:
            st = summ.get(ds, {}).get(diff)
            row += [f"{st['pr']:.2f}", f"{st['ac']:.2f}"] if st else ["-", "-"]
        t.add_row(*row)
    note = unscored_note(summaries)
    if note:
        t.caption = note
    return t
