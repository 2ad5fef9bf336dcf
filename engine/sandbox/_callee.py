"""The untrusted end of the call channel: serves the checker's calls into the program.

Runs inside the sandboxed child (after the program has been executed in its namespace),
stdlib only, loaded by path like every sibling of ``_server.py``. Nothing here is trusted:
the program may patch any of it. That is fine by design, because all this side can do is
choose which plain values and exception names the checker sees, which an honest program
can do too; the checker (``_checker.py``) decides the verdict.

Messages from the child, each one framed (``_channel.send``):

* first: ``["ready"]``, or ``["load_error", type_name, message]`` /
  ``["syntax_error", type_name]`` when the program itself did not run;
* for ``["describe", [name, ...]]``: ``["names", [[name, kind, payload], ...]]`` with kind
  ``callable`` | ``value`` (payload: the plain value) | ``module`` (payload: its name) |
  ``missing`` | ``other`` (payload: the type name);
* for ``["call", target, args, kwargs]``: ``["ok", value, args_after]`` (``args_after`` is
  ``null`` unless the call changed its arguments), ``["raise", type_name, message]`` or
  ``["opaque", type_name, truth]`` for a value that is not plain data (only its truth value,
  ``bool(value)`` or ``null`` when that raised, crosses).
"""

from __future__ import annotations

import sys
import traceback
import types
from collections.abc import Callable
from typing import Any


def _resolve(ns: dict[str, Any], target: str) -> Any:
    if target in ns:
        return ns[target]
    if target.isidentifier():
        import builtins

        if hasattr(builtins, target):
            return getattr(builtins, target)
        raise NameError(f"name {target!r} is not defined")
    return eval(target, ns)  # noqa: S307 - an entry point such as "Solution().f", in the sandbox


def _describe(ch: Any, ns: dict[str, Any], names: list[Any]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for name in names:
        if type(name) is not str:
            continue
        if name not in ns:
            out.append([name, "missing", None])
            continue
        v = ns[name]
        if isinstance(v, types.ModuleType):
            out.append([name, "module", v.__name__])
        elif callable(v):
            out.append([name, "callable", None])
        else:
            try:
                out.append([name, "value", ch.to_wire(v, lenient=True)])
            except ch.ChannelError:
                out.append([name, "other", type(v).__name__])
    return out


def _call(ch: Any, ns: dict[str, Any], msg: list[Any], print_exc: Callable[[BaseException], None]) -> list[Any]:
    _, target, args_w, kwargs_w = msg
    args = ch.from_wire(args_w)
    kwargs = ch.from_wire(kwargs_w)
    try:
        fn = _resolve(ns, target)
        value = fn(*args, **kwargs)
    except BaseException as e:  # noqa: BLE001 - the candidate's own failure, reported by name
        try:
            print_exc(e)
        except BaseException:  # noqa: BLE001 - an exception that cannot even be printed
            pass
        try:
            message = str(e)[:500]
        except BaseException:  # noqa: BLE001 - a hostile __str__
            message = ""
        return ["raise", type(e).__name__, message]
    try:
        value_w = ch.to_wire(value, lenient=True)
    except ch.ChannelError as e:
        try:  # its truth value is plain data (``assert re.match(...)``); nothing else of it is
            truth = bool(value)
        except BaseException:  # noqa: BLE001
            truth = None
        return ["opaque", getattr(e, "type_name", None) or str(e)[:100], truth]
    if not any(type(a) in (list, dict, set) for a in args):
        return ["ok", value_w, None]  # nothing the checker could copy back changed
    try:
        after = ch.to_wire(list(args), lenient=True)
    except ch.ChannelError:
        after = None
    return ["ok", value_w, None if after is None or ch.dumps(after) == ch.dumps(args_w) else after]


def serve(
    ch: Any, ns: dict[str, Any], req_fd: int, resp_fd: int, cap: int, print_exc: Callable[[BaseException], None]
) -> None:
    """Answer the checker until it hangs up. ``ch`` is the ``_channel`` module."""
    ch.send(resp_fd, ["ready"])
    while True:
        msg = ch.recv(req_fd, cap)
        if msg is None:
            return
        if msg[0] == "describe":
            reply = ["names", _describe(ch, ns, msg[1])]
        elif msg[0] == "call":
            reply = _call(ch, ns, msg, print_exc)
        else:
            return
        try:
            ch.send(resp_fd, reply)
        except (ValueError, TypeError, RecursionError):
            ch.send(resp_fd, ["notplain", "unencodable"])
        sys.stdout.flush()


def report_load_failure(ch: Any, resp_fd: int, kind: str, e: BaseException) -> None:
    """The program did not run to its end (syntax error, exception, SystemExit)."""
    try:
        text = "".join(traceback.format_exception_only(type(e), e))[-500:]
    except BaseException:  # noqa: BLE001 - an exception that cannot be printed
        text = ""
    msg = ["syntax_error", type(e).__name__] if kind == "syntax_error" else ["load_error", type(e).__name__, text]
    try:
        ch.send(resp_fd, msg)
    except OSError:
        pass
