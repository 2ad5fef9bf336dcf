"""The narrow channel between trusted and untrusted processes: plain data only, checked.

Stdlib only: the worker server (``_server.py``, run as a script) loads this file by path.

Plain data (``encode``/``decode``)
    ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes`` and ``list``,
    ``tuple``, ``dict``, ``set``, ``frozenset`` of those, with their types preserved. The wire
    form is JSON in which every container is a tagged array (``["l", [...]]``, ``["t", ...]``,
    ``["d", [[k, v], ...]]``, ``["s", ...]``, ``["f", ...]``, ``["b", base64]``,
    ``["c", re, im]``, ``["i", hex]`` for integers past 2**63). Native JSON objects are never
    produced and are rejected when read, and nothing but these built-in types is ever built
    from the bytes: no pickle, no class lookup, no ``__eq__`` of the sender's choosing.
    ``decode`` caps the nesting depth and the size; every failure is ``ChannelError``.

Framing (``send``/``recv``)
    4-byte big-endian length, then the body; ``recv`` refuses a length over its cap before
    reading the body.

Status messages (``parse_status``)
    The untrusted child's last word for stdio and call tests ("my program ended like this").
    It is schema-checked field by field; anything else becomes one ``bad_result`` status
    naming what was wrong, which the server turns into a per-test verdict.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import struct
from typing import Any

MAX_DEPTH = 100  # nesting of containers in one value
SMALL_INT = 1 << 63
ERROR_TYPE_MAX = 100
MESSAGE_MAX = 2000
REPR_MAX = 2000
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(\(-?\d{1,6}\))?\Z")


def short_name(v: Any) -> str | None:
    """``v`` when it is a short exception-like name (``ValueError``, ``Exit(3)``), else None."""
    if type(v) is str and len(v) <= ERROR_TYPE_MAX and _ERROR_TYPE.match(v):
        return v
    return None


class ChannelError(Exception):
    """A message that is not well-formed plain data (or too big, or too deep)."""


class NotPlainData(ChannelError):
    """A value that cannot cross the channel: its type is not plain data."""

    def __init__(self, type_name: str, where: str = "value") -> None:
        super().__init__(
            f"{where} of type {type_name} is not plain data "
            "(None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)"
        )
        self.type_name = type_name


# ----------------------------------------------------------------------------- values
_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset})


def _coerce(value: Any) -> Any:
    """The plain value a near-plain one stands for (the callee side only).

    Subclasses of the plain types (IntEnum, namedtuple, OrderedDict, Counter, defaultdict)
    become their base type, as ``==`` against plain data mostly treats them; whatever a
    subclass overrides (``__eq__`` above all) is left behind on the untrusted side. Other
    ``numbers.Integral`` values become ``int`` (exact), and numpy scalars (``np.bool_``,
    ``np.float32``) their own ``.item()``. Nothing inexact: a ``Fraction`` stays not plain."""
    import numbers

    for base in (bool, int, float, complex, str, bytes, tuple, list, dict, frozenset, set):
        if isinstance(value, base):
            return base(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    t = type(value)
    if t.__module__ == "numpy" and getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        item = value.item()
        if type(item) in (bool, int, float, complex, str, bytes):
            return item
    raise NotPlainData(t.__name__)


def to_wire(value: Any, depth: int = 0, lenient: bool = False) -> Any:
    """``value`` as tagged JSON-able data; ``NotPlainData`` for anything else.

    ``lenient`` (used only where the value comes from the program) first turns near-plain
    values into plain ones (``_coerce``)."""
    if depth > MAX_DEPTH:
        raise ChannelError(f"value nested deeper than {MAX_DEPTH}")
    t = type(value)
    if lenient and t not in _PLAIN:
        value = _coerce(value)
        t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if -SMALL_INT < value < SMALL_INT else ["i", hex(value)]
    if t is float:
        return value if math.isfinite(value) else ["x", repr(value)]
    d = depth + 1
    if t is list:
        return ["l", [to_wire(v, d, lenient) for v in value]]
    if t is tuple:
        return ["t", [to_wire(v, d, lenient) for v in value]]
    if t is dict:
        return ["d", [[to_wire(k, d, lenient), to_wire(v, d, lenient)] for k, v in value.items()]]
    if t is set:
        return ["s", [to_wire(v, d, lenient) for v in value]]
    if t is frozenset:
        return ["f", [to_wire(v, d, lenient) for v in value]]
    if t is bytes:
        return ["b", base64.b64encode(value).decode("ascii")]
    if t is complex:
        return ["c", to_wire(value.real, d), to_wire(value.imag, d)]
    raise NotPlainData(t.__name__)


def _float(v: Any) -> float:
    if type(v) is float:
        return v
    if type(v) is list and len(v) == 2 and v[0] == "x" and v[1] in ("nan", "inf", "-inf"):
        return float(v[1])
    if type(v) is int:
        return float(v)
    raise ChannelError("complex part is not a float")


def from_wire(data: Any, depth: int = 0) -> Any:
    """The plain value ``data`` stands for; ``ChannelError`` for anything malformed."""
    if depth > MAX_DEPTH:
        raise ChannelError(f"value nested deeper than {MAX_DEPTH}")
    t = type(data)
    if data is None or t is bool or t is str or t is float:
        return data
    if t is int:
        if not -SMALL_INT < data < SMALL_INT:
            raise ChannelError("large integer not in hex form")
        return data
    if t is not list or not data or type(data[0]) is not str:
        raise ChannelError(f"malformed value ({t.__name__})")
    tag, d = data[0], depth + 1
    try:
        if tag in ("l", "t", "s", "f") and len(data) == 2 and type(data[1]) is list:
            items = [from_wire(v, d) for v in data[1]]
            if tag == "l":
                return items
            if tag == "t":
                return tuple(items)
            return set(items) if tag == "s" else frozenset(items)
        if tag == "d" and len(data) == 2 and type(data[1]) is list:
            out = {}
            for pair in data[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise ChannelError("malformed dict item")
                out[from_wire(pair[0], d)] = from_wire(pair[1], d)
            return out
        if tag == "i" and len(data) == 2 and type(data[1]) is str and len(data[1]) < 1 << 20:
            return int(data[1], 16)
        if tag == "x" and len(data) == 2 and data[1] in ("nan", "inf", "-inf"):
            return float(data[1])
        if tag == "b" and len(data) == 2 and type(data[1]) is str:
            return base64.b64decode(data[1].encode("ascii"), validate=True)
        if tag == "c" and len(data) == 3:
            return complex(_float(data[1]), _float(data[2]))
    except TypeError as e:  # an unhashable set element or dict key
        raise ChannelError(f"malformed value: {e}") from None
    except (ValueError, UnicodeEncodeError) as e:
        raise ChannelError(f"malformed {tag!r} value: {str(e)[:100]}") from None
    raise ChannelError(f"unknown tag {tag[:20]!r}")


def dumps(obj: Any) -> bytes:
    """An already-tagged message (lists, str, numbers) as compact JSON bytes."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8", "surrogatepass")


def loads(body: bytes) -> Any:
    """JSON bytes -> Python data, every failure (bad UTF-8, nesting, huge int) a ChannelError."""
    try:
        return json.loads(body.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError, UnicodeDecodeError, MemoryError) as e:
        raise ChannelError(f"not a JSON message: {type(e).__name__}") from None


def encode(value: Any, lenient: bool = False) -> bytes:
    return dumps(to_wire(value, lenient=lenient))


def decode(body: bytes) -> Any:
    return from_wire(loads(body))


# ----------------------------------------------------------------------------- framing
def send(fd: int, obj: Any) -> None:
    """One framed message (``obj`` already tagged/JSON-able)."""
    body = dumps(obj)
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        view = view[os.write(fd, view) :]


def read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or ``None`` at end of file."""
    chunks, left = [], n
    while left:
        b = os.read(fd, min(left, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def recv(fd: int, cap: int) -> Any | None:
    """One framed message; ``None`` at end of file; ``ChannelError`` past ``cap`` bytes."""
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > cap:
        raise ChannelError(f"message of {n} bytes is over the {cap}-byte cap")
    body = read_exact(fd, n)
    if body is None:
        return None
    return loads(body)


def unframe(raw: bytes) -> Any | None:
    """The one framed message that makes up ``raw`` (``None`` when it is anything else)."""
    if len(raw) < 4:
        return None
    (n,) = struct.unpack(">I", raw[:4])
    if n != len(raw) - 4:
        return None
    try:
        return loads(raw[4:])
    except ChannelError:
        return None


# ----------------------------------------------------------------------------- status
STATUSES = frozenset({"ok", "error", "syntax_error", "internal"})


def _bad(reason: str) -> dict[str, Any]:
    return {"status": "bad_result", "error_type": "BadResultMessage", "message": reason}


def _plain_json(v: Any, depth: int = 0) -> bool:
    """JSON-native plain data (the call style's normalised return value)."""
    if depth > MAX_DEPTH:
        return False
    if v is None or type(v) in (bool, int, float, str):
        return True
    if type(v) is list:
        return all(_plain_json(x, depth + 1) for x in v)
    if type(v) is dict:
        return all(type(k) is str and _plain_json(x, depth + 1) for k, x in v.items())
    return False


def parse_status(raw: bytes, cap: int) -> dict[str, Any] | None:
    """The child's status message, validated; ``None`` when it sent none (``os._exit``).

    Returns a fresh dict with known fields of known types only, or a ``bad_result`` status.
    """
    if not raw:
        return None
    if len(raw) > cap:
        return _bad(f"status message of {len(raw)} bytes is over the {cap}-byte cap")
    try:
        msg = loads(raw)
    except ChannelError as e:
        return _bad(str(e))
    if type(msg) is not dict:
        return _bad(f"status message is a JSON {type(msg).__name__}, not an object")
    status = msg.get("status")
    if status not in STATUSES:
        return _bad(f"unknown status {str(status)[:40]!r}")
    out: dict[str, Any] = {"status": status}
    et = msg.get("error_type")
    if et is not None:
        if short_name(et) is None:
            return _bad(f"error_type is not a short name ({type(et).__name__})")
        out["error_type"] = et
    for key, limit in (("message", MESSAGE_MAX), ("repr", REPR_MAX)):
        v = msg.get(key)
        if v is not None:
            if type(v) is not str:
                return _bad(f"{key} is a {type(v).__name__}, not a string")
            out[key] = v[:limit]
    if "exit" in msg:
        if type(msg["exit"]) is not int:
            return _bad("exit is not an integer")
        out["exit"] = msg["exit"]
    if "where" in msg:
        if msg["where"] not in ("program", "test"):
            return _bad("where is neither program nor test")
        out["where"] = msg["where"]
    if "value" in msg:
        if not _plain_json(msg["value"]):
            return _bad("value is not plain JSON data")
        out["value"] = msg["value"]
    return out
