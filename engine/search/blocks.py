"""Block-level execution feedback for a failing solution (RethinkMCTS's fine-grained signal).

RethinkMCTS (Li et al., 2024) refines an erroneous thought from *verbal, block-level*
feedback: the failed tests with what the code returned, and the code divided into blocks
with the program state after each block on one failed test, so a reviewer can say which
block, and so which reasoning step, went wrong. This module builds that text:

* ``split_blocks``: the code's basic blocks (maximal runs of simple statements; the header
  of each ``if``/``for``/``while``/``with``/``try`` starts a new block), numbered in order;
* ``instrument``: the same program with a trace call at the end of every block that prints
  the block number and the local variables (clipped reprs, bounded number of lines) to
  stderr, so stdout (what stdio tests compare) is untouched;
* ``describe_failures``: the verbal feedback from sandbox results of the public tests and
  the trace of the first failed test.

The instrumented program is untrusted code like any solution: it runs in the sandbox only.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TRACE_FN = "__bdc_block__"
MAX_TRACE_LINES = 40
_PRELUDE = f"""
def {TRACE_FN}(_i, _vars, _n=[0]):
    import sys as _s
    if _n[0] >= {MAX_TRACE_LINES}:
        return
    _n[0] += 1
    _shown = []
    for _k, _v in list(_vars.items()):
        if len(_shown) >= 8:
            break
        if _k.startswith("__") or callable(_v) or type(_v).__name__ == "module" or type(_v).__module__ == "__future__":
            continue
        try:
            _r = repr(_v)
        except Exception:
            _r = "<unprintable>"
        _shown.append(_k + "=" + (_r if len(_r) <= 60 else _r[:57] + "..."))
    _s.stderr.write("[block %d] %s\\n" % (_i, ", ".join(_shown) or "(no variables)"))
"""
_COMPOUND = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.With,
    ast.AsyncWith,
    ast.Try,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)
_EXITS = (ast.Return, ast.Raise, ast.Break, ast.Continue)
_BODIES = ("body", "orelse", "finalbody")


@dataclass(frozen=True)
class Block:
    number: int
    first_line: int
    last_line: int
    source: str


def _runs(stmts: list[ast.stmt]) -> list[list[ast.stmt]]:
    """Consecutive simple statements form one run; each compound statement is its own run."""
    runs: list[list[ast.stmt]] = []
    for s in stmts:
        if isinstance(s, _COMPOUND) or not runs or isinstance(runs[-1][-1], _COMPOUND):
            runs.append([s])
        else:
            runs[-1].append(s)
    return runs


def _walk_blocks(stmts: list[ast.stmt], out: list[tuple[ast.stmt, ast.stmt]]) -> None:
    for run in _runs(stmts):
        head = run[0]
        if isinstance(head, _COMPOUND):
            if not isinstance(head, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.append((head, head))  # the header line(s) as a block of its own
            for name in _BODIES:
                _walk_blocks(getattr(head, name, []) or [], out)
            for handler in getattr(head, "handlers", []) or []:
                _walk_blocks(handler.body, out)
        else:
            out.append((run[0], run[-1]))


def _is_future(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"


def split_blocks(code: str) -> list[Block]:
    """The code's blocks in source order (empty when the code does not parse)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    pairs: list[tuple[ast.stmt, ast.stmt]] = []
    _walk_blocks([s for s in tree.body if not _is_future(s)], pairs)
    lines = code.splitlines()
    blocks = []
    for i, (first, last) in enumerate(pairs, 1):
        lo = first.lineno
        hi = (
            first.body[0].lineno - 1
            if first is last and isinstance(first, _COMPOUND) and getattr(first, "body", None)
            else (last.end_lineno or last.lineno)
        )
        hi = max(hi, lo)
        blocks.append(Block(i, lo, hi, "\n".join(lines[lo - 1 : hi])))
    return blocks


class _Tracer(ast.NodeTransformer):
    """Insert ``TRACE_FN(n, locals())`` at the end of each block (before a final exit)."""

    def __init__(self) -> None:
        self.counter = 0

    def _call(self, n: int) -> ast.stmt:
        return ast.Expr(
            ast.Call(
                ast.Name(TRACE_FN, ast.Load()), [ast.Constant(n), ast.Call(ast.Name("locals", ast.Load()), [], [])], []
            )
        )

    def instrument_body(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for run in _runs(stmts):
            head = run[0]
            if isinstance(head, _COMPOUND):
                if not isinstance(head, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.counter += 1
                    out.append(self._call(self.counter))  # reached the header of block n
                for name in _BODIES:
                    body = getattr(head, name, None)
                    if body:
                        setattr(head, name, self.instrument_body(body))
                for handler in getattr(head, "handlers", []) or []:
                    handler.body = self.instrument_body(handler.body)
                out.append(head)
                continue
            self.counter += 1
            if isinstance(run[-1], _EXITS):
                out += [*run[:-1], self._call(self.counter), run[-1]]
            else:
                out += [*run, self._call(self.counter)]
        return out


def instrument(code: str) -> str | None:
    """The program with block traces on stderr (block numbers as in ``split_blocks``), or
    None when it does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    future = [s for s in tree.body if _is_future(s)]
    rest = [s for s in tree.body if not _is_future(s)]
    body = _Tracer().instrument_body(rest)
    module = ast.Module(body=[*future, *ast.parse(_PRELUDE).body, *body], type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module))


def _clip(text: Any, n: int = 300) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= n else s[:n] + " ...(truncated)"


def _failure_line(i: int, r: Any) -> str:
    verdict = getattr(getattr(r, "verdict", None), "value", getattr(r, "verdict", "failed"))
    parts = [f"Test {i}: {verdict}"]
    for label, attr in (("input", "input"), ("expected", "expected"), ("got", "got")):
        value = getattr(r, attr, None)
        if value is not None:
            parts.append(f"{label}: {_clip(value)}")
    err = getattr(r, "error_type", None)
    if err:
        parts.append(f"error: {err}")
    return "\n  ".join(parts)


def describe_failures(code: str, results: Sequence[Any], trace: Any | None) -> str:
    """Verbal feedback: each failed public test, then the code in numbered blocks with the
    state after each block on the first failed test (``trace``: its sandbox result)."""
    failed = [(i, r) for i, r in enumerate(results, 1) if not getattr(r, "passed", False)]
    if not failed:
        return "All public tests pass."
    out = [f"{len(failed)} of {len(results)} public tests fail:"]
    out += [_failure_line(i, r) for i, r in failed[:5]]
    blocks = split_blocks(code)
    if blocks:
        out.append("The code in blocks:")
        out += [f"# block {b.number} (lines {b.first_line}-{b.last_line})\n{b.source}" for b in blocks]
    stderr = getattr(trace, "stderr_excerpt", "") if trace is not None else ""
    lines = [ln for ln in (stderr or "").splitlines() if ln.startswith("[block ")]
    if lines:
        out.append(f"State after each block on failed test {failed[0][0]} (in execution order):")
        out += lines
        rest = [ln for ln in (stderr or "").splitlines() if ln.strip() and not ln.startswith("[block ")]
        if rest:
            out.append("Error output: " + _clip(" | ".join(rest[-3:]), 400))
    return "\n".join(out)
