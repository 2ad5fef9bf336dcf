"""A key planted in the config file is used by the run, and found nowhere else: not in the
store (with its WAL), the logs, an export, or what bdc prints. bdc's files are owner-only.

The "provider" is a loopback OpenAI-compatible server that records the key it was sent, so
the test also shows the key really reached the model while staying out of everything else.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.cli.conftest import Result, bdc  # noqa: F401 (the fixture)

SOLUTION = """```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
```"""


def _reply_json(handler: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class FakeOpenAI(BaseHTTPRequestHandler):
    seen_auth: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        FakeOpenAI.seen_auth.append(self.headers.get("Authorization", ""))
        _reply_json(
            self,
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "fake-model",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": '["Compare every pair."]\n' + SOLUTION},
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42},
            },
        )

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    FakeOpenAI.seen_auth = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _config(home: Path, api_base: str, key: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(
        "[budget]\nmax_calls = 200\n\n"
        f'[[agents]]\nname = "fake"\nmodel = "openai/fake-model"\napi_base = "{api_base}"\napi_key = "{key}"\n\n'
        '[[agents]]\nname = "good"\nmodel = "scripted:canonical"\n'
    )
    os.chmod(path, 0o644)  # as an editor or an older bdc leaves it
    return path


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.timeout(300)
def test_a_planted_key_is_used_and_found_nowhere_else(bdc, bdc_home: Path, provider: str, tmp_path: Path):  # noqa: F811
    key = f"sk-canary-{secrets.token_hex(12)}"
    cfg = _config(bdc_home, provider, key)
    printed: list[Result] = []

    r = bdc("config", "--show")
    printed.append(r)
    assert r.code == 0, r.err
    assert "***" in r.out and "api_base" in r.out
    # the config held a key and was readable by others: tightened, said in one line
    assert _mode(cfg) == 0o600
    assert [ln for ln in r.err.splitlines() if ln.strip()] == [
        f"warning: {cfg} holds a key and was readable by others (mode 644): made it owner-only (600)"
    ]

    r = bdc(
        "--log-level",
        "debug",
        "search",
        "--dataset",
        "humaneval",
        "--limit",
        "1",
        "--rollouts",
        "2",
        "--thoughts",
        "1",
        "--quiet",
    )
    printed.append(r)
    assert r.code == 0, r.err
    run_id = r.out.split()[1].rstrip(":")
    assert f"Bearer {key}" in FakeOpenAI.seen_auth, "the key never reached the provider"

    export = tmp_path / "export.jsonl"
    for args in (("runs",), ("show", run_id), ("export", run_id, "--out", str(export)), ("models", "list")):
        printed.append(bdc(*args))
        assert printed[-1].code == 0, (args, printed[-1].err)

    # the run kept a reference, not the key, and it ran from the stored config (resolved again)
    db = bdc_home / "bdc.db"
    stored = _stored_agents(db, run_id)
    assert stored[0]["extra"]["api_key"].startswith("<secret") and stored[0]["extra"]["api_base"] == provider

    logs = bdc_home / "logs"
    assert (logs / "bdc.log").exists() and (logs / f"{run_id}.log").exists()
    assert "executing 1 problems" in (logs / f"{run_id}.log").read_text()
    for f in (db, *[db.with_name(db.name + s) for s in ("-wal", "-shm")]):
        assert not f.exists() or key.encode() not in f.read_bytes(), f
    assert _files_holding(bdc_home, key.encode()) == [cfg]  # only the config itself holds it
    assert export.exists() and key not in export.read_text()
    for res in printed:
        assert key not in res.out and key not in res.err

    # owner-only: the store and SQLite's side files, the logs and their folder, the home
    for f in [
        db,
        *[db.with_name(db.name + s) for s in ("-wal", "-shm") if db.with_name(db.name + s).exists()],
        *logs.iterdir(),
    ]:
        assert _mode(f) == 0o600, f
    assert _mode(logs) == 0o700 and _mode(bdc_home) == 0o700

    # without the key in the config, continuing the run says so in one line
    cfg.write_text(cfg.read_text().replace(f'api_key = "{key}"\n', ""))
    r = bdc("resume", run_id)
    assert r.code == 2
    assert [ln for ln in r.err.splitlines() if ln.startswith("error")] == [
        f"error: agent 'fake'.api_key: its key was kept out of the run store and {cfg} no longer holds it: put it "
        "back, or set the provider's environment variable"
    ]


def _stored_agents(db: Path, run_id: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (config,) = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    return json.loads(config)["agents"]


def test_secrets_are_masked_by_name_and_shape():
    from engine.agents.config import SECRET_REF, mask_secrets, stored_agent
    from engine.agents.types import PolicySpec

    spec = PolicySpec(
        "a",
        "openai/x",
        max_tokens=99,
        extra={
            "api_key": "abc123456789",
            "api_base": "http://h/v1",
            "azure_ad_token": "t0k3n-value",
            "extra_headers": {"Authorization": "Bearer zzzzzzzz", "X-Trace": "1"},
            "top_p": 0.9,
            "note": "sk-lookslikeakey-0000",
        },
    )
    d = mask_secrets(spec.to_dict())
    assert d["max_tokens"] == 99 and d["extra"]["api_base"] == "http://h/v1" and d["extra"]["top_p"] == 0.9
    assert d["extra"]["api_key"] == d["extra"]["azure_ad_token"] == d["extra"]["note"] == "***"
    assert d["extra"]["extra_headers"] == {"Authorization": "***", "X-Trace": "1"}
    assert stored_agent(spec)["extra"]["api_key"] == SECRET_REF
    assert "abc123456789" not in json.dumps(stored_agent(spec))


def test_stored_reference_resolves_from_the_config(bdc_home: Path):
    from engine.agents.config import SECRET_REF, spec_from_dict, write_config

    write_config(
        {"agents": [{"name": "gpt", "model": "openai/gpt-4o-mini", "extra": {"api_key": "sk-live-123456789"}}]}
    )
    assert _mode(bdc_home / "config.toml") == 0o600 and _mode(bdc_home) == 0o700
    spec = spec_from_dict({"name": "gpt", "model": "openai/gpt-4o-mini", "extra": {"api_key": SECRET_REF}})
    assert spec.extra["api_key"] == "sk-live-123456789"


def test_registered_secrets_never_reach_a_log_file(tmp_path: Path):
    from engine import logs

    logs.register_secret("hunter2-canary-password")
    path = tmp_path / "logs" / "x.log"
    with logs.log_file(path):
        logging.getLogger("engine.test").warning("connecting with %s", "hunter2-canary-password")
        try:
            raise ValueError("bad key hunter2-canary-password")
        except ValueError as e:
            logs.log_exception(e)
    text = path.read_text()
    assert "hunter2" not in text and text.count("***") >= 3
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700


def test_a_config_error_never_shows_the_key(bdc, bdc_home: Path):  # noqa: F811
    bdc_home.mkdir(parents=True)
    (bdc_home / "config.toml").write_text('agents = [{model = "openai/x", api_key = "plain-canary-9876"}, 5]\n')
    r = bdc("config")
    assert r.code == 2 and "'agents' must be a list" in r.err
    assert "plain-canary-9876" not in r.err + r.out and "***" in r.err


class EchoingOpenAI(BaseHTTPRequestHandler):
    """A provider that refuses the key and repeats it back in its error, as some do."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        _reply_json(
            self,
            401,
            {
                "error": {
                    "message": f"Incorrect API key provided: {key}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )

    def log_message(self, *args) -> None:
        pass


@pytest.mark.timeout(300)
def test_a_key_echoed_by_the_provider_is_masked_everywhere(bdc, bdc_home: Path, tmp_path: Path):  # noqa: F811
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        key = f"sk-canary-{secrets.token_hex(12)}"
        cfg = _config(bdc_home, f"http://127.0.0.1:{server.server_address[1]}/v1", key)
        r = bdc("search", "--dataset", "humaneval", "--limit", "1", "--rollouts", "1", "--thoughts", "1", "--quiet")
        assert key not in r.out and key not in r.err
        assert _files_holding(bdc_home, key.encode()) == [cfg]
    finally:
        server.shutdown()
        server.server_close()


def test_the_tui_launch_forms_store_a_reference_not_the_key(bdc_home: Path):
    """Agents offered by bdc-tui's forms go into the run config as ``bdc search`` stores them."""
    from bdc_tui.services import agent_choices, build_run_config
    from engine.agents.config import SECRET_REF, spec_from_dict, write_config

    write_config({"agents": [{"name": "gpt", "model": "openai/gpt-4o-mini", "extra": {"api_key": "sk-tui-canary-42"}}]})
    agents = [d for _, d in agent_choices() if d["name"] == "gpt"]
    assert agents and agents[0]["extra"]["api_key"] == SECRET_REF
    cfg = build_run_config({"dataset": "humaneval", "strategy": "mcts", "agents": agents})
    assert "sk-tui-canary-42" not in json.dumps(cfg)
    assert spec_from_dict(cfg["agents"][0]).extra["api_key"] == "sk-tui-canary-42"


def test_reproduce_stores_a_reference_not_the_key(bdc, bdc_home: Path, tmp_path: Path, monkeypatch):  # noqa: F811
    """``bdc reproduce`` hands its searches the agents as a run stores them, like ``bdc search``."""
    import engine.reproduce.pipeline as pipeline
    import engine.training.base as base
    from engine.agents.config import SECRET_REF, write_config

    write_config(
        {"agents": [{"name": "gpt", "model": "openai/gpt-4o-mini", "extra": {"api_key": "sk-repro-canary-7"}}]}
    )
    seen = {}

    class Captured(pipeline.Reproduction):
        def __init__(self, folder, scale, agents, *a, **kw):
            seen["agents"] = agents
            super().__init__(folder, scale, agents, *a, **kw)

    monkeypatch.setattr(pipeline, "Reproduction", Captured)
    monkeypatch.setattr(base, "resolve_base", lambda b: "some-base")
    r = bdc("reproduce", "--scale", "small", "--out", str(tmp_path / "out"), "--report-only")
    assert r.code == 0, r.err
    assert seen["agents"][0]["extra"]["api_key"] == SECRET_REF
    assert "sk-repro-canary-7" not in json.dumps(seen["agents"])
