"""The plain-data channel and the status schema, without a sandbox: what crosses and what not."""

from __future__ import annotations

import json
import math
import struct
from collections import Counter, OrderedDict, namedtuple
from enum import IntEnum

import pytest

from engine.sandbox import _channel as ch

PLAIN = [
    None,
    True,
    False,
    0,
    -7,
    2**64 + 1,
    -(2**200),
    1.5,
    -0.0,
    float("inf"),
    1e308,
    "",
    "héllo\udc80",
    b"\x00\xff",
    3 + 4j,
    complex(float("nan"), 1),
    [],
    [1, [2, (3,)]],
    (1, "a"),
    (),
    {1: "a", (2, 3): [4]},
    {frozenset({1}): {"k": None}},
    {1, 2},
    frozenset({"x"}),
    set(),
    [1, 1.0, True],
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_round_trip_with_their_types(value):
    back = ch.decode(ch.encode(value))

    def same(a, b):
        if type(a) is not type(b):
            return False
        if isinstance(a, float):
            return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
        if isinstance(a, complex):
            return same(a.real, b.real) and same(a.imag, b.imag)
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        return a == b

    assert same(value, back)


def test_nan_round_trips():
    assert math.isnan(ch.decode(ch.encode(float("nan"))))


class Always(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


def test_non_plain_values_are_refused_strictly_and_coerced_leniently():
    for bad in (object(), lambda: 1, iter([1]), bytearray(b"a"), [Always(3)], Counter("ab"), range(3)):
        with pytest.raises(ch.NotPlainData):
            ch.to_wire(bad)
    # the program's side: near-plain values become their plain base (overrides left behind)
    Point = namedtuple("Point", "x y")

    class Colour(IntEnum):
        RED = 1

    class Weird(str):
        def __eq__(self, other):
            return True

        __hash__ = str.__hash__

    got = ch.from_wire(
        ch.to_wire([Point(1, 2), Colour.RED, Counter("aab"), OrderedDict(a=1), Weird("w"), Always(3)], lenient=True)
    )
    assert got == [(1, 2), 1, {"a": 2, "b": 1}, {"a": 1}, "w", 3]
    assert [type(x) for x in got] == [tuple, int, dict, dict, str, int]
    assert got[4] != "anything else"
    with pytest.raises(ch.NotPlainData):
        ch.to_wire(object(), lenient=True)


@pytest.mark.parametrize(
    "wire",
    [
        {"a": 1},
        ["zz", []],
        ["l"],
        ["l", "notalist"],
        ["d", [[["l", []], 1]]],
        ["s", [["l", []]]],
        ["i", "xyz"],
        ["b", "!!!"],
        ["c", "a", 1],
        2**70,
        ["x", "1e9"],
        ["d", [[1]]],
        [],
        [1, 2],
    ],
)
def test_malformed_wire_data_is_a_channel_error(wire):
    with pytest.raises(ch.ChannelError):
        ch.from_wire(wire)


def test_deep_and_huge_messages_are_refused():
    deep = "[" * 200000 + "]" * 200000
    with pytest.raises(ch.ChannelError):
        ch.decode(deep.encode())
    nested: list = []
    for _ in range(ch.MAX_DEPTH + 5):
        nested = [nested]
    with pytest.raises(ch.ChannelError):
        ch.to_wire(nested)
    with pytest.raises(ch.ChannelError):
        ch.decode(b"\xff\xfe")
    with pytest.raises(ch.ChannelError):
        ch.decode(b"9" * 5000)  # past int's digit limit: refused, not a ValueError


def test_framing_refuses_a_length_over_the_cap():
    import os

    r, w = os.pipe()
    try:
        os.write(w, struct.pack(">I", 10**9))
        with pytest.raises(ch.ChannelError):
            ch.recv(r, 1 << 20)
        ch.send(w, ["ready"])
        assert ch.recv(r, 1 << 20) == ["ready"]
        os.close(w)
        assert ch.recv(r, 1 << 20) is None
    finally:
        os.close(r)


@pytest.mark.parametrize(
    "raw, reason",
    [
        (json.dumps({"status": "error", "error_type": "x" * 6_000_000}), "error_type"),
        (json.dumps({"status": "error", "error_type": {"a": 1}}), "error_type"),
        (json.dumps([{"status": "ok"}]), "not an object"),
        (json.dumps({"status": "passed"}), "unknown status"),
        (json.dumps({"status": "ok", "value": {"a": {1, 2}.__class__.__name__}, "exit": "0"}), "exit"),
        (json.dumps({"status": "ok", "repr": ["x"]}), "repr"),
        (json.dumps({"status": "ok", "where": "elsewhere"}), "where"),
        ('{"status": "ok", "value": ' + "[" * 100000 + "]" * 100000 + "}", "JSON"),
        ("not json", "JSON"),
    ],
)
def test_status_schema_turns_junk_into_one_bad_result(raw, reason):
    st = ch.parse_status(raw.encode(), 16 << 20)
    assert st["status"] == "bad_result" and st["error_type"] == "BadResultMessage"
    assert reason in st["message"] and len(st["message"]) < 300


def test_status_schema_keeps_known_fields_only():
    raw = json.dumps({"status": "ok", "value": [1, {"a": None}], "repr": None, "exit": 0, "extra": "x" * 100})
    assert ch.parse_status(raw.encode(), 1 << 20) == {"status": "ok", "value": [1, {"a": None}], "exit": 0}
    assert ch.parse_status(b"", 1 << 20) is None
    big = json.dumps({"status": "ok", "value": "x" * 2000}).encode()
    assert ch.parse_status(big, 1000)["status"] == "bad_result"
    assert (
        ch.parse_status(json.dumps({"status": "error", "error_type": "Exit(3)"}).encode(), 1000)["error_type"]
        == "Exit(3)"
    )


def test_numpy_scalars_cross_as_their_python_value():
    np = pytest.importorskip("numpy")
    got = ch.from_wire(ch.to_wire([np.bool_(True), np.int64(3), np.float32(0.5), np.float64(1.5)], lenient=True))
    assert got == [True, 3, 0.5, 1.5] and [type(x) for x in got] == [bool, int, float, float]
    with pytest.raises(ch.NotPlainData):
        ch.to_wire(np.arange(3), lenient=True)  # an array is not plain data (its == is elementwise)
    from fractions import Fraction

    with pytest.raises(ch.NotPlainData):
        ch.to_wire(Fraction(1, 3), lenient=True)  # no inexact conversion
