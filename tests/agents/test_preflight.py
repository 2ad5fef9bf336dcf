"""Preflight: agents that cannot work here are named before a run spends anything."""

from __future__ import annotations

import pytest

from engine.agents.preflight import check_agents, problem_with
from engine.agents.types import PolicySpec
from engine.errors import ConfigError


@pytest.fixture(autouse=True)
def empty_model_cache(tmp_path, monkeypatch) -> None:
    """No local model is installed in these tests, whatever this machine has."""
    monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))


def test_local_models_must_be_installed_or_exist(bdc_home, tmp_path) -> None:
    assert "bdc models install smollm2-135m" in problem_with(PolicySpec(name="s", model="local/smollm2-135m"))
    assert "does not exist" in problem_with(PolicySpec(name="s", model="local//nope/model.gguf"))
    folder = tmp_path / "m"
    folder.mkdir()
    assert problem_with(PolicySpec(name="f", model=f"local/{folder}")) is None


def test_hosted_models_need_their_key_unless_pointed_elsewhere() -> None:
    gpt = PolicySpec(name="gpt", model="openai/gpt-4o-mini")
    claude = PolicySpec(name="claude", model="claude-3-5-sonnet-20240620")
    assert "OPENAI_API_KEY" in problem_with(gpt, env={})
    assert problem_with(gpt, env={"OPENAI_API_KEY": "sk-x"}) is None
    assert "ANTHROPIC_API_KEY" in problem_with(claude, env={})
    served = PolicySpec(name="vllm", model="openai/Qwen/Qwen2.5-Coder-7B", extra={"api_base": "http://gpu:8000/v1"})
    assert problem_with(served, env={}) is None
    assert problem_with(PolicySpec(name="o", model="ollama/qwen2.5-coder"), env={}) is None  # no key needed
    assert set(check_agents([gpt, claude, served], env={})) == {"gpt", "claude"}


async def test_a_run_whose_agents_all_cannot_work_fails_with_the_reasons(tmp_path, bdc_home) -> None:
    from engine.search.config import RunConfig, SearchConfig
    from engine.search.runner import create_search_run, execute_run
    from engine.store import Store

    async with await Store.open(tmp_path / "bdc.db") as store:
        cfg = RunConfig(
            dataset="humaneval",
            strategy="mcts",
            subset={"limit": 1},
            search=SearchConfig(rollouts=1),
            agents=[{"name": "gpt", "model": "openai/gpt-4o-mini"}, {"name": "s", "model": "local/smollm2-135m"}],
        )
        run_id = await create_search_run(store, cfg)
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("OPENAI_API_KEY", raising=False)
            with pytest.raises(
                ConfigError,
                match="no agent of this run can work here: gpt: .*OPENAI_API_KEY.*; s: .*bdc models install",
            ):
                await execute_run(store, run_id)
        run = await store.run(run_id)
        assert run.status == "failed" and "OPENAI_API_KEY" in run.error
        kinds = [(e.kind, e.payload_dict().get("stage")) for e in await store.events(run_id)]
        assert kinds.count(("llm_error", "preflight")) == 2


async def test_the_usable_agents_go_on_when_one_cannot_work(tmp_path, bdc_home) -> None:
    from engine.search.config import RunConfig, SearchConfig
    from engine.search.runner import create_search_run, execute_run
    from engine.store import Store

    async with await Store.open(tmp_path / "bdc.db") as store:
        cfg = RunConfig(
            dataset="humaneval",
            strategy="mcts",
            subset={"limit": 1},
            search=SearchConfig(rollouts=1),
            agents=[{"name": "good", "model": "scripted:canonical"}, {"name": "s", "model": "local/smollm2-135m"}],
        )
        run_id = await create_search_run(store, cfg)
        await execute_run(store, run_id)
        run = await store.run(run_id)
        assert run.status == "finished" and run.totals["ac"] == 1.0


def test_unknown_providers_and_models_are_named(tmp_path) -> None:
    from engine.agents.preflight import unknown, unknown_agents

    assert "unknown provider 'nosuch'" in unknown(PolicySpec(name="x", model="nosuch/model-xyz"))
    assert "unknown model 'model-xyz'" in unknown(PolicySpec(name="x", model="model-xyz"))
    assert "unknown local model 'nosuch'" in unknown(PolicySpec(name="x", model="local/nosuch"))
    assert "does not exist" in unknown(PolicySpec(name="x", model=f"local/{tmp_path}/missing.gguf"))
    for fine in (
        "openai/gpt-4o-mini",
        "claude-3-5-sonnet-20240620",
        "ollama/qwen2.5-coder",
        "gemini/gemini-1.5-pro",
        "local/smollm2-135m",
        f"local/{tmp_path}",
        "scripted:canonical",
    ):
        assert unknown(PolicySpec(name="x", model=fine)) is None, fine  # known, even if not usable here
    assert set(
        unknown_agents([PolicySpec(name="a", model="nosuch/m"), PolicySpec(name="b", model="openai/gpt-4o")])
    ) == {"a"}


def test_bdc_search_refuses_an_unknown_agent_before_creating_a_run(tmp_path, bdc_home) -> None:
    import subprocess
    import sys

    db = tmp_path / "bdc.db"
    code = "from engine.cli import main; main()"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--db",
            str(db),
            "search",
            "--dataset",
            "humaneval",
            "--limit",
            "1",
            "--agents",
            "nosuch/model-xyz",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown provider 'nosuch'" in lines[0], out.stderr
    runs = subprocess.run(
        [sys.executable, "-c", code, "--db", str(db), "runs"], capture_output=True, text=True, timeout=120
    )
    assert "nosuch" not in runs.stdout and "run" not in out.stdout  # no run was created


async def test_a_run_whose_calls_all_fail_ends_failed_with_the_reason(tmp_path, bdc_home) -> None:
    """A local agent that points at a folder with no model in it passes the preflight, then every call fails."""
    from engine.search.config import RunConfig, SearchConfig
    from engine.search.runner import AgentsFailed, create_search_run, execute_run
    from engine.store import Store

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    async with await Store.open(tmp_path / "bdc.db") as store:
        cfg = RunConfig(
            dataset="humaneval",
            strategy="mcts",
            subset={"limit": 2},
            search=SearchConfig(rollouts=2),
            agents=[{"name": "broken", "model": f"local/{empty}"}],
        )
        run_id = await create_search_run(store, cfg)
        with pytest.raises(
            AgentsFailed, match=r"all \d+ LLM calls of problem HumanEval/\d+ failed .*cannot load local model"
        ):
            await execute_run(store, run_id)
        run = await store.run(run_id)
        assert run.status == "failed"
        assert run.error.startswith("AgentsFailed: all ") and "cannot load local model" in run.error
        finished = [e.payload_dict() for e in await store.events(run_id) if e.kind == "run_finished"]
        assert finished and finished[-1]["status"] == "failed" and "cannot load local model" in finished[-1]["error"]
