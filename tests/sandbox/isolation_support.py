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


def _blocked_dirs(path: str) -> list[str]:
    """Every directory on the way to ``path`` (``path`` included) that others cannot traverse."""
    out, cur = [], "/"
    for part in [p for p in os.path.abspath(path).split("/") if p]:
        cur = os.path.join(cur, part)
        st = os.stat(cur)
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            out.append(cur)
    return out


def _stage_command(src: str, stage: str) -> tuple[list[str], list[str]]:
    """Shell lines that set ``src`` aside at ``stage``, and the lines that put it back."""
    q, st = shlex.quote(src), shlex.quote(stage)
    if os.path.islink(src):
        return [], [f"ln -s {shlex.quote(os.readlink(src))} {q}"]
    if os.path.isdir(src):
        return [f"mkdir {st}", f"mount --rbind {q} {st}"], [f"mkdir -p {q}", f"mount --move {st} {q}", f"rmdir {st}"]
    return [f"touch {st}", f"mount --bind {q} {st}"], [f"touch {q}", f"mount --move {st} {q}", f"rm -f {st}"]


def nobody_command(argv: list[str], env: dict[str, str]) -> list[str]:
    """``argv`` as ``nobody``, in a private mount namespace where a directory others cannot
    traverse on the way to the interpreter or the checkout (``/root`` holding a pyenv) is
    replaced by a tmpfs showing only what is needed: an ordinary install, where the user can
    run the interpreter. Skips the test when this machine cannot do it (not root)."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("unshare"):
        pytest.skip("running as nobody needs root, runuser and unshare")
    needed = {sys.base_prefix, sys.prefix, os.path.realpath(sys.executable), str(REPO)}
    children: dict[str, set[str]] = {}  # blocked directory -> what must stay visible in it
    for p in needed:
        for d in _blocked_dirs(p):
            rest = os.path.relpath(p, d)
            children.setdefault(d, set()).update(os.listdir(d) if rest == "." else {rest.split(os.sep)[0]})
    # deepest first: a shallower directory's set-aside copy (--rbind) then carries the deeper tmpfs
    script, work = [], tempfile.mkdtemp(prefix="bdc-stage-")
    for n, d in enumerate(sorted(children, key=lambda d: d.count("/"), reverse=True)):
        back = []
        for i, c in enumerate(sorted(children[d])):
            aside, restore = _stage_command(os.path.join(d, c), os.path.join(work, f"{n}-{i}"))
            script += aside
            back += restore
        script.append(f"mount -t tmpfs -o mode=0755 bdc-expose {shlex.quote(d)}")
        script += back
    envs = [f"{k}={v}" for k, v in env.items()]
    script += [
        "exec runuser -u nobody -- env -i "
        + " ".join(shlex.quote(e) for e in envs)
        + " "
        + " ".join(shlex.quote(a) for a in argv)
    ]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script)]
