"""Logging: ``--log-level``, a log file per invocation, run and job, tracebacks there and
one line on the screen; every file bdc writes is owner-only."""

from __future__ import annotations

import asyncio
import stat
import sys
import time
from pathlib import Path

from engine.store import Store


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_log_level_is_a_choice_and_reaches_the_log(bdc, bdc_home: Path):
    r = bdc("--log-level", "loud", "runs")
    assert r.code == 2 and "'loud' is not one of" in r.err
    assert bdc("--log-level", "DEBUG", "runs").code == 0
    text = (bdc_home / "logs" / "bdc.log").read_text()
    assert "DEBUG" in text and "engine.cli" in text and "runs" in text
    assert _mode(bdc_home / "logs" / "bdc.log") == 0o600 and _mode(bdc_home / "logs") == 0o700


def test_default_level_writes_no_debug(bdc, bdc_home: Path):
    assert bdc("runs").code == 0
    log = bdc_home / "logs" / "bdc.log"
    assert not log.exists() or "DEBUG" not in log.read_text()


def _jobs(db: Path) -> list:
    async def go() -> list:
        async with await Store.open(db) as store:
            return await store.jobs()

    return asyncio.run(go())


def test_a_failed_job_has_its_own_log_with_the_traceback(bdc, tmp_path: Path):
    db = tmp_path / "bdc.db"
    r = bdc("--db", str(db), "train", "merge", "--out", str(tmp_path / "none"), "--base", str(tmp_path))
    assert r.code == 2 and "Traceback" not in r.err
    [job] = _jobs(db)
    errors = [ln for ln in r.err.splitlines() if ln.startswith("error")]
    assert errors == [f"error: job {job.id} failed: {job.error}"]
    log = tmp_path / "logs" / f"{job.id}.log"
    text = log.read_text()
    assert f"job {job.id} (train) started" in text and "Traceback (most recent call last)" in text
    assert "no experts to merge" in text
    assert _mode(log) == 0o600 and _mode(log.parent) == 0o700


def test_a_detached_job_logs_to_its_file_once(tmp_path: Path, bdc_home: Path):
    from engine.jobs import launch_job, log_dir

    db = tmp_path / "bdc.db"

    async def create() -> str:
        async with await Store.open(db) as store:
            return await store.create_job(
                "train", {"mode": "merge", "out": str(tmp_path / "none"), "base": str(tmp_path)}
            )

    job_id = asyncio.run(create())
    launch_job(db, job_id)
    log = log_dir(db) / f"{job_id}.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "error: job" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.2)
    text = log.read_text()
    assert f"error: job {job_id} failed:" in text, text
    assert text.count("Traceback (most recent call last)") == 1  # the record's, not a crash's
    assert text.count("no experts to merge") >= 1 and _mode(log) == 0o600


def test_store_files_are_owner_only_and_foreign_folders_untouched(bdc, tmp_path: Path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    db = folder / "x.db"
    assert bdc("--db", str(db), "runs").code == 0
    assert _mode(db) == 0o600 and _mode(folder) == 0o755
    for suffix in ("-wal", "-shm"):
        side = db.with_name(db.name + suffix)
        assert not side.exists() or _mode(side) == 0o600


def test_an_old_world_readable_store_and_home_are_tightened(bdc, bdc_home: Path):
    import sqlite3

    bdc_home.mkdir(mode=0o755, parents=True)
    bdc_home.chmod(0o755)
    db = bdc_home / "bdc.db"
    sqlite3.connect(db).close()
    db.chmod(0o644)
    assert bdc("runs").code == 0
    assert _mode(db) == 0o600 and _mode(bdc_home) == 0o700


def test_the_real_entry_point_prints_one_line(tmp_path: Path, bdc_home: Path):
    import subprocess

    samples = tmp_path / "s.jsonl"
    samples.write_bytes(b"\xff\xfe not utf-8\n")
    p = subprocess.run(
        [sys.executable, "-m", "engine", "sandbox", "check", "--dataset", "humaneval", str(samples)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        f"error: {samples}:1: not UTF-8 text (bad byte at column 1); save the samples as UTF-8"
    ]
    assert "Traceback" in (bdc_home / "logs" / "bdc.log").read_text()


def test_a_dying_thread_logs_its_traceback_and_prints_one_line(bdc_home: Path, capsys):
    import threading

    from engine import logs

    logs.setup("info")
    try:

        def work() -> None:
            raise RuntimeError("worker broke\nwith detail")

        t = threading.Thread(target=work, name="w1")
        t.start()
        t.join(timeout=10)
    finally:
        logs.teardown()
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: thread w1 died: worker broke"]
    text = (bdc_home / "logs" / "bdc.log").read_text()
    assert "Traceback (most recent call last)" in text and "with detail" in text
