"""Without namespaces the sandbox still blocks sockets and process creation (audit hook)."""

from __future__ import annotations

import pytest

from engine.sandbox import Sandbox, SandboxLimits, Verdict

from .conftest import T, stdio_problem


@pytest.mark.asyncio
async def test_plain_mode_blocks_sockets_and_processes():
    async with Sandbox(limits=SandboxLimits(timeout_s=2.0), workers=1, isolation="plain") as sb:
        info = sb.info()
        assert info["mode"] == "plain" and not info["network_namespace"] and info["socket_block_audit_hook"]
        r = await sb.run(
            "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n", stdio_problem(), [T("", "")]
        )
        assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "PermissionError"
        r = await sb.run("import os\nos.fork()\n", stdio_problem(), [T("", "")])
        assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "PermissionError"
        r = await sb.run(
            "import socket\na, b = socket.socketpair()\nprint('local ok')\n", stdio_problem(), [T("", "local ok")]
        )
        assert r.passed, r.summary  # AF_UNIX pairs stay allowed
        r = await sb.run("print(sum(map(int, input().split())))", stdio_problem(), [T("1 2", "3")])
        assert r.passed


def test_bad_isolation_name():
    with pytest.raises(ValueError):
        Sandbox(isolation="docker")


@pytest.mark.asyncio
async def test_dead_worker_is_replaced():
    import os
    import signal

    async with Sandbox(workers=1) as sb:
        w = sb._workers[0]
        os.killpg(w.proc.pid, signal.SIGKILL)
        await w.proc.wait()
        r = await sb.run("print(input())", stdio_problem(), [T("x", "x")])
        assert r.passed, r.summary
        assert sb._workers[0] is not w and sb._workers[0].alive
