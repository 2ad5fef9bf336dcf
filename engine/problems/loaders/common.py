"""What every row loader shares: turning rows into problems with bad rows named or skipped."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.errors import DatasetError
from engine.problems.model import Problem
from engine.problems.rows import read_rows, skip_or_raise

RowParser = Callable[[dict[str, Any], str], Problem]
Warn = Callable[[str], None]


def parse_rows(
    rows: Iterable[tuple[int, dict[str, Any]]],
    parse: RowParser,
    source: str,
    *,
    skip_bad: bool = False,
    warn: Warn | None = None,
) -> list[Problem]:
    """Parse rows; a bad row raises DatasetError naming ``source:line`` unless ``skip_bad``."""
    problems: list[Problem] = []
    for line, row in rows:
        where = f"{source}:{line}"
        try:
            try:
                problem = parse(row, where)
            except (KeyError, TypeError, ValueError, SyntaxError) as e:
                raise DatasetError(f"{where}: malformed row ({type(e).__name__}: {e})") from e
            if not problem.public_tests and not problem.private_tests:
                raise DatasetError(f"{where}: row {problem.id!r} has no tests")
        except DatasetError as err:
            skip_or_raise(err, skip_bad, warn)
            continue
        problems.append(problem)
    return problems


def load_file(path: str | Path, parse: RowParser, *, skip_bad: bool = False, warn: Warn | None = None) -> list[Problem]:
    """A file (JSONL, JSON, parquet), a folder or glob of parquet shards, or a ``datasets``
    ``save_to_disk`` folder (engine/problems/loaders/shards.py). Errors name the shard and row."""
    from engine.problems.loaders.shards import is_glob, is_saved_dataset, parquet_shards, saved_dataset_rows

    p = Path(path).expanduser()
    if p.is_dir() and is_saved_dataset(p):
        return load_iterable(saved_dataset_rows(p), parse, str(p), skip_bad=skip_bad, warn=warn)
    if p.is_dir() or is_glob(path):
        problems: list[Problem] = []
        for shard in parquet_shards(path):
            problems += load_file(shard, parse, skip_bad=skip_bad, warn=warn)
        return problems
    return parse_rows(read_rows(path, skip_bad=skip_bad, warn=warn), parse, str(path), skip_bad=skip_bad, warn=warn)


def load_iterable(rows: Iterable[dict[str, Any]], parse: RowParser, source: str, **kw: Any) -> list[Problem]:
    """Rows from a ``datasets.Dataset`` or any iterable of dicts (line = row index + 1)."""
    return parse_rows(((i, dict(r)) for i, r in enumerate(rows, start=1)), parse, source, **kw)
