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
