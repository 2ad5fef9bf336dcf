import pytest

from engine.agents import default_agent_specs, load_agents, load_budget
from engine.agents.config import agent_presets, default_config, parse_agent_arg, read_config, write_config
from engine.errors import ConfigError


def test_defaults_are_the_two_local_models(tmp_path):
    specs = load_agents(tmp_path / "none.toml", env={})
    assert [s.model for s in specs] == ["local/qwen2.5-coder-0.5b", "local/smollm2-135m"]
    assert specs == default_agent_specs()
    assert all(s.temperature == 0.0 for s in specs)


def test_paper_pair_offered_with_keys():
    assert "paper" not in agent_presets({})
    both = agent_presets({"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y"})["paper"]
    assert [s.model for s in both] == ["openai/gpt-4o-mini", "anthropic/claude-3-5-sonnet-20240620"]
    one = agent_presets({"OPENAI_API_KEY": "x"})["paper"]
    assert [s.model for s in one] == ["openai/gpt-4o-mini", "local/qwen2.5-coder-0.5b"]


def test_config_roundtrip_and_precedence(tmp_path):
    path = tmp_path / "config.toml"
    cfg = {
        "preset": "",
        "budget": {"max_calls": 10, "max_cost_usd": 0.5},
        "agents": [
            {
                "name": "a",
                "model": "openai/gpt-4o-mini",
                "temperature": 0.2,
                "extra": {"api_base": 'http://h:1/v1 "q"'},
            },
            {"name": "b", "model": "local/smollm2-135m", "top_p": 0.9},
        ],
    }
    write_config(cfg, path)
    assert read_config(path)["agents"][0]["extra"]["api_base"] == 'http://h:1/v1 "q"'
    specs = load_agents(path, env={})
    assert [s.name for s in specs] == ["a", "b"]
    assert specs[0].temperature == 0.2 and specs[0].extra == {"api_base": 'http://h:1/v1 "q"'}
    assert specs[1].extra == {"top_p": 0.9}
    budget = load_budget(path, max_calls=3)
    assert (budget.max_calls, budget.max_tokens, budget.max_cost_usd) == (3, None, 0.5)
    # the command line wins over the file
    cli = load_agents(path, agents=["x=openai/gpt-4o@0.7", "anthropic/claude-3-5-sonnet-20240620"])
    assert [(s.name, s.model, s.temperature) for s in cli] == [
        ("x", "openai/gpt-4o", 0.7),
        ("claude-3-5-sonnet-20240620", "anthropic/claude-3-5-sonnet-20240620", 0.0),
    ]
    assert load_agents(path, preset="local", env={}) == default_agent_specs()


def test_default_config_file_is_valid(tmp_path):
    path = write_config(default_config(), tmp_path / "c.toml")
    assert load_agents(path, env={}) == default_agent_specs()


def test_bad_config_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[agents]]\nname = 'x'\n")
    with pytest.raises(ConfigError, match="needs a 'model'"):
        load_agents(bad)
    bad.write_text("not = [toml")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_agents(bad)
    with pytest.raises(ConfigError, match="unique"):
        load_agents(tmp_path / "none.toml", agents=["a=openai/x", "a=openai/y"])
    with pytest.raises(ConfigError, match="preset"):
        load_agents(tmp_path / "none.toml", preset="paper", env={})
    with pytest.raises(ConfigError):
        parse_agent_arg("name=")
