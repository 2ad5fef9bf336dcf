"""The stored JSON of every kind decodes to its declared type and back unchanged."""

from __future__ import annotations

import json

import pytest

from engine.search import events as ev
from engine.search.events import EventPayloadError, decode_payload

SAMPLES = {
    ev.RUN_STARTED: {"config": {"budget": 3}},
    ev.PROBLEM_STARTED: {"difficulty": None, "statement_preview": "s", "public_tests": 1, "private_tests": 2},
    ev.ROOT: {"node": "0", "statement_preview": "s"},
    ev.SELECT: {"path": ["0", "1"], "rollout": 1},
    ev.EXPAND: {"parent": "0", "rollout": 1, "children": [{"node": "1", "thought": "t", "policy": "A"}]},
    ev.SIMULATE: {
        "node": "1",
        "rollout": 1,
        "pass_rate": 0.5,
        "solutions": [{"policy": "A", "code": "x", "pass_rate": 0.5, "passed": 1, "total": 2, "verdicts": ["P", "F"]}],
    },
    ev.BACKUP: {"rollout": 1, "path": ["0", "1"], "reward": 0.5, "q": {"0": 0.5}, "n": {"0": 1}},
    ev.ROLLOUT_FINISHED: {"rollout": 1},
    ev.BUDGET_EXHAUSTED: {"reason": "budget"},
    "custom_kind": {"anything": [1, 2]},
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_decoding_stored_json_round_trips(kind: str) -> None:
    raw = json.dumps(SAMPLES[kind])
    payload = decode_payload(kind, raw)
    assert payload == ev.payload_for(kind, SAMPLES[kind])
    back = ev.payload_dict(payload)
    assert ev.payload_for(kind, back) == payload
    # text around the JSON (bytes, whitespace) decodes the same
    assert decode_payload(kind, f"  {raw}\n") == payload
    assert decode_payload(kind, raw.encode()) == payload


def test_bad_stored_json_is_refused_by_name() -> None:
    with pytest.raises(json.JSONDecodeError):
        decode_payload(ev.ROLLOUT_FINISHED, '{"rollout": 1} trailing')
    with pytest.raises(EventPayloadError, match="rolout"):
        decode_payload(ev.ROLLOUT_FINISHED, '{"rolout": 1}')
    assert decode_payload(ev.BUDGET_EXHAUSTED, "") == ev.BudgetExhausted()
