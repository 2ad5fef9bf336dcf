"""Shared by the isolation and canary tests: which backends run here, and how to run a
command as an ordinary user (``nobody``) that can still reach the interpreter."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from engine.sandbox import backends

REPO = Path(__file__).resolve().parents[2]
BACKENDS = [m for m in ("full", "bwrap") if m in backends.available_modes()]
backend_params = pytest.mark.parametrize(
    "isolation",
    BACKENDS
    or [
        pytest.param(
            "none",
            marks=pytest.mark.skip(reason="no namespace backend here (neither root with unshare nor bubblewrap)"),
        )
    ],
)


def _blocked(path: str) -> tuple[str, str] | None:
    """The first directory on the way to ``path`` that others cannot traverse, and its child."""
    cur = "/"
    for part in [p for p in os.path.abspath(path).split("/") if p]:
        if cur != "/" and not os.stat(cur).st_mode & stat.S_IXOTH:
            return cur, part
        cur = os.path.join(cur, part)
    return None


def nobody_command(argv: list[str], env: dict[str, str]) -> list[str]:
    """``argv`` as ``nobody``, in a private mount namespace where a directory others cannot
    traverse on the way to the interpreter or the checkout (``/root`` holding a pyenv) is
    replaced by a tmpfs showing only what is needed: an ordinary install, where the user can
    run the interpreter. Skips the test when this machine cannot do it (not root)."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("unshare"):
        pytest.skip("running as nobody needs root, runuser and unshare")
    groups: dict[str, set[str]] = {}
    for p in {sys.base_prefix, sys.prefix, os.path.realpath(sys.executable), str(REPO)}:
        hit = _blocked(p)
        if hit:
            groups.setdefault(hit[0], set()).add(hit[1])
    script, moves = [], []
    for anc, children in groups.items():
        for c in sorted(children):
            src, stage = shlex.quote(os.path.join(anc, c)), shlex.quote(tempfile.mkdtemp(prefix="bdc-stage-"))
            script.append(f"mount --bind {src} {stage}")
            moves += [f"mkdir -p {src}", f"mount --move {stage} {src}", f"rmdir {stage}"]
        script.append(f"mount -t tmpfs -o mode=0755 bdc-expose {shlex.quote(anc)}")
    script += moves
    envs = [f"{k}={v}" for k, v in env.items()]
    script += [
        "exec runuser -u nobody -- env -i "
        + " ".join(shlex.quote(e) for e in envs)
        + " "
        + " ".join(shlex.quote(a) for a in argv)
    ]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script)]
