"""Reading dataset rows from files, with errors that name the file and line.

JSONL (optionally gzipped) is the native format; ``.json`` (a list of rows) and ``.parquet`` (through pyarrow,
when installed) are accepted too. A ``datasets.Dataset`` the user already has can be
passed straight to a loader as an iterable of dicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.errors import DatasetError


def read_rows(
    path: str | Path, *, skip_bad: bool = False, warn: Callable[[str], None] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, row)``; a malformed line raises DatasetError naming file:line,
    or with ``skip_bad`` is reported through ``warn`` and skipped."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"dataset file not found: {path}")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise DatasetError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from e
        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, row
        return
    try:
        if path.suffix == ".gz":
            import gzip

            with gzip.open(path, "rt", encoding="utf-8") as f:
                text = f.read()
        else:
            text = path.read_text(encoding="utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    if path.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
        if not isinstance(rows, list):
            raise DatasetError(f"{path}: expected a JSON list of rows")
        for i, row in enumerate(rows, start=1):
            yield i, _as_row(row, path, i)
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            try:
                row = _as_row(json.loads(line), path, i)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{i}: malformed JSON line ({e.msg} at column {e.colno})") from e
        except DatasetError as err:
            skip_or_raise(err, skip_bad, warn)
            continue
        yield i, row


def skip_or_raise(err: DatasetError, skip_bad: bool, warn: Callable[[str], None] | None) -> None:
    """A bad row stops the load, or with ``skip_bad`` is reported through ``warn``."""
    if not skip_bad:
        raise err
    if warn:
        warn(f"skipped {err}")


def _as_row(row: Any, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DatasetError(f"{path}:{line}: expected a JSON object, got {type(row).__name__}")
    return row


def require(row: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")


def maybe_json(value: Any, where: str, field: str) -> Any:
    """Fields that the HF exports store as JSON strings (APPS) or as nested objects."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{where}: field {field!r} is not valid JSON ({e.msg})") from e
    return value
