"""Where bdc keeps its files (XDG via platformdirs), and keeping them owner-only.

The config may hold an API key and the run store holds every prompt and reply, so bdc
creates its files 0600 in 0700 directories (``private_dir``, ``private_file``) instead of
trusting the umask. Only directories bdc creates, or its own ones (the data, cache and
config folders), are tightened: ``--db /tmp/x.db`` never changes ``/tmp``.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import IO, Any

import platformdirs

APP = "bdc"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# files SQLite keeps beside a store; it creates them with the store's own mode
STORE_SUFFIXES = ("-wal", "-shm", "-journal")

log = logging.getLogger(__name__)


def data_dir() -> Path:
    return Path(os.environ.get("BDC_HOME") or platformdirs.user_data_dir(APP))


def default_db_path() -> Path:
    """``$BDC_DB``, else ``bdc.db`` in the user data dir."""
    env = os.environ.get("BDC_DB")
    return Path(env) if env else data_dir() / "bdc.db"


def cache_dir() -> Path:
    """Converted models, downloaded wheels, adapters: ``$BDC_CACHE`` or the user cache dir."""
    return Path(os.environ.get("BDC_CACHE") or platformdirs.user_cache_dir(APP))


def config_path() -> Path:
    return Path(os.environ.get("BDC_CONFIG") or Path(platformdirs.user_config_dir(APP)) / "config.toml")


def own_dirs() -> list[Path]:
    """bdc's own folders, which it may tighten when it finds them open to others. The config
    file's folder counts only when it is the default one (``BDC_CONFIG`` may point anywhere)."""
    dirs = [data_dir(), cache_dir()]
    if not os.environ.get("BDC_CONFIG"):
        dirs.append(config_path().parent)
    return dirs


def is_own_dir(path: Path) -> bool:
    """Whether ``path`` is one of bdc's own folders (``own_dirs``)."""
    target = path.expanduser().absolute()
    return any(target == d.expanduser().absolute() for d in own_dirs())


def _tighten(path: Path, mode: int) -> bool:
    """chmod ``path`` to ``mode`` when group or others have any access; True if it changed.
    A file someone else owns is left alone (chmod would fail, and it is not ours to change)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid() or not st.st_mode & 0o077:
        return False
    os.chmod(path, mode)
    return True


def private_dir(path: str | Path, *, own: bool | None = None) -> Path:
    """``mkdir -p`` where every directory created is 0700. An existing directory is tightened
    only when it is bdc's (``own``, by default: one of ``own_dirs()``)."""
    path = Path(path).expanduser()
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        os.chmod(d, PRIVATE_DIR)  # mkdir's mode passes through the umask
    if not missing and (own if own is not None else is_own_dir(path)) and _tighten(path, PRIVATE_DIR):
        log.info("made %s owner-only (0700)", path)
    return path


def private_file(path: str | Path, *, siblings: tuple[str, ...] = ()) -> Path:
    """Create ``path`` (and its missing folders) owner-only, or tighten it when it exists;
    the same for the ``path + suffix`` files of ``siblings`` that exist (a store's WAL)."""
    path = Path(path).expanduser()
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.close(fd)
    for p in (path, *(path.with_name(path.name + s) for s in siblings)):
        if _tighten(p, PRIVATE_FILE):
            log.info("made %s owner-only (0600)", p)
    return path


def private_store(path: str | Path) -> Path:
    """The run store file and its SQLite side files, owner-only (called where a store opens)."""
    return private_file(path, siblings=STORE_SUFFIXES)


def open_private(path: str | Path, mode: str = "a", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for a file bdc writes (logs, results): created 0600, folders 0700."""
    path = Path(path).expanduser()
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    _tighten(path, PRIVATE_FILE)
    return os.fdopen(fd, mode, **kwargs)


def tighten_own_dirs() -> list[Path]:
    """Tighten bdc's own folders that exist and are open to others (they were created 0755 by
    older releases or by code that made them with plain ``mkdir``); returns the ones changed."""
    changed = []
    for d in own_dirs():
        try:
            if d.is_dir() and _tighten(d, PRIVATE_DIR):
                changed.append(d)
        except OSError:  # a folder we cannot stat or chmod is not ours to fix
            continue
    return changed
