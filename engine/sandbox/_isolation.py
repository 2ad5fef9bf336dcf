"""The worker's filesystem and privileges: a minimal read-only root, a fresh tmpfs per test,
and the child's privilege drop. Stdlib only: the worker server loads this file by path.

Why a minimal root rather than hiding things one by one: a list of hidden places is always
one place short (a home directory, a data directory moved by ``BDC_HOME``, the checkout, a
socket in ``/run/lock``). The root built here is a small tmpfs holding read-only binds of
exactly what a program needs (the system libraries under ``/usr`` and ``/lib*``, the
interpreter with its standard library, the site-packages it may import), a handful of device
nodes, a fresh ``/proc`` of the worker's own pid namespace, and ``/tmp``. Everything else of
the host simply does not exist in there.

Layout, built by ``build_root`` (root in a fresh mount namespace: real root with
``unshare``, or root of a user namespace with bubblewrap):

* a tmpfs is mounted on the host's ``/tmp`` (bubblewrap's trick), the new root is a second
  tmpfs inside it, and a first ``pivot_root`` puts the host tree under ``/oldroot`` (the
  tmpfs moves away from ``/tmp``, so a venv under ``/tmp`` is still readable there);
* binds from ``/oldroot`` into the new root, each remounted read-only (every submount too);
* every world-writable directory of the host (found by a scan at start, not a list) becomes
  a symlink to ``/tmp`` in the new root: private, per test, and inside the size cap;
* a second ``pivot_root`` into the new root, and the host tree is detached.

Per test (``Scratch``) a fresh tmpfs is mounted on ``/tmp`` (size- and inode-capped, noexec)
and lazily unmounted afterwards, so no tree shape (1,500 levels, ``chmod 000``) can defeat
cleanup, and nothing a program leaves behind reaches the next one.
"""

from __future__ import annotations

import ctypes
import os
import re
import stat
from collections.abc import Iterable
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 32, 4096, 8192, 16384
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_PRIVATE = 1024, 2048, 1 << 21, 1 << 18
MNT_DETACH = 2
# statvfs f_flag bits -> the mount flags a read-only remount must keep (the kernel refuses
# to clear a flag locked by a more privileged namespace)
_ST_TO_MS = (
    (1, MS_RDONLY),
    (2, MS_NOSUID),
    (4, MS_NODEV),
    (8, MS_NOEXEC),
    (1024, MS_NOATIME),
    (2048, MS_NODIRATIME),
    (4096, MS_RELATIME),
)

PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1, 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

SCRATCH = "/tmp"  # the per-test tmpfs; world-writable places of the host point here
KEEP = "/.bdc-keep"  # needed paths that live in a world-writable place (a venv under /tmp)
WORKDIR = "/tmp/work"  # the program's own 0700 directory inside it
DEVICES = ("null", "zero", "full", "random", "urandom")
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")  # dlopen by name, local time
SCAN_SKIP = ("/proc", "/sys")  # pseudo filesystems: nothing there becomes a world-writable dir

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_SYS_PIVOT_ROOT, _SYS_CAPSET, _SYS_SECCOMP = 155, 126, 317  # x86_64; glibc wraps none of them
if os.uname().machine == "aarch64":
    _SYS_PIVOT_ROOT, _SYS_CAPSET, _SYS_SECCOMP = 41, 91, 277


def _enc(s: str | None) -> bytes | None:
    return None if s is None else s.encode()


def mount(src: str | None, tgt: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(_enc(src), _enc(tgt), _enc(fstype), flags, _enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} -> {tgt}: {os.strerror(e)}")


def umount_lazy(tgt: str) -> None:
    """Detach ``tgt`` and everything under it, whatever its shape; freed when unused."""
    if _libc.umount2(tgt.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"umount {tgt}: {os.strerror(e)}")


def pivot_root(new: str, put_old: str) -> None:
    if _libc.syscall(_SYS_PIVOT_ROOT, new.encode(), put_old.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"pivot_root {new}: {os.strerror(e)}")


def _kept_flags(path: str) -> int:
    flags = 0
    st = os.statvfs(path).f_flag
    for st_bit, ms_bit in _ST_TO_MS:
        if st & st_bit:
            flags |= ms_bit
    return flags


def remount_readonly(path: str) -> None:
    mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _kept_flags(path))


# ----------------------------------------------------------------------------- what is visible
def needed_paths(prefixes: Iterable[str], site_dirs: Iterable[str]) -> list[str]:
    """Host paths a program needs, deduplicated (an ancestor covers its subtree), absolute.

    ``prefixes``: the interpreter's installation (``sys.base_prefix``: binary, stdlib,
    lib-dynload). ``site_dirs``: the site-packages solutions may import. Deliberately not
    ``sys.path`` as a whole: editable installs put the project checkout there."""
    paths = [p for p in (*SYSTEM_DIRS, *prefixes, *site_dirs) if p and os.path.lexists(p)]
    out: list[str] = []
    for p in sorted({os.path.normpath(os.path.abspath(p)) for p in paths}):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return out


def world_writable_dirs(root: str = "/", depth: int = 3) -> list[str]:
    """Every world-writable directory of the host down to ``depth`` levels (``/tmp``,
    ``/var/tmp``, ``/run/lock``, ``/dev/shm``, ``/dev/mqueue`` on a usual machine), found
    by looking, not from a list. ``root`` is where the host tree is mounted; the result is
    in host paths. Symlinks are not followed and a found directory is not descended."""
    found: list[str] = []
    level = [""]
    for _ in range(depth):
        nxt: list[str] = []
        for rel in level:
            try:
                it = list(os.scandir(os.path.join(root, rel.lstrip("/")) if rel else root))
            except OSError:
                continue
            for entry in it:
                host = f"{rel}/{entry.name}"
                if host in SCAN_SKIP:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    continue
                if st.st_mode & stat.S_IWOTH:
                    found.append(host)
                else:
                    nxt.append(host)
        level = nxt
    return sorted(found)


def _mkdirs(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _covered(path: str, binds: Iterable[str]) -> bool:
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in binds)


_OCTAL = re.compile(r"\\([0-7]{3})")  # compiled here: between the two pivots no module can be imported


def _mountinfo(proc: str = "/proc") -> list[tuple[str, str]]:
    """(mount point, per-mount options) of this mount namespace, innermost last."""
    rows = []
    with open(f"{proc}/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), parts[4])  # "\\040" is a space
            rows.append((point, parts[5]))
    return rows


def build_root(paths: list[str], proc_options: Iterable[str], tmp_base: str = "/tmp") -> dict[str, Any]:
    """Pivot into a fresh minimal root (see the module doc). Must run as root of a new
    mount namespace; the process's cwd ends at ``/``. Returns what was done, for ``info``."""
    real = {p: os.path.realpath(p) for p in paths}
    links = {p: os.readlink(p) for p in paths if os.path.islink(p) and p in SYSTEM_DIRS}
    files = {p: os.path.realpath(p) for p in SYSTEM_FILES if os.path.exists(p)}
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", tmp_base, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k,nr_inodes=64")
    os.chdir(tmp_base)
    os.mkdir("newroot", 0o755)
    os.mkdir("oldroot", 0o755)
    mount("tmpfs", "newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m,nr_inodes=4096")
    pivot_root(".", "oldroot")
    os.chdir("/")
    old, new = "/oldroot", "/newroot"
    # world-writable places of the host: private (below); a needed path inside one (a venv
    # under /tmp) is kept aside and bound again into every test's fresh tmpfs
    found = world_writable_dirs(old)
    private_dirs = {SCRATCH, *(d for d in found if not _covered(d, [q for q in paths if q not in links]))}
    bound: list[str] = []
    volatile: list[tuple[str, str]] = []  # (kept-aside path in the new root, where a test sees it)
    for p in paths:
        home = next((w for w in sorted(private_dirs, key=len, reverse=True) if _covered(p, [w])), None)
        dst = new + p
        if home is not None:
            keep = f"{KEEP}/{len(volatile)}"
            volatile.append((keep, SCRATCH + p[len(home) :]))
            dst = new + keep
        if p in links:
            _mkdirs(os.path.dirname(dst))
            os.symlink(links[p], dst)
            continue
        src = old + real[p]
        if os.path.isdir(src):
            _mkdirs(dst)
        else:
            _mkdirs(os.path.dirname(dst))
            open(dst, "x").close()
        mount(src, dst, None, MS_BIND | MS_REC)
        bound.append(p)
    if volatile:
        os.chmod(new + KEEP, 0o700)
    for p, target in files.items():
        dst = new + p
        _mkdirs(os.path.dirname(dst))
        open(dst, "x").close()
        mount(old + target, dst, None, MS_BIND)
    # /dev: a few nodes bound from the host's, the usual symlinks
    _mkdirs(new + "/dev")
    mount("tmpfs", new + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=64")
    for name in DEVICES:
        if os.path.exists(f"{old}/dev/{name}"):
            open(f"{new}/dev/{name}", "x").close()
            mount(f"{old}/dev/{name}", f"{new}/dev/{name}", None, MS_BIND)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{new}/dev/{name}")
    private: list[str] = []
    readonly: list[str] = []
    for d in found:
        if d == SCRATCH:
            continue
        if d not in private_dirs:
            readonly.append(d)  # inside a read-only bind: stays read-only
            continue
        _mkdirs(os.path.dirname(new + d))
        os.symlink(SCRATCH, new + d)  # private, and inside the per-test tmpfs's cap
        private.append(d)
    _mkdirs(new + SCRATCH)
    _mkdirs(new + "/proc")
    proc_used = None
    for opts in proc_options:
        try:
            mount("proc", new + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, opts or None)
        except OSError:
            continue
        proc_used = opts or "(defaults)"
        break
    if proc_used is None:
        raise OSError("no procfs could be mounted in the new root")
    # read-only: the new root itself, /dev, every bind and every submount of a bind
    for point, opts in _mountinfo(old + "/proc"):
        if point == new or point.startswith(new + "/"):
            if "ro" not in opts.split(",") and point != new + "/proc":
                remount_readonly(point)
    os.chdir(new)
    pivot_root(".", ".")  # the old root (tmp tmpfs + host tree) now sits on top of "/"
    umount_lazy(".")
    os.chdir("/")
    writable = [p for p, o in _mountinfo() if "ro" not in o.split(",")]
    return {
        "visible": [*bound, *links, *files, "/dev", "/proc", SCRATCH, *private],
        "private_tmp": [SCRATCH, *private],
        "volatile": volatile,
        "readonly_world_writable": readonly,
        "proc": proc_used,
        "writable_mounts": writable,
    }


class Scratch:
    """The per-test writable filesystem: a fresh tmpfs on ``/tmp``, lazily detached after.

    ``volatile``: (kept-aside path, path under ``/tmp``) of needed read-only trees that live
    in a world-writable place on the host, bound again into each fresh tmpfs."""

    def __init__(self, uid: int | None, gid: int | None, volatile: list[tuple[str, str]] = ()) -> None:
        self.uid, self.gid = uid, gid
        self.volatile = list(volatile)
        self.mounted = False

    def enter(self, size_mb: int) -> str:
        """Mount a fresh tmpfs; return the program's work directory inside it."""
        self.leave()  # a test that failed half way must not leave its tmpfs under the next one
        inodes = max(1024, size_mb * 64)
        mount(
            "tmpfs", SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode=1777,size={size_mb}m,nr_inodes={inodes}"
        )
        self.mounted = True
        for keep, at in self.volatile:
            _mkdirs(at)
            mount(keep, at, None, MS_BIND | MS_REC)
            remount_readonly(at)
        os.mkdir(WORKDIR, 0o700)
        if self.uid is not None:
            os.chown(WORKDIR, self.uid, self.gid if self.gid is not None else -1)
        return WORKDIR

    def leave(self) -> None:
        if self.mounted:
            self.mounted = False
            umount_lazy(SCRATCH)  # with everything bound under it


# ----------------------------------------------------------------------------- the child
def uid_map_is_full() -> bool:
    """True when this process is in the initial user namespace (every uid mapped): a real
    uid switch is possible. In a bubblewrap user namespace only one uid exists."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            rows = [line.split() for line in f if line.strip()]
    except OSError:
        return True
    return rows == [["0", "0", "4294967295"]]


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_bounding_set(top: int) -> None:
    """No capability can come back, even through exec of a file: empty bounding set."""
    for cap in range(top + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def clear_capabilities() -> None:
    """Empty effective/permitted/inheritable sets: how root of a user namespace (bubblewrap,
    one mapped uid, no switch possible) gives up its powers before running a program."""
    head = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if _libc.syscall(_SYS_CAPSET, ctypes.byref(head), ctypes.byref(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"capset: {os.strerror(e)}")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class SeccompProgram:
    """A seccomp BPF program compiled once by libseccomp (``_seccomp.build``) and installed
    in each child with one ``prctl``: loading through libseccomp recompiles the rules in
    every child, about a millisecond each, as much as the fork itself."""

    def __init__(self, bpf: bytes) -> None:
        if not bpf or len(bpf) % 8:
            raise ValueError("not a BPF program")
        self._buf = ctypes.create_string_buffer(bpf, len(bpf))
        self._prog = _SockFprog(len(bpf) // 8, ctypes.cast(self._buf, ctypes.c_void_p))

    def install(self) -> None:
        """Needs no_new_privs (or CAP_SYS_ADMIN); irreversible for this process and its children.

        With SECCOMP_FILTER_FLAG_SPEC_ALLOW (Linux 4.17+): kernels whose speculative store
        bypass mitigation defaults to "seccomp" (before 5.16) would otherwise force it on the
        program and slow CPU-bound code; it guards a process's memory against itself, and
        nothing secret shares the program's address space. Older kernels: plain prctl."""
        addr = ctypes.addressof(self._prog)
        if (
            _libc.syscall(_SYS_SECCOMP, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, ctypes.c_void_p(addr))
            == 0
        ):
            return
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, addr, 0, 0) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"seccomp: {os.strerror(e)}")


def no_new_privs() -> None:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"no_new_privs: {os.strerror(e)}")


def blank_proc_cmdline() -> bool:
    """Zero this process's original argv and environment strings, the memory behind
    ``/proc/self/cmdline`` and ``/proc/self/environ``: a forked child inherits the server's
    command line (interpreter and server path: host paths). Python keeps its own copies
    (``sys.argv``, ``os.environ``) and glibc's ``environ`` must already point elsewhere (set
    the environment anew first). Addresses from ``/proc/self/stat`` (fields 48-51, Linux
    3.5+); False, touching nothing, when they are not there."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        arg_start, arg_end, env_start, env_end = (int(x) for x in fields[45:49])
    except (OSError, IndexError, ValueError):
        return False
    if not (0 < arg_start < arg_end and 0 < env_start < env_end):
        return False
    ctypes.memset(arg_start, 0, arg_end - arg_start)
    ctypes.memset(env_start, 0, env_end - env_start)
    return True


# ----------------------------------------------------------------------------- degraded modes
def remove_tree(path: str) -> None:
    """Remove ``path`` whatever its shape, without recursion and with short paths only.

    Used where there is no mount namespace to detach a tmpfs (modes ``net``, ``plain``).
    ``shutil.rmtree`` recurses (a 1,500-level tree raises RecursionError) and builds paths
    past PATH_MAX; here a subdirectory's own subdirectories are moved up next to it
    (``rename`` within ``path``), so every directory is emptied while at depth one, and
    ``chmod 000`` directories are opened up first."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    counter = 0
    pending = [path]
    while pending:
        d = pending[-1]
        try:
            os.chmod(d, 0o700)
        except OSError:
            pass
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            pending.pop()
            continue
        subdirs = []
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                subdirs.append(e.path)
            else:
                try:
                    os.unlink(e.path)
                except FileNotFoundError:
                    pass
        if d != path:
            # hoist this directory's subdirectories to the top, then it is empty
            for s in subdirs:
                counter += 1
                while os.path.lexists(os.path.join(path, f".rm{counter}")):
                    counter += 1
                try:
                    os.chmod(s, 0o700)
                except OSError:
                    pass
                os.rename(s, os.path.join(path, f".rm{counter}"))
            os.rmdir(d)
            pending.pop()
            continue
        if not subdirs:
            pending.pop()
            os.rmdir(path)
            continue
        pending.extend(subdirs)
