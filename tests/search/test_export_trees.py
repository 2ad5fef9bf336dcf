"""`bdc export --trees`: whole trees (thoughts, reflections, prunes, refinements, solutions,
verdicts, calls) as parquet / JSONL with a dataset card, loadable as a table."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.export_trees import CARD_MARK, read_trees, schema
from tests.search.helpers import ladder_problem, make_policy

pq = pytest.importorskip("pyarrow.parquet")


async def _bdc(*args: str):
    """The CLI runs its own event loop: call it from a thread, as a separate process would."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def test_trees_export_everything_the_search_stored(search_one, store, tmp_path: Path):
    problem = ladder_problem()
    pol = make_policy("a", ["up", "down"], solve_at=4, sink=store)
    _, events, result = await search_one([pol], SearchConfig(rollouts=8, thoughts_per_policy=2), problem=problem)
    run_id = events[0].run_id
    kinds = {e.kind for e in events}
    assert {ev.PRUNE, ev.REFLECT, ev.REFINE, ev.SOLUTION_FOUND} <= kinds  # the search did all of it

    [row] = await read_trees(store, [run_id[:8]])  # prefixes work as everywhere
    nodes = {n["node_id"]: n for n in row["nodes"]}
    assert row["problem_id"] == problem.id and row["statement"] == problem.statement
    assert row["solved_by"] in nodes and row["status"] == result["status"] == "solved"
    # counts match the event log one for one
    assert len(nodes) == 1 + sum(len(e.payload_dict()["children"]) for e in events if e.kind == ev.EXPAND)
    assert sum(n["pruned"] for n in nodes.values()) == len(
        {e.payload_dict()["node"] for e in events if e.kind == ev.PRUNE}
    )
    assert sum(len(n["reflections"]) for n in nodes.values()) == sum(e.kind == ev.REFLECT for e in events)
    assert sum(len(n["refinements"]) for n in nodes.values()) == sum(e.kind == ev.REFINE for e in events)
    assert sum(len(n["solutions"]) for n in nodes.values()) == sum(
        len(e.payload_dict()["solutions"]) for e in events if e.kind == ev.SIMULATE
    )
    refined = next(n for n in nodes.values() if n["refinements"])
    assert refined["thought"] == refined["refinements"][-1]["new_thought"] != refined["refinements"][0]["old_thought"]
    sols = [s for n in nodes.values() for s in n["solutions"]]
    assert all(s["verdicts"] and set(s["verdicts"]) <= {"passed", "wrong_answer", "runtime_error"} for s in sols)
    assert any(s["pass_rate"] == 1.0 for s in sols) and any(s["pass_rate"] < 1.0 for s in sols)
    calls = await store.llm_calls(run_id)
    assert calls and sum(len(n["calls"]) for n in nodes.values()) + len(row["other_calls"]) == len(calls)
    solved = nodes[row["solved_by"]]
    assert solved["visits"] >= 1 and solved["q"] is not None and solved["parent_id"] in nodes

    # the CLI: parquet + card, then JSONL; both load back as the same table
    db = str(store.path)
    out = tmp_path / "trees" / "trees.parquet"
    out.parent.mkdir()
    res = await _bdc("--db", db, "export", run_id, "--trees", "--out", str(out))
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.schema.equals(schema()) and table.num_rows == 1
    back = table.to_pylist()[0]
    assert back["nodes"] == row["nodes"] and back["solved_by"] == row["solved_by"]
    card = (out.parent / "README.md").read_text()
    assert CARD_MARK in card and "data_files: trees.parquet" in card and "refinements" in card
    jl = tmp_path / "trees" / "trees.jsonl"
    res = await _bdc("--db", db, "export", run_id, "--trees", "--out", str(jl))
    assert res.exit_code == 0, res.output
    assert json.loads(jl.read_text().splitlines()[0])["nodes"] == row["nodes"]
    assert 'load_dataset("json"' in (out.parent / "README.md").read_text()
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        assert len(pd.read_parquet(out)["nodes"][0]) == len(nodes)
        assert len(pd.read_json(jl, lines=True)) == 1
    try:
        import datasets
    except ImportError:
        return
    for loader, path in (("parquet", out), ("json", jl)):
        ds = datasets.load_dataset(loader, data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == 1 and len(ds[0]["nodes"]) == len(nodes) and ds[0]["solved_by"] == row["solved_by"]


def test_trees_export_keeps_a_foreign_readme_and_says_so(tmp_path: Path, bdc_home: Path):
    (tmp_path / "README.md").write_text("my notes\n")
    res = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "bdc.db"), "export", "r", "--trees", "--out", str(tmp_path / "t.parquet")]
    )
    assert res.exit_code != 0 and "was not written by bdc" in str(res.exception)
    assert (tmp_path / "README.md").read_text() == "my notes\n" and not (tmp_path / "t.parquet").exists()
