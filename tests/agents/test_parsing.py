from engine.agents.parsing import extract_code, parse_summary, parse_thoughts


def test_code_from_fenced_block_prefers_entry_point():
    reply = (
        "Here is a helper:\n```python\ndef helper():\n    return 1\n```\n"
        "And the solution:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    )
    code, err = extract_code(reply, "add")
    assert err is None
    assert code.startswith("def add(a, b):")


def test_code_from_unlabelled_and_unclosed_fence():
    code, err = extract_code("```\nx = int(input())\nprint(x * 2)\n")
    assert err is None
    assert code == "x = int(input())\nprint(x * 2)"


def test_bare_code_with_prose_around():
    reply = "Sure! The idea is simple.\nimport sys\ndef f(n):\n    return n + 1\nprint(f(int(sys.stdin.read())))\nThis works because..."
    code, err = extract_code(reply)
    assert err is None
    assert code.startswith("import sys") and "This works" not in code


def test_unusable_reply_is_recorded_not_raised():
    assert extract_code("") == ("", "empty reply")
    code, err = extract_code("I cannot help with that.")
    assert code == "" and err == "no code found in reply"
    code, err = extract_code("```python\ndef f(:\n```")
    assert err == "code block does not compile" and "def f(" in code


def test_thoughts_from_json_list():
    items, err = parse_thoughts('Sure:\n```json\n["Use a set.", "Sort first.", "Binary search."]\n```', 2)
    assert err is None and items == ["Use a set.", "Sort first."]


def test_thoughts_from_json_objects():
    items, err = parse_thoughts('[{"thought": "A"}, {"thought": "B"}]')
    assert items == ["A", "B"] and err is None


def test_thoughts_from_numbered_list_with_continuations():
    reply = "Ideas:\n1. Use dynamic programming\n   over prefixes.\n2) Greedy by **deadline**\n- Bullet idea\n"
    items, err = parse_thoughts(reply)
    assert err is None
    assert items == ["Use dynamic programming over prefixes.", "Greedy by **deadline**", "Bullet idea"]


def test_thoughts_fallback_whole_reply():
    items, err = parse_thoughts("Just count the vowels.")
    assert items == ["Just count the vowels."] and err is not None
    assert parse_thoughts("  ") == ([], "empty reply")


def test_summary_strips_label():
    assert parse_summary("Summary: off by one in the loop") == "off by one in the loop"


def test_a_code_only_reply_is_not_a_thought() -> None:
    from engine.agents.parsing import parse_thoughts

    thoughts, err = parse_thoughts("```python\ndef f(x):\n    return x\n```")
    assert thoughts == [] and "code" in err
    thoughts, err = parse_thoughts("Use a stack.\n```python\nstack = []\n```")
    assert thoughts == ["Use a stack."] and err


# a reply Qwen2.5-Coder-0.5B gave for HumanEval/1 in a real search: a correct function followed
# by the prompt's example asserts, which fail outside the grader (NameError: candidate)
QWEN_REPLY = '''```python
from typing import List


def separate_paren_groups(paren_string: str) -> List[str]:
    """Split balanced groups."""
    groups, depth, cur = [], 0, ""
    for ch in paren_string.replace(" ", ""):
        cur += ch
        depth += 1 if ch == "(" else -1
        if depth == 0:
            groups.append(cur)
            cur = ""
    return groups

# Test cases
assert candidate('() (())') == ['()', '(())']
print(separate_paren_groups('()'))
result = separate_paren_groups('(())')
if __name__ == "__main__":
    import doctest
    doctest.testmod()
```'''


def test_function_solutions_lose_their_example_runs():
    code, err = extract_code(QWEN_REPLY, "separate_paren_groups")
    assert err is None
    assert "candidate" not in code and "print(" not in code and "__main__" not in code and "result =" not in code
    ns: dict = {}
    exec(compile(code, "solution.py", "exec"), ns)  # runs cleanly now (it raised NameError before)
    assert ns["separate_paren_groups"]("(()()) ((())) ()") == ["(()())", "((()))", "()"]
    # the function itself, its imports and its docstring are untouched
    assert code.startswith("from typing import List\n\n\ndef separate_paren_groups(")
    assert '"""Split balanced groups."""' in code


def test_stdin_programs_keep_their_top_level():
    reply = "```python\nn = int(input())\nassert n >= 0\nprint(n * 2)\n```"
    code, err = extract_code(reply)  # no entry point: a stdin program
    assert err is None and code == "n = int(input())\nassert n >= 0\nprint(n * 2)"
