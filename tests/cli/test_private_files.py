"""engine.paths: what bdc creates is owner-only whatever the umask; only its own folders are
tightened when they already exist."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.paths import open_private, private_dir, private_file, private_store, tighten_own_dirs


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the worst case: nothing masked
    yield
    os.umask(old)


def test_created_folders_and_files_are_owner_only(tmp_path: Path, open_umask):
    d = private_dir(tmp_path / "a" / "b" / "c")
    assert [_mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", d)] == [0o700] * 3
    f = private_file(tmp_path / "x" / "f.db")
    assert _mode(f) == 0o600 and _mode(f.parent) == 0o700
    with open_private(tmp_path / "y" / "out.log") as fh:
        fh.write("x")
    assert _mode(tmp_path / "y" / "out.log") == 0o600


def test_existing_files_are_tightened_with_their_sqlite_siblings(tmp_path: Path):
    db = tmp_path / "s.db"
    for p in (db, tmp_path / "s.db-wal", tmp_path / "s.db-shm"):
        p.write_bytes(b"")
        p.chmod(0o644)
    private_store(db)
    assert [_mode(p) for p in (db, tmp_path / "s.db-wal", tmp_path / "s.db-shm")] == [0o600] * 3


def test_foreign_folders_are_left_alone_own_ones_tightened(tmp_path: Path, bdc_home: Path, monkeypatch):
    foreign = tmp_path / "shared"
    foreign.mkdir()
    foreign.chmod(0o755)
    private_dir(foreign)
    private_file(foreign / "x.db")
    assert _mode(foreign) == 0o755 and _mode(foreign / "x.db") == 0o600

    cache = tmp_path / "cache"
    monkeypatch.setenv("BDC_CACHE", str(cache))
    for d in (bdc_home, cache):
        d.mkdir()
        d.chmod(0o755)
    assert set(tighten_own_dirs()) == {bdc_home, cache}
    assert _mode(bdc_home) == _mode(cache) == 0o700
    assert tighten_own_dirs() == []  # already tight: nothing to do
