"""PR and AC as in the paper's tables, per difficulty and overall, plus cost figures.

PR: mean private-test pass rate of the chosen solution; AC: fraction of problems whose
chosen solution passes every private test. Both are fractions in [0, 1] here; tables print
them as percentages. A problem without private tests apart from its public ones
(``scored`` False in its result) is left out of n, PR and AC and counted in ``unscored``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.problems.model import Problem

OVERALL = "overall"


def _group(results: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in results if r.get("scored", True)]
    n = len(scored)
    return {
        "n": n,
        "pr": sum(float(r.get("private_pass_rate") or 0.0) for r in scored) / n if n else 0.0,
        "ac": sum(1 for r in scored if r.get("passed_private")) / n if n else 0.0,
        "unscored": len(results) - n,
        "unscored_ids": [str(r["problem_id"]) for r in results if not r.get("scored", True) and "problem_id" in r],
        "solved_public": sum(1 for r in results if float(r.get("public_pass_rate") or 0.0) >= 1.0),
        "calls": sum(int(r.get("calls") or 0) for r in results),
        "tokens": sum(int(r.get("tokens") or 0) for r in results),
        "cost": sum(float(r.get("cost") or 0.0) for r in results),
        "wall_s": sum(float(r.get("wall_s") or 0.0) for r in results),
    }


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """``{"overall": {...}, "by_difficulty": {difficulty: {...}}}``; each group has
    n, pr, ac, unscored, unscored_ids, solved_public, calls, tokens, cost, wall_s. Failed
    problems count as 0."""
    rs = [r for r in results if r is not None]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rs:
        by.setdefault(str(r.get("difficulty") or "unknown"), []).append(r)
    return {OVERALL: _group(rs), "by_difficulty": {d: _group(v) for d, v in sorted(by.items())}}


def results_counting_unfinished(probs: list[dict]) -> tuple[list[dict], int]:
    """Every problem's result, an unfinished one (pending, running, interrupted) as not solved,
    so a run that stopped early is not scored on its easy half; and how many were unfinished."""
    out: list[dict] = []
    unfinished = 0
    for p in probs:
        if p["result"]:
            out.append(p["result"])
            continue
        unfinished += 1
        scored = Problem.from_dict(p["problem"]).scorable
        out.append(
            {
                "problem_id": p["problem_id"],
                "difficulty": p["difficulty"],
                "status": "unfinished",
                "public_pass_rate": 0.0,
                "private_pass_rate": 0.0 if scored else None,
                "scored": scored,
                **({"passed_private": False} if scored else {}),
            }
        )
    return out, unfinished
