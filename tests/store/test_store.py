"""Run store: migrations, refusal of newer schemas, writer/reader concurrency, crash safety."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.errors import StoreError, StoreWriteError
from engine.problems import load_dataset
from engine.store import SCHEMA_VERSION, Store
from engine.store.schema import MIGRATIONS, migrate


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}


async def test_fresh_file_gets_latest_schema_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "bdc.db"
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"runs", "events", "llm_calls", "llm_cache", "sandbox_runs", "jobs", "metrics"} <= _tables(path)


@pytest.mark.parametrize("start_version", range(0, SCHEMA_VERSION))
async def test_migrates_from_each_earlier_version_keeping_data(tmp_path: Path, start_version: int) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for target in range(1, start_version + 1):
        conn.executescript(MIGRATIONS[target - 1] + f"\nPRAGMA user_version = {target};")
    if start_version >= 1:
        conn.execute("INSERT INTO runs (id, status, created_at) VALUES ('r-old', 'finished', 1.0)")
    conn.close()
    store = await Store.open(path)
    try:
        if start_version >= 1:
            assert (await store.run("r-old")).status == "finished"
        job = await store.create_job("train", {"k": 2})
        assert (await store.job(job)).config == {"k": 2}
    finally:
        await store.close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this bdc"):
        await Store.open(path)
    with pytest.raises(StoreError, match="newer than this bdc"):
        await Store.open(path, readonly=True)
    with sqlite3.connect(path) as c:  # and the file was not touched
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


async def test_newer_schema_is_refused_before_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as c:  # a rollback-journal file, as a newer bdc might leave it
        c.execute("CREATE TABLE future (x)")
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer than this bdc"):
        await Store.open(path)
    assert path.read_bytes() == before  # not switched to WAL, not migrated
    assert not Path(f"{path}-wal").exists()


async def test_missing_directory_is_refused_without_creating_anything(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "dir" / "x.db"
    with pytest.raises(StoreError, match="directory .*typo/dir does not exist"):
        await Store.open(path)
    assert not (tmp_path / "typo").exists()
    # a new store in an existing directory is fine
    async with await Store.open(tmp_path / "x.db"):
        pass
    assert (tmp_path / "x.db").exists()


async def test_bdc_data_dir_is_created_for_the_default_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.paths import default_db_path

    home = tmp_path / "fresh-home"
    monkeypatch.setenv("BDC_HOME", str(home))
    monkeypatch.delenv("BDC_DB", raising=False)
    async with await Store.open(default_db_path()):
        pass
    assert (home / "bdc.db").exists()


def test_cli_with_a_mistyped_db_directory_says_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "--db", str(tmp_path / "typo" / "dir" / "x.db"), "runs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "typo").exists()


async def _store_failing_at_seq(tmp_path: Path, seq: int) -> tuple[Store, str]:
    """A store whose events table refuses the event with ``seq`` (a real SQLite failure)."""
    path = tmp_path / "bdc.db"
    store = await Store.open(path)
    rid = await store.create_run(dataset=None, strategy=None, agents=[], config={}, run_id="r-fail")
    await store.claim_run(rid)
    with sqlite3.connect(path) as c:
        c.execute(
            f"CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.seq = {seq} "
            "BEGIN SELECT RAISE(ABORT, 'injected disk failure'); END"
        )
    return store, rid


async def test_a_failed_batch_is_sticky_loud_and_leaves_a_dense_prefix(tmp_path: Path) -> None:
    store, rid = await _store_failing_at_seq(tmp_path, 8)
    for i in range(5):
        store.emit(rid, "tick", {"i": i})
    await store.flush()  # seq 1..5 committed
    for i in range(5, 10):  # seq 6..10 in one batch, no flush waiter: the batch fails at seq 8
        store.emit(rid, "tick", {"i": i})
    for _ in range(100):
        if store.write_error is not None:
            break
        await asyncio.sleep(0.01)
    assert store.write_error is not None and "injected disk failure" in str(store.write_error)
    # every later write and flush says so; a refused emit does not consume a seq
    with pytest.raises(StoreWriteError, match="injected disk failure"):
        store.emit(rid, "tick", {"i": 10})
    with pytest.raises(StoreWriteError):
        await store.flush()
    with pytest.raises(StoreWriteError):
        store.record_llm_call({"run_id": rid})
    # the lost rows are kept in memory, and the run says why it stopped
    assert [p[1] for sql, p in store.unwritten if "INTO events" in sql] == [6, 7, 8, 9, 10]
    await store.close()  # already surfaced: closing does not raise again
    reader = await Store.open(tmp_path / "bdc.db", readonly=True)
    try:
        events = await reader.events(rid)
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]  # dense prefix: nothing committed after the hole
        run = await reader.run(rid)
        assert run.status == "failed" and "injected disk failure" in (run.error or "")
    finally:
        await reader.close()


async def test_a_failure_nobody_saw_is_raised_by_close(tmp_path: Path) -> None:
    store, rid = await _store_failing_at_seq(tmp_path, 1)
    store.emit(rid, "tick", {"i": 0})
    with pytest.raises(StoreWriteError, match="injected disk failure"):
        await store.close()
    assert store._rconn is None and store._wconn is None  # closed all the same


async def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open run store"):
        await Store.open(path)


def test_migrate_refuses_directly() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError):
        migrate(conn)


async def test_run_lifecycle_problems_and_events(tmp_path: Path) -> None:
    problems = load_dataset("humaneval")[:3]
    async with await Store.open(tmp_path / "bdc.db") as store:
        rid = await store.create_run(
            dataset="humaneval", strategy="mcts", agents=["a", "b"], config={"rollouts": 4}, problems=problems
        )
        await store.claim_run(rid)
        seqs = [store.emit(rid, "tick", {"i": i}, problem_id=problems[0].id, node_id=str(i)) for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        await store.flush()
        run = await store.run(rid[:12])  # unambiguous prefix
        assert run.status == "running" and run.agents == ["a", "b"] and run.config == {"rollouts": 4}
        rows = await store.run_problems(rid)
        assert [r["problem_id"] for r in rows] == [p.id for p in problems]
        assert [e.seq for e in await store.events(rid, after=2)] == [3, 4, 5]
        assert [e.payload["i"] for e in await store.events(rid, after=1, until=3)] == [1, 2]
        assert [e.seq for e in await store.events(rid, limit=2, newest=True)] == [4, 5]
        assert [e.seq for e in await store.events(rid, until=4, limit=2, newest=True)] == [3, 4]
        store.set_problem_result(rid, problems[0].id, "finished", {"pr": 1.0})
        await store.set_run_status(rid, "finished")
        assert (await store.run(rid)).finished_at is not None
        assert (await store.run_problems(rid))[0]["result"] == {"pr": 1.0}
        await store.delete_run(rid)
        assert await store.events(rid) == []
        with pytest.raises(StoreError, match="no run"):
            await store.run(rid)


async def test_llm_calls_cache_and_sandbox_records(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "bdc.db") as store:
        rid = await store.create_run(dataset=None, strategy=None, agents=[], config={})
        store.record_llm_call(
            {"run_id": rid, "node_id": "1", "model": "m", "tokens_in": 10, "tokens_out": 5, "cost": 0.01}
        )
        store.record_llm_call(
            {"run_id": rid, "node_id": "2", "model": "m", "tokens_in": 1, "tokens_out": 1, "cached": True}
        )
        store.cache_put("k1", "m", {"text": "hi"})
        assert await store.cache_get("k1") == {"text": "hi"}  # visible before the commit
        await store.flush()
        assert await store.cache_get("k1") == {"text": "hi"}
        assert await store.cache_get("missing") is None
        totals = await store.llm_totals(rid)
        assert totals["calls"] == 2 and totals["tokens_in"] == 11 and totals["cached"] == 1
        assert len(await store.llm_calls(rid, node_id="1")) == 1
        store.record_sandbox_run(
            run_id=rid,
            problem_id="p",
            node_id="1",
            policy="a",
            result={"results": [{"verdict": "passed", "time_s": 0.1}, {"verdict": "wrong_answer"}]},
        )
        await store.flush()
        row = (await store._fetchdicts("SELECT passed, total, pass_rate FROM sandbox_runs"))[0]
        assert row == {"passed": 1, "total": 2, "pass_rate": 0.5}


async def test_jobs_progress_and_metrics(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "bdc.db") as store:
        jid = await store.create_job("train", {"epochs": 1})
        await store.claim_job(jid)
        store.job_progress(jid, 0.5, "step 5/10")
        for step in range(3):
            store.metric("loss", 2.0 - step, step=step, job_id=jid)
        await store.finish_job(jid, "finished", result={"ok": True})
        job = await store.job(jid)
        assert (job.status, job.progress, job.message, job.result) == ("finished", 0.5, "step 5/10", {"ok": True})
        assert [m["value"] for m in await store.metrics(jid, "loss")] == [2.0, 1.0, 0.0]


async def test_reader_in_another_connection_tails_every_event_in_order(tmp_path: Path) -> None:
    path = tmp_path / "bdc.db"
    total = 3000
    async with await Store.open(path) as writer:
        rid = await writer.create_run(dataset=None, strategy=None, agents=[], config={})
        await writer.claim_run(rid)
        reader = await Store.open(path, readonly=True)
        seen: list[int] = []

        async def tail() -> None:
            last = 0
            while last < total:
                for e in await reader.events(rid, after=last):
                    seen.append(e.payload["i"])
                    last = e.seq
                await asyncio.sleep(0.001)

        task = asyncio.create_task(tail())
        for i in range(total):
            writer.emit(rid, "tick", {"i": i})
            if i % 100 == 0:
                await asyncio.sleep(0)
        await writer.flush()
        await asyncio.wait_for(task, 30)
        await reader.close()
    assert seen == list(range(total))


WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from engine.store import Store

    async def main():
        store = await Store.open(sys.argv[1])
        rid = await store.create_run(dataset=None, strategy=None, agents=[], config={}, run_id="r-crash")
        await store.claim_run(rid)
        i = 0
        while True:
            store.emit(rid, "tick", {"i": i})
            i += 1
            if i % 50 == 0:
                await store.flush()
                print(i, flush=True)

    asyncio.run(main())
    """
)


async def test_kill_9_of_a_writer_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "bdc.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    committed = 0
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while committed < 2000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        committed = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert committed >= 2000, "writer made no progress"
    store = await Store.open(path)
    try:
        events = await store.events("r-crash")
        assert len(events) >= committed  # every flushed event survived
        assert [e.payload["i"] for e in events] == list(range(len(events)))  # dense, ordered
        assert (await store.run("r-crash")).status == "running"
        assert await store.mark_dead_runs_interrupted() == ["r-crash"]
        assert (await store.run("r-crash")).status == "interrupted"
        # resuming continues the sequence after the last stored event
        await store.claim_run("r-crash")
        assert store.emit("r-crash", "tick", {"i": len(events)}) == len(events) + 1
    finally:
        await store.close()


async def test_events_decode_payloads_on_first_use_into_the_declared_type(tmp_path: Path) -> None:
    from engine.search import events as ev
    from engine.search.events import EventPayloadError

    async with await Store.open(tmp_path / "bdc.db") as store:
        rid = await store.create_run(dataset=None, strategy=None, agents=[], config={})
        await store.claim_run(rid)
        store.emit(rid, "tick", {"i": 1}, problem_id="p")
        store.emit(rid, ev.SELECT, ev.Select(path=["0", "1"], rollout=1), problem_id="p")
        store.emit(rid, ev.ROLLOUT_FINISHED, {"rollout": 1}, problem_id="p")  # a dict is validated, then stored
        with pytest.raises(EventPayloadError, match="rolout"):  # a misspelt field is refused at the writer
            store.emit(rid, ev.ROLLOUT_FINISHED, {"rolout": 2}, problem_id="p")
        await store.flush()
        tick, select, done = await store.events(rid)
        assert select._payload is None  # still JSON
        assert select.payload == ev.Select(path=["0", "1"], rollout=1) and select.payload.path == ["0", "1"]
        assert done.payload.rollout == 1 and tick.payload == {"i": 1}  # a kind outside the vocabulary stays a dict
        assert [e.seq for e in (tick, select, done)] == [1, 2, 3]  # the refused event took no seq
        with pytest.raises(AttributeError):
            select.payload.rollouts  # noqa: B018 - a wrong field name fails instead of reading a default


def test_payloads_written_before_typed_events_still_decode_and_bad_ones_are_named() -> None:
    """The JSON format is unchanged: dicts an older bdc wrote (fields added later missing) load."""
    from engine.search import events as ev
    from engine.search.events import EventPayloadError
    from engine.store.records import Event

    old = [
        (ev.PROBLEM_STARTED, '{"difficulty":"easy","statement_preview":"x","public_tests":1,"private_tests":2}'),
        (
            ev.SIMULATE,
            '{"node":"1","rollout":1,"pass_rate":0.5,"solutions":[{"policy":"a","code":"x",'
            '"pass_rate":0.5,"passed":1,"total":2,"verdicts":["passed","wrong_answer"],'
            '"feedback":"","parse_error":null}]}',
        ),
        (ev.RUN_FINISHED, '{"status":"finished","metrics":{}}'),
    ]
    started, sim, done = (Event("r", i, 0.0, k, "p", None, raw).payload for i, (k, raw) in enumerate(old, 1))
    assert started.strategy is None and sim.solutions[0].error is False and done.error is None
    bad = Event("r", 9, 0.0, ev.SIMULATE, "p", "1", '{"node":"1","rollout":1,"pas_rate":0.5}')
    with pytest.raises(EventPayloadError, match="pas_rate"):
        bad.payload  # noqa: B018
