"""Folders of parquet shards (the Hub's APPS / CodeContests layout) and `datasets`
save_to_disk folders load like the JSONL they hold; bad folders fail in one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import DatasetError
from engine.problems import load_dataset

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
DATA = Path("/work/shared/data")


def _rows(name: str) -> list[dict]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shards(folder: Path, split: str, rows: list[dict], n: int) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    size = -(-len(rows) // n)
    for i in range(n):
        pq.write_table(
            pa.Table.from_pylist(rows[i * size : (i + 1) * size]),
            folder / "data" / f"{split}-{i:05d}-of-{n:05d}.parquet",
        )


def _same(a, b) -> None:
    assert [p.id for p in a] == [p.id for p in b]
    assert [(p.public_tests, p.private_tests, p.difficulty, p.statement) for p in a] == [
        (p.public_tests, p.private_tests, p.difficulty, p.statement) for p in b
    ]


@pytest.mark.parametrize("name,file", [("apps", "apps_sample.jsonl"), ("codecontests", "codecontests_sample.jsonl")])
def test_hub_parquet_shards_load_like_the_jsonl(tmp_path: Path, name: str, file: str) -> None:
    rows = _rows(file)
    _shards(tmp_path / name, "test", rows, 2)
    expected = load_dataset(name, DATA / file)
    assert len(expected) == len(rows)
    _same(load_dataset(name, tmp_path / name), expected)  # the folder
    _same(load_dataset(name, tmp_path / name / "data" / "test-*.parquet"), expected)  # a glob


def test_several_splits_or_a_missing_shard_are_refused(tmp_path: Path) -> None:
    rows = _rows("apps_sample.jsonl")
    folder = tmp_path / "apps"
    _shards(folder, "test", rows[:6], 3)
    _shards(folder, "train", rows[6:], 1)
    with pytest.raises(DatasetError, match=r"several splits; pick one: .*test-\*\.parquet, .*train-\*\.parquet"):
        load_dataset("apps", folder)
    assert len(load_dataset("apps", folder / "data" / "test-*.parquet")) == 6
    (folder / "data" / "test-00001-of-00003.parquet").unlink()
    with pytest.raises(DatasetError, match=r"missing shard\(s\) 1 of"):
        load_dataset("apps", folder / "data" / "test-*.parquet")
    with pytest.raises(DatasetError, match="no .parquet files"):
        load_dataset("apps", tmp_path / "empty*.parquet")


def test_a_bad_row_names_its_shard(tmp_path: Path) -> None:
    rows = _rows("apps_sample.jsonl")
    rows[7] = {k: v for k, v in rows[7].items() if k != "input_output"}
    _shards(tmp_path / "apps", "test", [{**r, "input_output": r.get("input_output")} for r in rows], 2)
    with pytest.raises(DatasetError, match=r"test-00001-of-00002\.parquet:3: .*input_output"):
        load_dataset("apps", tmp_path / "apps")
    problems = load_dataset("apps", tmp_path / "apps", skip_bad=True, warn=lambda m: None)
    assert len(problems) == len(rows) - 1


def test_saved_to_disk_folder(tmp_path: Path) -> None:
    rows = _rows("apps_sample.jsonl")
    folder = tmp_path / "saved"
    try:
        import datasets
    except ImportError:
        folder.mkdir()
        (folder / "state.json").write_text("{}")
        (folder / "dataset_info.json").write_text("{}")
        with pytest.raises(DatasetError, match=r"needs the `datasets` package"):
            load_dataset("apps", folder)
        return
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    _same(load_dataset("apps", folder), load_dataset("apps", DATA / "apps_sample.jsonl"))
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_list(rows[:4]), "train": datasets.Dataset.from_list(rows[4:])}
    ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DatasetError, match="holds splits test, train"):
        load_dataset("apps", tmp_path / "dd")
    assert len(load_dataset("apps", tmp_path / "dd" / "test")) == 4


def test_datasets_show_reads_a_folder_of_shards(tmp_path: Path, bdc_home: Path) -> None:
    """`bdc datasets show --path DIR` takes the folders the loader takes (it refused any folder)."""
    from click.testing import CliRunner

    from engine.cli import cli as main

    rows = _rows("apps_sample.jsonl")
    _shards(tmp_path / "apps", "test", rows, 2)
    first = load_dataset("apps", DATA / "apps_sample.jsonl")[0]
    runner = CliRunner(env={"COLUMNS": "200"})
    out = runner.invoke(main, ["datasets", "show", "apps", "--path", str(tmp_path / "apps")], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert f"apps: {len(rows)} problems" in out.output
    glob = str(tmp_path / "apps" / "data" / "test-*.parquet")
    out = runner.invoke(main, ["datasets", "show", "apps", first.id, "--path", glob], catch_exceptions=False)
    assert out.exit_code == 0 and first.id in out.output, out.output
