"""RethinkMCTS: failing thoughts are rewritten from block-level execution feedback."""

from __future__ import annotations

from click.testing import CliRunner

from engine.cli import cli
from engine.search import events as ev
from engine.search.blocks import describe_failures, instrument, split_blocks
from engine.search.config import SearchConfig
from engine.search.tree import TreeState
from tests.search.helpers import make_policy


async def test_failing_thoughts_are_rethought_from_block_feedback(search_one):
    log: list = []
    # "down" steps lower the ladder; a rethought step ("up (refined)") climbs to the solution
    pol = make_policy("A", ["down"], start=2, solve_at=3, log=log)
    px, events, result = await search_one(
        [pol], SearchConfig(rollouts=3, thoughts_per_policy=1), strategy="rethinkmcts"
    )
    assert TreeState().apply_all(events).tree(px.problem.id).signature() == px.tree.signature()
    kinds = [e.kind for e in events]
    assert ev.PRUNE not in kinds  # nothing pruned: rethought in place
    refines = [e.payload_dict() for e in events if e.kind == ev.REFINE]
    assert refines and refines[0]["old_thought"] == "down [A]" and refines[0]["new_thought"] == "up (refined)"
    assert refines[0]["policy"] == "A"  # one model: it rethinks its own step
    feedback = [entry[3] for entry in log if entry[0] == "reflect"][0]
    assert "public tests fail" in feedback and "# block 1" in feedback and "return x * x if x < 1 else -1" in feedback
    assert result["status"] == "solved" and result["passed_private"]


async def test_rethink_quota_is_bounded(search_one):
    pol = make_policy("A", ["down"], start=1, refine_to="down again")
    px, events, _ = await search_one(
        [pol],
        SearchConfig(rollouts=4, thoughts_per_policy=1, refine_limit=3, refine_limit_per_node=2),
        strategy="rethinkmcts",
    )
    assert px.tree.refinements == 3 and all(n.refinements <= 2 for n in px.tree.nodes.values())


def test_blocks_and_their_trace_text():
    code = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total - 1\n"
    blocks = split_blocks(code)
    assert [b.source.strip() for b in blocks] == ["total = 0", "for x in xs:", "total += x", "return total - 1"]
    traced = instrument(code)
    assert traced is not None and traced.count("__bdc_block__(") == 1 + 4  # the helper + one call per block
    assert instrument("def f(:\n") is None and split_blocks("def f(:\n") == []

    class R:
        def __init__(self, passed, **kw):
            self.passed, self.verdict, self.__dict__ = (
                passed,
                "wrong_answer",
                {**kw, "passed": passed, "verdict": "wrong_answer"},
            )

    trace = R(False, stderr_excerpt="[block 1] xs=[2], total=0\n[block 4] xs=[2], total=2, x=2\n")
    text = describe_failures(code, [R(True), R(False, input="f([2])", expected="2", got="1")], trace)
    assert "1 of 2 public tests fail" in text and "expected: 2" in text and "got: 1" in text
    assert "[block 4] xs=[2], total=2, x=2" in text and "# block 4 (lines 5-5)" in text


async def test_block_trace_runs_in_the_sandbox():
    from engine.problems.model import Problem, TestCase, TestStyle
    from engine.sandbox import Sandbox

    p = Problem(
        id="t",
        dataset="t",
        statement="",
        style=TestStyle.ASSERT,
        entry_point="f",
        public_tests=[TestCase("assert f([2, 3]) == 5")],
        private_tests=[],
    )
    code = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total - 1\n"
    async with Sandbox(workers=1) as sb:
        res = await sb.run(instrument(code), p, p.public_tests)
    assert not res.passed
    assert "[block 4] xs=[2, 3], total=5, x=3" in res.results[0].stderr_excerpt


def test_cli_rethinkmcts_with_scripted_agents_runs_once_per_model(tmp_path):
    db = str(tmp_path / "cli.db")
    res = CliRunner().invoke(
        cli,
        [
            "--db",
            db,
            "search",
            "--dataset",
            "humaneval",
            "--limit",
            "2",
            "--rollouts",
            "2",
            "--thoughts",
            "1",
            "--strategy",
            "rethinkmcts",
            "--agents",
            "good=scripted:canonical,bad=scripted:broken",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "one run per agent (good, bad)" in res.output
    finished = [line for line in res.output.splitlines() if line.startswith("run ") and " finished:" in line]
    assert len(finished) == 2 and "AC 100.00" in finished[0] and "AC 0.00" in finished[1]


async def test_rethinkmcts_resumes_from_its_journal_without_asking_again(store):
    """A resumed problem replays its stored events (reflections and rewrites included) and
    ends with the tree of the uninterrupted search."""
    from engine.search.context import ProblemContext
    from engine.search.registry import make_strategy
    from engine.search.strategy import solve_problem
    from tests.search.helpers import FakeSandbox, ladder_problem

    cfg = SearchConfig(rollouts=3, thoughts_per_policy=1)
    problem = ladder_problem()

    async def run(journal, log):
        run_id = await store.create_run(
            dataset="synthetic", strategy="rethinkmcts", agents=["A"], config={}, problems=[problem]
        )
        await store.claim_run(run_id)
        strat = make_strategy("rethinkmcts", cfg)
        px = ProblemContext(
            store=store,
            run_id=run_id,
            problem=problem,
            state=TreeState(),
            policies=[make_policy("A", ["down"], start=2, solve_at=3, log=log)],
            sandbox=FakeSandbox(),
            config=strat.config,
            journal=journal,
        )
        await solve_problem(strat, px)
        await store.flush()
        return px, await store.events(run_id)

    first_log: list = []
    px1, events = await run((), first_log)
    cut = [e for e in events if e.kind != ev.PROBLEM_FINISHED]
    cut = cut[: next(i for i, e in enumerate(cut) if e.kind == ev.REFINE) + 1]  # stop right after a rethink
    replay_log: list = []
    px2, _ = await run(cut, replay_log)
    assert px2.tree.signature() == px1.tree.signature()
    asked_first = [e[0] for e in first_log]
    assert len(replay_log) < len(asked_first)  # the journal answered the stored part
