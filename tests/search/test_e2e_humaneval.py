"""End to end on real HumanEval problems, the real sandbox and scripted known-good/known-bad code."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine.cli import cli
from engine.search import events as ev
from engine.search.config import RunConfig, SearchConfig
from engine.search.runner import create_search_run, execute_run
from engine.search.tree import TreeState

AGENTS = [{"name": "good", "model": "scripted:canonical"}, {"name": "bad", "model": "scripted:broken"}]


async def test_humaneval_good_and_bad_policies(store):
    cfg = RunConfig(
        dataset="humaneval",
        strategy="mcts",
        agents=AGENTS,
        subset={"limit": 3},
        search=SearchConfig(rollouts=2, thoughts_per_policy=2),
    )
    run_id = await create_search_run(store, cfg)
    await execute_run(store, run_id)
    row = await store.run(run_id)
    assert row.status == "finished" and row.totals["problems_done"] == 3
    assert row.totals["pr"] == 1.0 and row.totals["ac"] == 1.0
    probs = await store.run_problems(run_id)
    for p in probs:
        r = p["result"]
        assert r["policy"] == "good" and r["passed_private"] and r["status"] == "solved"
    events = await store.events(run_id)
    state = TreeState().apply_all(events)
    for t in state.problems.values():
        root = t.nodes["0"]
        by = {s["policy"]: s for s in root.solutions}
        assert by["good"]["pass_rate"] == 1.0 and by["bad"]["pass_rate"] == 0.0
        assert root.pass_rate == 0.5 and t.solved_by == "0"
    assert events[-1].kind == ev.RUN_FINISHED and events[-1].payload.metrics["overall"]["ac"] == 1.0


async def test_humaneval_only_bad_code_searches_and_fails(store):
    cfg = RunConfig(
        dataset="humaneval",
        strategy="mcts",
        agents=[{"name": "bad1", "model": "scripted:broken"}, {"name": "bad2", "model": "scripted:broken"}],
        subset={"limit": 2},
        search=SearchConfig(rollouts=2, thoughts_per_policy=2),
    )
    run_id = await create_search_run(store, cfg)
    await execute_run(store, run_id)
    row = await store.run(run_id)
    assert row.totals["ac"] == 0.0 and row.totals["pr"] == 0.0
    state = TreeState().apply_all(await store.events(run_id))
    for t in state.problems.values():
        assert t.rollouts_done == 2 and len(t.nodes) == 1 + 4 + 4 and t.solved_by is None


def test_cli_search_runs_show_compare_export(tmp_path):
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    base = ["--db", db, "search", "--dataset", "humaneval", "--limit", "2", "--rollouts", "1", "--thoughts", "1"]
    r1 = runner.invoke(
        cli,
        [*base, "--keep-exploring", "--strategy", "mcts", "--agents", "good=scripted:canonical,bad=scripted:broken"],
    )
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(cli, [*base, "--strategy", "zero-shot", "--agents", "bad=scripted:broken"])
    assert r2.exit_code == 0, r2.output
    ids = [line.split()[1].rstrip(":") for line in (r1.output + r2.output).splitlines() if line.startswith("run ")][::2]
    assert len(ids) == 2 and "AC 100.00" in r1.output and "AC 0.00" in r2.output
    out = runner.invoke(cli, ["--db", db, "runs"], env={"COLUMNS": "250"}).output
    assert ids[0] in out and "finished" in out
    out = runner.invoke(cli, ["--db", db, "show", ids[0][:-2]], env={"COLUMNS": "250"}).output
    assert "HumanEval/0" in out and "overall" in out
    out = runner.invoke(cli, ["--db", db, "compare", *ids], env={"COLUMNS": "250"}).output
    assert "100.00" in out and "zero-shot" in out
    path = tmp_path / "data.jsonl"
    res = runner.invoke(cli, ["--db", db, "export", *ids, "--out", str(path)])
    assert res.exit_code == 0 and "examples" in res.output
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    # the paper's data: one t2s pair per solved problem (solved at the root: no thought chain)
    assert [r["stage"] for r in rows] == ["t2s", "t2s"] and "from 2 solved of 2 searched" in res.output
    assert set(rows[0]) == {
        "stage",
        "input",
        "output",
        "pass_rate",
        "run_id",
        "node_id",
        "problem_id",
        "problem_digest",
    }
    assert all(r["output"].startswith("```python") and r["pass_rate"] == 1.0 for r in rows)
    res = runner.invoke(cli, ["--db", db, "export", *ids, "--out", str(path), "--per-node"])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert res.exit_code == 0 and {r["stage"] for r in rows} == {"p2t", "t2s"}
    assert any(r["pass_rate"] == 0.0 for r in rows)
    res = runner.invoke(cli, ["--db", db, "resume", ids[0]])
    assert res.exit_code == 0 and "finished" in res.output


def test_scripted_erratic_agent_is_deterministic_and_mixes_right_and_wrong() -> None:
    from engine.agents.config import spec_from_dict
    from engine.problems import load_dataset
    from engine.search.scripted import broken_code, scripted_policy

    problems = load_dataset("humaneval")[:3]
    spec = spec_from_dict({"name": "e", "model": "scripted:erratic", "extra": {"seed": 7}})
    pol, again = scripted_policy(spec, problems), scripted_policy(spec, problems)
    paths = [[f"step {i}"] for i in range(16)]
    codes = [pol.solution_fn(problems[0].prompt_view(), p) for p in paths]
    assert codes == [again.solution_fn(problems[0].prompt_view(), p) for p in paths]
    assert set(codes) == {problems[0].solutions[0], broken_code(problems[0])}
