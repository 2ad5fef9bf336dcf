"""Secrets stay out of reach: canaries planted where bdc's keys and data live (a home
directory, the data/cache/config directories, the checkout and its .git, the host's /tmp,
other users' files) and unix sockets (in /run/lock, /tmp, the abstract namespace) must be
invisible from a sandboxed program, with both backends, as root and as ``nobody``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from . import canary_probe
from .isolation_support import BACKENDS, REPO, backend_params, nobody_command

pytestmark = pytest.mark.timeout(240)


def _host_places(token: str, tmp_path: Path) -> tuple[dict[str, list[str]], list[Path], list]:
    """Canaries any user could read on the host (0644), and sockets any user could connect to."""
    files = []
    for d in (REPO, Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), tmp_path):
        if d.is_dir():
            f = d / f".bdc-canary-{token}"
            f.write_text(f"secret {token}\n")
            f.chmod(0o644)
            files.append(f)
    absent = [
        str(REPO / ".git"),
        str(REPO / "engine"),
        str(REPO / "pyproject.toml"),
        "/etc/passwd",
        "/etc/hostname",
        "/home",
        "/run/lock/.keep-me" if Path("/run/lock/.keep-me").exists() else "/etc/shadow",
    ]
    socks, listeners = [], []
    for p in (f"/run/lock/bdc-canary-{token}.sock", f"/tmp/bdc-canary-{token}.sock", f"@bdc-canary-{token}"):
        if p.startswith("@") or Path(p).parent.is_dir():
            listeners.append(canary_probe.listen_unix(p))
            socks.append(p)
            if not p.startswith("@"):
                files.append(Path(p))
    return (
        {"files": [str(f) for f in files if not str(f).endswith(".sock")], "absent": absent, "sockets": socks},
        files,
        listeners,
    )


def _nothing_accepted(listeners: list) -> None:
    for s in listeners:
        try:
            conn, _ = s.accept()
        except BlockingIOError:
            continue
        conn.close()
        raise AssertionError(f"a sandboxed program connected to {s.getsockname()!r}")


@pytest.fixture
def host_canaries(tmp_path):
    token = canary_probe.new_token()
    extra, planted, listeners = _host_places(token, tmp_path)
    extra["token"] = token
    yield extra, listeners
    for s in listeners:
        s.close()
    for f in planted:
        f.unlink(missing_ok=True)


@backend_params
@pytest.mark.asyncio
async def test_canaries_unreachable_as_engine_user(isolation, host_canaries):
    extra, listeners = host_canaries
    token = extra["token"]
    files, made = canary_probe.plant_user_canaries(token)
    try:
        out = await canary_probe.probe(
            isolation, token, [str(f) for f in files] + extra["files"], extra["absent"], extra["sockets"]
        )
    finally:
        for f in files:
            f.unlink(missing_ok=True)
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
    assert out["verdict"] == "passed", out
    assert out["seccomp"]
    _nothing_accepted(listeners)


@pytest.mark.skipif("bwrap" not in BACKENDS, reason="bubblewrap is not installed")
def test_canaries_unreachable_as_nobody_with_bubblewrap(host_canaries):
    """The non-root install: the engine runs as an ordinary user, ``auto`` picks the
    bubblewrap backend, which gives the namespaces (a user namespace among them)."""
    extra, listeners = host_canaries
    home = Path(tempfile.mkdtemp(prefix="bdc-nobody-home-", dir="/var/tmp"))
    os.chown(home, 65534, 65534)
    try:
        _probe_as_nobody(extra, listeners, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _probe_as_nobody(extra: dict, listeners: list, home: Path) -> None:
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    cmd = nobody_command([sys.executable, "-m", "tests.sandbox.canary_probe", "auto", json.dumps(extra)], env)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "bubblewrap" and out["user_namespace"], out
    assert all(c.startswith(str(home)) for c in out["canaries"])  # nobody's own home and data dirs
    assert out["verdict"] == "passed", out
    assert out["seccomp"]
    _nothing_accepted(listeners)
