"""Plant canaries where secrets live, then try to reach them from a sandboxed program.

Used in-process by ``test_canaries`` (as root) and as a script run as ``nobody``
(``python -m tests.sandbox.canary_probe ISOLATION EXTRA.json``), so the same planting and
the same probe serve both. Prints one JSON line: the program's verdict and its output."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

from engine import paths
from engine.problems.model import Problem, TestCase, TestStyle
from engine.sandbox import Sandbox, SandboxLimits

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import ctypes, errno, json, os, socket
spec = json.loads(input())
leaks = []
for p in spec["files"]:
    try:
        with open(p, "rb") as f:
            if spec["token"].encode() in f.read():
                leaks.append("read " + p)
            else:
                leaks.append("opened " + p)
    except OSError:
        pass
for p in spec["absent"]:
    if os.path.lexists(p):
        leaks.append("exists " + p)
for p in spec["sockets"]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(p if not p.startswith("@") else "\0" + p[1:])
        leaks.append("connected " + p)
    except OSError:
        pass
    finally:
        s.close()
mine = str(os.getpid())
others = [d for d in os.listdir("/proc") if d.isdigit() and d != mine]
if others:
    leaks.append("processes " + ",".join(others))
for name in ("mountinfo", "cmdline", "environ", "maps"):
    try:
        with open("/proc/self/" + name, "rb") as f:
            data = f.read()
    except OSError:  # not dumpable after the uid switch: unreadable, fine
        continue
    for secret in spec["host_paths"]:
        if secret.encode() in data:
            leaks.append("/proc/self/%s names %s" % (name, secret))
libc = ctypes.CDLL(None, use_errno=True)
for flag in (0x10000000, 0x00020000):  # CLONE_NEWUSER, CLONE_NEWNS
    if libc.unshare(flag) == 0:
        leaks.append("unshare %#x" % flag)
print(json.dumps(leaks) if leaks else "OK")
"""


def plant_user_canaries(token: str) -> tuple[list[Path], list[Path]]:
    """A canary in this user's home, data, cache and config directories.
    Returns (canary files, directories created here), both for cleanup."""
    files, made = [], []
    for d in (Path.home(), paths.data_dir(), paths.cache_dir(), paths.config_path().parent):
        if not d.exists():
            missing = d
            while not missing.parent.exists():
                missing = missing.parent
            d.mkdir(parents=True, mode=0o700)
            made.append(missing)
        f = d / f".bdc-canary-{token}"
        f.write_text(f"secret {token}\n")
        files.append(f)
    return files, made


def listen_unix(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path if not path.startswith("@") else "\0" + path[1:])
    if not path.startswith("@"):
        os.chmod(path, 0o777)  # any local user could connect on the host
    s.listen(4)
    s.setblocking(False)
    return s


async def probe(isolation: str, token: str, files: list[str], absent: list[str], sockets: list[str]) -> dict[str, Any]:
    problem = Problem(
        id="t/canary", dataset="test", statement="", style=TestStyle.STDIO, public_tests=[], private_tests=[]
    )
    spec = {
        "token": token,
        "files": files,
        "absent": absent,
        "sockets": sockets,
        "host_paths": [str(REPO), str(paths.data_dir())],
    }
    async with Sandbox(limits=SandboxLimits(timeout_s=10.0), workers=1, isolation=isolation) as sb:
        r = await sb.run(PROBE, problem, [TestCase(json.dumps(spec), "OK")])
        info = sb.info()
    res = r.results[0]
    return {
        "verdict": res.verdict.value,
        "got": res.got,
        "stderr": res.stderr_excerpt,
        "backend": info["backend"],
        "user_namespace": info["user_namespace"],
        "seccomp": bool(info["seccomp"]),
    }


def main() -> None:
    """``canary_probe ISOLATION EXTRA``: plant this user's canaries, probe them together with
    ``EXTRA`` (JSON: files/absent/sockets planted by the caller), clean up, print JSON."""
    isolation, extra = sys.argv[1], json.loads(sys.argv[2])
    token = extra["token"]
    files, made = plant_user_canaries(token)
    try:
        out = asyncio.run(
            probe(isolation, token, [str(f) for f in files] + extra["files"], extra["absent"], extra["sockets"])
        )
    finally:
        for f in files:
            f.unlink(missing_ok=True)
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
    out["canaries"] = [str(f) for f in files]
    print(json.dumps(out))


def new_token() -> str:
    return secrets.token_hex(8)


if __name__ == "__main__":
    main()
