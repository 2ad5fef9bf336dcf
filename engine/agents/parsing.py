"""Turning free-form replies into code and thought lists.

LLMs wrap code in fences, prepend chatter, or forget the fence altogether; thoughts come as
numbered lists, bullets or JSON. Parsing never raises: it returns what it could recover and a
``parse_error`` string the search records, so one malformed reply costs one node, not a run.
"""

from __future__ import annotations

import ast
import json
import re

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-.]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)
_ITEM = re.compile(r"^\s*(?:(?:\d+|[A-Za-z])[.):]|[-*\u2022]|(?:step|thought)\s*\d+\s*[:.)-])\s+(.*\S)", re.I)
_CODE_START = re.compile(
    r"^(?:from\s+\S+\s+import|import\s+\w|def\s+\w|class\s+\w|async\s+def|@\w|if\s+__name__|[A-Za-z_]\w*\s*=)"
)


def _compiles(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
    consts = [n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)]
    return names == ["__name__"] and consts == ["__main__"]


def _calls(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name for n in ast.walk(node))


def strip_test_scaffolding(code: str, entry_point: str | None) -> str:
    """Drop the example runs a model appends to a function solution.

    Small models copy the prompt's ``assert candidate(...)`` lines or add ``print(f(...))``
    and ``if __name__ == "__main__":`` demos after the function. Tests call the function
    themselves, so such top-level code can only hurt: ``candidate`` is undefined outside
    the grader, a demo on a made-up input may raise, a print may flood the output. Only
    for function-style problems (``entry_point``): a stdin program's top level *is* the
    program. Code that does not parse is returned unchanged.
    """
    if not entry_point:
        return code
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        is_demo = (
            isinstance(node, ast.Assert)
            or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
            or _is_main_guard(node)
            or (
                isinstance(node, (ast.Assign, ast.AnnAssign))
                and node.value is not None
                and _calls(node.value, entry_point)
            )
        )
        if is_demo:
            drop.append((node.lineno, node.end_lineno or node.lineno))
    if not drop:
        return code
    lines = code.splitlines()
    dropped = {i for a, b in drop for i in range(a, b + 1)}
    kept = [line for i, line in enumerate(lines, 1) if i not in dropped]
    out = "\n".join(kept).rstrip() + "\n"
    return out if _compiles(out) else code


def extract_code(reply: str, entry_point: str | None = None) -> tuple[str, str | None]:
    """The program in ``reply`` (test scaffolding stripped, see :func:`strip_test_scaffolding`)
    and an error message when none usable was found.

    Preference: the fenced python block that defines ``entry_point``, else the longest
    fenced block that compiles, else the reply itself from its first code-looking line.
    """
    code, err = _extract_code(reply, entry_point)
    return (strip_test_scaffolding(code, entry_point) if err is None else code), err


def _extract_code(reply: str, entry_point: str | None) -> tuple[str, str | None]:
    text = (reply or "").strip()
    if not text:
        return "", "empty reply"
    blocks = [(lang.lower(), body.strip("\n")) for lang, body in _FENCE.findall(text)]
    blocks = [(lang, body) for lang, body in blocks if body.strip()]
    if blocks:
        py = [b for lang, b in blocks if lang in ("python", "py", "python3", "")] or [b for _, b in blocks]
        if entry_point:
            defining = [b for b in py if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", b)]
            if defining:
                py = defining
        compiling = [b for b in py if _compiles(b)]
        if compiling:
            return max(compiling, key=len), None
        best = max(py, key=len)
        return best, "code block does not compile"
    # bare code: drop leading prose up to the first line that looks like Python
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _CODE_START.match(line):
            candidate = "\n".join(lines[i:]).strip()
            # trailing prose: shrink from the end until it compiles
            cand_lines = candidate.splitlines()
            for j in range(len(cand_lines), 0, -1):
                chunk = "\n".join(cand_lines[:j])
                if _compiles(chunk):
                    return chunk, None
            return candidate, "code does not compile"
    return "", "no code found in reply"


def _clean_item(s: str) -> str:
    s = s.strip().strip('"').strip()
    s = re.sub(r"^\*\*(.*?)\*\*:?\s*", lambda m: m.group(1) + ": " if m.group(1) else "", s)
    return s.strip()


def parse_thoughts(reply: str, k: int | None = None) -> tuple[list[str], str | None]:
    """A list of thoughts from a JSON array, a numbered list or bullets.

    Continuation lines are joined to the item above. When nothing list-like is found, the
    reply's prose (fenced code removed) counts as one thought, recorded with a parse error so
    it is visible; a reply that is only code gives no thought.
    """
    text = (reply or "").strip()
    if not text:
        return [], "empty reply"
    # JSON array anywhere in the reply (possibly fenced)
    m = re.search(r"\[\s*(?:\".*?\"|\{.*?\})\s*(?:,\s*(?:\".*?\"|\{.*?\})\s*)*\]", text, re.S)
    if m:
        try:
            data = json.loads(m.group(0))
            items: list[str] = []
            for d in data:
                if isinstance(d, str):
                    items.append(d)
                elif isinstance(d, dict):
                    val = (
                        d.get("thought")
                        or d.get("text")
                        or d.get("step")
                        or next((v for v in d.values() if isinstance(v, str)), "")
                    )
                    items.append(val)
            items = [_clean_item(i) for i in items if i and i.strip()]
            if items:
                return (items[:k] if k else items), None
        except (json.JSONDecodeError, TypeError):
            pass
    items = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            continue
        mi = _ITEM.match(line)
        if mi:
            if current is not None:
                items.append(" ".join(current))
            current = [mi.group(1).strip()]
        elif current is not None and line.strip() and line.startswith((" ", "\t")):
            current.append(line.strip())
        elif current is not None and not line.strip():
            items.append(" ".join(current))
            current = None
    if current is not None:
        items.append(" ".join(current))
    items = [_clean_item(i) for i in items if i.strip()]
    if items:
        return (items[:k] if k else items), None
    # small models often answer with code instead of thoughts: code is not a thought
    prose = re.sub(r"```.*?(?:```|$)", "", text, flags=re.S).strip()
    if not prose:
        return [], "reply was code, not a list of thoughts"
    return [prose], "no list found; whole reply used as one thought"


def parse_summary(reply: str) -> str:
    """Reflection and refinement replies are prose: strip fences and a leading label."""
    text = (reply or "").strip()
    text = re.sub(r"^```\w*\n|```$", "", text).strip()
    text = re.sub(r"^(?:summary|refined thought|thought|new thought)\s*:\s*", "", text, flags=re.I)
    return text.strip()
