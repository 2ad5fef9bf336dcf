"""From a model's reply to a runnable program."""

from __future__ import annotations

import re
from typing import Any

from engine.agents.parsing import strip_test_scaffolding

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The longest fenced code block, else the whole reply (a bare completion)."""
    blocks = _FENCE.findall(text)
    if blocks:
        return max(blocks, key=len).strip("\n") + "\n"
    return text


def _import_lines(code: str) -> list[str]:
    return [ln for ln in code.splitlines() if ln.startswith(("import ", "from "))]


def build_program(problem: Any, reply: str) -> str:
    """The program to run for ``problem``.

    Function-style problems (HumanEval/MBPP, an ``entry_point`` and starter code): if the
    reply defines the function it is used whole (plus any imports the stub had, e.g.
    ``from typing import List``); otherwise the reply is taken as the body that completes
    the stub, and the program is stub + reply. Example runs appended after the function are
    dropped (``strip_test_scaffolding``). Other problems run the code as is.
    """
    code = extract_code(reply)
    entry = getattr(problem, "entry_point", None) or getattr(problem, "fn_name", None)
    starter = getattr(problem, "starter_code", "") or ""
    if entry and starter.strip():
        if re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
            missing = [ln for ln in _import_lines(starter) if ln not in code]
            code = "\n".join(missing + [code]) if missing else code
        else:
            code = starter + code
    return strip_test_scaffolding(code, entry)
