"""Scripted agents for demos, tests, benchmarks and the TUI's offline first run.

Agent specs whose model is ``scripted:<kind>`` build a ``ScriptedPolicy`` instead of an LLM:

* ``scripted:canonical`` writes the dataset's reference solution (``problem.solutions[0]``),
  so a search solves every problem that has one, with no model and no network;
* ``scripted:broken`` writes code that runs but returns the wrong answer;
* ``scripted:erratic`` writes the reference solution from some reasoning states and broken
  code from others, chosen by a hash of (``extra.seed``, problem id, path): a deterministic
  agent whose pass rates rise and fall along a path, so a search with it prunes and refines
  (the demo store and offline tours use it).

Policies only ever receive ``problem.prompt_view()`` (no solutions), so the canonical policy
looks the reference up by problem id in the run's own problem list, which the runner passes in.
``extra.latency_s`` simulates a slow model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from engine.agents.scripted import ScriptedPolicy
from engine.agents.types import CallSink, PolicySpec
from engine.errors import ConfigError
from engine.problems.model import Problem, TestStyle

SCRIPTED_KINDS = ("canonical", "broken", "erratic")


def is_scripted(spec: PolicySpec) -> bool:
    return spec.model.startswith("scripted:")


def broken_code(problem: Problem) -> str:
    """Valid Python that fails the tests: the right interface, the wrong answer."""
    name = problem.entry_point or problem.fn_name
    if problem.style != TestStyle.STDIO and name:
        return f"def {name}(*args, **kwargs):\n    return None\n"
    return "print('wrong answer')\n"


def scripted_policy(spec: PolicySpec, problems: Iterable[Problem], *, sink: CallSink | None = None) -> ScriptedPolicy:
    """The ScriptedPolicy for a ``scripted:<kind>`` spec over the run's ``problems``."""
    kind = spec.model.split(":", 1)[1]
    if kind not in SCRIPTED_KINDS:
        raise ConfigError(
            f"unknown scripted agent {spec.model!r}: choose from scripted:{', scripted:'.join(SCRIPTED_KINDS)}"
        )
    by_id = {p.id: p for p in problems}
    seed = str(spec.extra.get("seed", 0))

    def lucky(view: Problem, path: list[str]) -> bool:
        digest = hashlib.sha256("\x00".join([seed, view.id, *path]).encode()).digest()
        return digest[0] % 2 == 0

    def solution(view: Problem, path: list[str]) -> str:
        full = by_id.get(view.id, view)
        writes_reference = kind == "canonical" or (kind == "erratic" and lucky(view, path))
        if writes_reference and full.solutions:
            return full.solutions[0]
        return broken_code(full)

    def thoughts(view: Problem, path: list[str], k: int) -> list[str]:
        depth = len(path) + 1
        verb = {"canonical": "Solve", "broken": "Guess"}.get(kind, f"Try idea {seed}")
        return [
            f"{verb} step {depth}.{i + 1}: handle case {i + 1} of {view.entry_point or view.fn_name or 'the input'}"
            for i in range(k)
        ]

    return ScriptedPolicy(
        spec.name,
        thoughts_fn=thoughts,
        solution_fn=solution,
        latency_s=float(spec.extra.get("latency_s", 0.0)),
        sink=sink,
    )
