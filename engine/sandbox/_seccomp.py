"""The seccomp filter of every sandboxed program, compiled by libseccomp (``pyseccomp``).

Loaded by path by the worker server (stdlib-only script); ``pyseccomp`` is a ctypes binding
to the machine's ``libseccomp.so.2``, imported from the interpreter's site-packages (the
server runs with ``-I``, which keeps site-packages). The filter is compiled once per worker
into a BPF program; each child installs it with one ``prctl`` (``_isolation.SeccompProgram``).

Default: allow. Denied with EPERM, because a contest program has no business with them and
each is a way out of (or into) the sandbox:

* namespaces: ``unshare``, ``setns``, and ``clone`` with any ``CLONE_NEW*`` flag; ``clone3``
  gets ENOSYS (its flags sit in memory a filter cannot read; glibc then falls back to
  ``clone``, which is checked);
* mounts: ``mount``, ``umount2``, ``pivot_root``, ``chroot`` and the new mount API;
* other processes' memory: ``ptrace``, ``process_vm_readv``/``writev``;
* kernel attack surface: ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_*``,
  keyrings (``keyctl``, ``add_key``, ``request_key``), modules, ``kexec``, file handles
  (``open_by_handle_at``), ``iopl``/``ioperm``, clock and swap and reboot calls;
* ``kill(-1)``: in mode ``plain`` without root the program shares the engine's uid;
* System V IPC and POSIX message queues (``shmget``, ``msgget``, ``semget``, ``mq_open``):
  their objects outlive the process inside the worker's IPC namespace, so they would carry
  memory and state from one test to the next, outside the per-test tmpfs.

Syscalls of other ABIs (i386 ``int 0x80``, x32) are killed by libseccomp's bad-arch action.
"""

from __future__ import annotations

import errno
import os
from typing import Any

DENY = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "name_to_handle_at",
    "open_by_handle_at",
    "iopl",
    "ioperm",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "quotactl",
    "shmget",
    "msgget",
    "semget",
    "mq_open",
)
CLONE_NEW = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}


def build() -> tuple[bytes, dict[str, Any]]:
    """The compiled BPF program, and what it denies (for ``bdc sandbox info``).

    Raises ImportError when pyseccomp (or libseccomp) is missing, OSError when it fails."""
    import pyseccomp as sc

    f = sc.SyscallFilter(sc.ALLOW)
    denied, unknown = [], []
    for name in DENY:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
            denied.append(name)
        except (ValueError, OSError):
            unknown.append(name)  # not a syscall of this kernel/arch
    for flag in CLONE_NEW.values():
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    # kill(-1): every process the caller may signal. Under the engine's own uid (mode plain
    # without root) that is the engine itself; pid_t is 32 bits, whatever the upper half holds
    f.add_rule(sc.ERRNO(errno.EPERM), "kill", sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, 0xFFFFFFFF))
    fd = os.memfd_create("bdc-seccomp")
    try:
        with os.fdopen(os.dup(fd), "wb") as out:
            f.export_bpf(out)
        size = os.lseek(fd, 0, os.SEEK_END)
        bpf = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    return bpf, {
        "denied": denied + ["clone(CLONE_NEW*)", "clone3 (ENOSYS)", "kill(-1)"],
        "not_on_this_kernel": unknown,
        "binding": f"pyseccomp {getattr(sc, '__version__', '?')}, libseccomp API level {sc.get_api()}",
    }
