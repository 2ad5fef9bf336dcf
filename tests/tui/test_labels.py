"""Honest labels (issue 18, bug 5): ★ only on a node that passes something, a backup counts
the nodes it updated, one notation for failed tests, and a crash reads as its error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bdc_tui.screens.search import SearchScreen
from bdc_tui.widgets.node_inspector import NodeInspector, _detail_rows, failure_detail, verdict_text
from bdc_tui.widgets.search_tree import SearchTreeView, best_id_of
from bdc_tui.widgets.timeline import describe
from engine.search import events as ev
from engine.search.tree import TreeState
from engine.store import Event
from tests.tui.conftest import wait_for
from tests.tui.test_app import make_app, open_runs

CRASH = {
    "verdict": "runtime_error",
    "error_type": "TypeError",
    "expected": None,
    "got": None,
    "stderr_excerpt": '\nTraceback (most recent call last):\n  File "test.py", line 1, in <module>\n'
    "TypeError: unsupported operand type(s) for -: 'NoneType' and 'float'\n",
}


def event(seq: int, kind: str, payload: dict, node: str | None = None) -> Event:
    return Event("r", seq, 0.0, kind, "P/1", node, payload)


def root_only(pass_rate: float) -> list[Event]:
    sol = {
        "policy": "a",
        "code": "x = 1",
        "pass_rate": pass_rate,
        "passed": int(pass_rate * 2),
        "total": 2,
        "verdicts": ["passed" if pass_rate else "wrong_answer", "wrong_answer"],
    }
    return [
        event(1, ev.PROBLEM_STARTED, {}),
        event(2, ev.ROOT, {"node": "0"}, "0"),
        event(3, ev.SIMULATE, {"node": "0", "rollout": 0, "pass_rate": pass_rate, "solutions": [sol]}, "0"),
        event(4, ev.BACKUP, {"rollout": 0, "path": [], "reward": 0.45, "q": {"0": 0.45}, "n": {"0": 1}}),
    ]


def test_no_best_node_while_nothing_passes() -> None:
    tree = TreeState().apply_all(root_only(0.0)).problems["P/1"]
    assert best_id_of(tree) is None
    tree = TreeState().apply_all(root_only(0.5)).problems["P/1"]
    assert best_id_of(tree) == "0"


def test_a_backup_counts_the_nodes_it_updated() -> None:
    backup = root_only(0.0)[-1]
    assert describe(backup) == "backup reward 0.45 to 1 node (#0)"
    two = event(
        5, ev.BACKUP, {"rollout": 1, "path": ["0"], "reward": 0.6, "q": {"0": 0.6, "6": 0.6}, "n": {"0": 2, "6": 1}}
    )
    assert describe(two) == "backup reward 0.60 to 2 nodes (#0, #6)"


def test_failed_tests_have_one_notation_and_a_crash_reads_as_its_error() -> None:
    assert (
        verdict_text(["passed", "wrong_answer", "runtime_error"]).plain == "✓ t1  ✗ t2 wrong_answer  ✗ t3 runtime_error"
    )
    assert "?" not in verdict_text([{"verdict": "time_limit"}]).plain
    assert failure_detail(CRASH) == "TypeError: unsupported operand type(s) for -: 'NoneType' and 'float'"
    assert failure_detail({"verdict": "wrong_answer", "expected": "3", "got": "4"}) == "expected 3, got 4"
    assert "None" not in failure_detail({"verdict": "runtime_error", "expected": None, "got": None})


@pytest.mark.parametrize("size", [(100, 30), (160, 45)])
async def test_the_inspector_lists_each_failure_once_and_no_best_on_a_zero_root(demo_db: Path, size) -> None:
    app = make_app(demo_db)
    async with app.run_test(size=size) as pilot:
        await open_runs(pilot)
        app.open_run("r-demo-humaneval")
        assert await wait_for(
            pilot, lambda: isinstance(app.screen, SearchScreen) and app.screen.tree_view.node_count > 3
        )
        screen = app.screen
        view = screen.query_one(SearchTreeView)
        # no tree label carries ★ on a node whose best solution passes nothing
        for nid, item in view._items.items():
            node = view.problem.nodes[nid]
            if "★" in str(item.label):
                assert (node.best_solution() or {}).get("pass_rate", 0) > 0
        # a node with a crashing solution: the sandbox's record replaces the feedback, once
        tree = view.problem
        crashed = next(
            n.id for n in tree.nodes.values() for s in n.solutions if "runtime_error" in s.get("verdicts", [])
        )
        view.focus_node(crashed)
        inspector = screen.query_one(NodeInspector)
        assert await wait_for(pilot, lambda: "TypeError" in inspector.plain_text(width=200), timeout=15)
        text = inspector.plain_text(width=200)
        assert "expected None" not in text and "?t1" not in text
        assert text.count("TypeError: unsupported operand") == 1


def test_detail_rows_skip_passed_tests() -> None:
    assert _detail_rows([{"verdict": "passed"}]) is None
    table = _detail_rows([{"verdict": "passed"}, CRASH])
    assert table is not None and table.row_count == 1
