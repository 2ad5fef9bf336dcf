"""Several ``api_base``s for one agent (replicas of one model): load-balanced, one cache."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.agents.config import spec_from_dict
from engine.agents.llm import LLMClient
from engine.agents.types import CallContext
from engine.errors import ConfigError

BASES = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]


def _reply(text):
    return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=text))], usage=None)


async def test_calls_go_round_robin_and_every_replica_shares_the_cache():
    spec = spec_from_dict({"name": "v", "model": "hosted_vllm/qwen", "api_base": BASES})
    seen: list[str] = []

    async def completion(**kw):
        seen.append(kw["api_base"])
        return _reply("ok")

    client = LLMClient(completion_fn=completion)
    for i in range(4):
        await client.complete(spec, [{"role": "user", "content": f"q{i}"}], ctx=CallContext("r", "p"))
    assert seen == BASES * 2
    again = await client.complete(spec, [{"role": "user", "content": "q0"}], ctx=CallContext("r", "p"))
    assert again.cached and len(seen) == 4


async def test_a_retry_goes_to_the_next_replica():
    spec = spec_from_dict({"name": "v", "model": "hosted_vllm/qwen", "api_base": BASES})
    seen: list[str] = []

    async def completion(**kw):
        seen.append(kw["api_base"])
        if len(seen) == 1:
            raise ConnectionError("connection refused")
        return _reply("ok")

    client = LLMClient(completion_fn=completion, backoff_s=0.0)
    await client.complete(spec, [{"role": "user", "content": "q"}], ctx=CallContext("r", "p"))
    assert seen == BASES


@pytest.mark.parametrize("bad", [[], ["http://x", 3], [""]])
def test_a_bad_list_is_one_clear_error(bad):
    with pytest.raises(ConfigError, match="'api_base' must be a URL or a non-empty list of URLs"):
        spec_from_dict({"name": "v", "model": "hosted_vllm/qwen", "api_base": bad}, "agent 'v'")


def test_a_one_element_list_is_the_url():
    assert spec_from_dict({"model": "hosted_vllm/qwen", "api_base": BASES[:1]}).extra["api_base"] == BASES[0]
