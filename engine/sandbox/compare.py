"""How a program's answer is judged equal to the expected one.

These rules follow the APPS and CodeContests graders, written down exactly so that a verdict
can be reproduced by hand.

stdin/stdout tests (``compare_stdout``)
    1. Both texts are decoded as UTF-8 (invalid bytes become U+FFFD, so they never match
       a valid expected character) and line endings ``\\r\\n`` / ``\\r`` become ``\\n``.
    2. Fast path: equal after stripping trailing whitespace of every line and trailing blank
       lines -> equal (APPS' first check, ``"\\n".join(line.strip() ...)``).
    3. Otherwise both are split into whitespace-separated tokens (any run of spaces, tabs or
       newlines separates; so trailing whitespace, blank lines and line breaks never matter,
       as in CodeContests' token-wise tester and APPS' per-line ``split()`` fallback).
       The token counts must match and every pair of tokens must be equal:
       a. identical strings are equal (comparison is case-sensitive, as both graders are);
       b. two integer tokens (``[+-]?\\d+``) are equal when their integer values are equal
          (exact, arbitrary precision: big integers are never compared as floats);
       c. otherwise, when both parse as finite floats and at least one is not an integer
          token, they are equal when ``|a - b| <= 1e-5 * max(1, |b|)``: absolute 1e-5 for
          small values, relative 1e-5 for large ones (CodeContests' float tolerance; APPS'
          ``np.allclose`` with rtol 1e-5 accepts the same cases in practice).
    Not accepted: answers of problems that accept several outputs (no special checkers),
    order-insensitive matches (APPS' lenient set comparison).

call-based tests (``compare_values``)
    The expected value is ``json.loads(TestCase.output)``; the program's return value is
    normalised as JSON would see it (tuples -> lists, dict keys -> strings) and compared
    recursively: numbers with a float involved use ``math.isclose(rel_tol=1e-9,
    abs_tol=1e-9)``, everything else ``==`` (``True`` and ``1`` are *not* equal).
    As in APPS, when the expected value is a one-element list whose element equals the
    result, the test passes too (APPS stores some outputs wrapped in an extra list).
"""

from __future__ import annotations

import math
import re
from typing import Any

_INT = re.compile(r"[+-]?\d+\Z")
FLOAT_TOL = 1e-5


def _norm_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n").rstrip()


def _token_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    a_int, b_int = _INT.match(a), _INT.match(b)
    if a_int and b_int:
        return int(a) == int(b)
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return False
    if not (math.isfinite(fa) and math.isfinite(fb)):
        return False
    return abs(fa - fb) <= FLOAT_TOL * max(1.0, abs(fb))


def compare_stdout(got: str, expected: str) -> bool:
    """True when ``got`` is an accepted answer for ``expected`` (rules in the module doc)."""
    got, expected = _norm_text(got), _norm_text(expected)
    if _strip_lines(got) == _strip_lines(expected):
        return True
    g, e = got.split(), expected.split()
    if len(g) != len(e):
        return False
    return all(_token_equal(x, y) for x, y in zip(g, e))


def normalise_value(value: Any) -> Any:
    """The value as a JSON round trip would give it (tuples -> lists, keys -> str)."""
    if isinstance(value, (list, tuple)):
        return [normalise_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: normalise_value(v) for k, v in value.items()}
    return value


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) or isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def compare_values(got: Any, expected: Any) -> bool:
    """True when a call-based result ``got`` matches the decoded expected JSON value."""
    got = normalise_value(got)
    if _values_equal(got, expected):
        return True
    return isinstance(expected, list) and len(expected) == 1 and _values_equal(got, expected[0])
