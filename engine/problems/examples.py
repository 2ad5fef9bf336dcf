"""The examples a user sees in a HumanEval prompt, as public assertion tests.

HumanEval's official test (``check``) scores; what guides a search must be what a user is
shown, i.e. the worked examples in the prompt's docstring. Three forms occur:

* doctest: ``>>> f(x)`` (``...`` continuation lines) followed by the result line(s);
* ``f(x) == y`` on one line;
* arrows and prose: ``f(x) ➞ y``, ``f(x) ==> y``, ``f(x) => y``, ``f(x) -> y``,
  ``f(x) should return y.`` (``true``/``false`` read as booleans, a final period dropped).

An example becomes ``assert <call> == <expected>`` (a tolerance for float results) only when
the call is a Python expression that calls the entry point and the expected value is a
Python literal and the call names nothing but the entry point and builtins; anything else (prose such as ``-> 19 - 5 - 6 = 8``, ``Input:/Output:``
blocks) is left out, so a prompt without a parsable example has no public tests.
"""

from __future__ import annotations

import ast
import builtins
import re

from engine.problems.model import TestCase

_ARROWS = ("➞", "==>", "=>", "->", " should return ", "==")
_FLOAT_TOL = 1e-6


def _call_source(expr: str, entry_point: str) -> str | None:
    """``expr`` without comments when it calls the entry point and names nothing else but
    builtins (``is_happy(a)`` in a prompt means the string "a", not a variable)."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        return None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    calls = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry_point for n in ast.walk(tree)
    )
    if not calls or any(n != entry_point and not hasattr(builtins, n) for n in names):
        return None
    return ast.unparse(tree)


def _normalize(expected: str) -> str:
    text = expected.strip()
    if text.endswith(".") and not text[:-1].rstrip().endswith("."):
        text = text[:-1].rstrip()
    return {"true": "True", "false": "False"}.get(text, text)


def _literal(text: str) -> object:
    """The value of a literal, or a sentinel when ``text`` is not one."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


_NOT_LITERAL = object()


def _assertion(call: str, expected: str) -> str:
    value = _literal(expected)
    if isinstance(value, float):
        return f"assert abs(({call}) - ({expected.strip()})) <= {_FLOAT_TOL}"
    return f"assert ({call}) == ({expected.strip()})"


def _docstring_lines(prompt: str) -> list[str]:
    return [line.strip() for line in prompt.splitlines()]


def _doctest_examples(lines: list[str], entry_point: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith(">>>"):
            i += 1
            continue
        call = lines[i][3:].strip()
        i += 1
        while i < len(lines) and lines[i].startswith("..."):
            call += "\n" + lines[i][3:].strip()
            i += 1
        result: list[str] = []
        while (
            i < len(lines) and lines[i] and not lines[i].startswith(">>>") and not lines[i].startswith(('"""', "'''"))
        ):
            result.append(lines[i])
            i += 1
        expected = _normalize(" ".join(result))
        if not result:  # ``>>> f(x) == y`` with no result line
            out += _inline_examples([call], entry_point)
        elif (src := _call_source(call, entry_point)) and _literal(expected) is not _NOT_LITERAL:
            out.append((src, expected))
    return out


def _inline_examples(lines: list[str], entry_point: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    start = re.compile(rf"^{re.escape(entry_point)}\s*\(")
    for line in lines:
        if not start.match(line):
            continue
        for arrow in _ARROWS:
            # split at each occurrence until the left side is a call and the right a literal
            parts = line.split(arrow)
            for k in range(1, len(parts)):
                call, expected = arrow.join(parts[:k]), _normalize(arrow.join(parts[k:]))
                if (src := _call_source(call, entry_point)) and _literal(expected) is not _NOT_LITERAL:
                    out.append((src, expected.strip()))
                    break
            else:
                continue
            break
    return out


def prompt_examples(prompt: str, entry_point: str) -> list[TestCase]:
    """Public tests from the examples shown in ``prompt`` (doctest first, then inline forms)."""
    lines = _docstring_lines(prompt)
    pairs = _doctest_examples(lines, entry_point) or _inline_examples(lines, entry_point)
    seen: set[str] = set()
    tests: list[TestCase] = []
    for call, expected in pairs:
        src = _assertion(call, expected)
        if src not in seen:
            seen.add(src)
            tests.append(TestCase(input=src))
    return tests
