"""Datasets stored as folders: parquet shards (how APPS and CodeContests ship on the Hub)
and Hugging Face ``datasets`` ``save_to_disk`` folders.

A parquet path may be a folder (every ``*.parquet`` below it) or a glob
(``apps/data/test-*.parquet``). The shards must form one split, complete: Hub names
``<split>-00000-of-00002.parquet`` are checked for missing pieces, and a folder that holds
several splits (``train-*`` and ``test-*``) is refused with the globs to choose from,
never silently merged - a training split must not leak into an evaluation.

A ``save_to_disk`` folder (``state.json`` + ``dataset_info.json``, or a ``dataset_dict.json``
of splits) is read with ``datasets.load_from_disk`` when the ``datasets`` package is installed
(it is not a dependency of bdc); a DatasetDict of several splits needs the split's subfolder.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import DatasetError

_HUB_SHARD = re.compile(r"^(?P<split>.+?)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
_GLOB_CHARS = set("*?[")


def is_glob(path: str | Path) -> bool:
    return bool(_GLOB_CHARS & set(str(path)))


def is_saved_dataset(folder: Path) -> bool:
    """A ``datasets`` ``save_to_disk`` folder (a Dataset or a DatasetDict)."""
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def parquet_shards(path: str | Path) -> list[Path]:
    """The parquet files ``path`` (a folder or a glob) names, one complete split, in shard order."""
    text = str(Path(path).expanduser())
    files = (
        sorted(Path(p) for p in glob.glob(text, recursive=True))
        if is_glob(text)
        else sorted(Path(text).rglob("*.parquet"))
    )
    files = [f for f in files if f.is_file() and f.suffix == ".parquet"]
    if not files:
        raise DatasetError(f"{text}: no .parquet files there")
    root = Path(text) if not is_glob(text) else Path(glob.escape(text)).parent
    groups: dict[tuple[str, str], list[Path]] = {}
    for f in files:
        m = _HUB_SHARD.match(f.name)
        groups.setdefault((str(f.parent), m["split"] if m else ""), []).append(f)
    if len(groups) > 1:
        choices = sorted(str(Path(d) / (f"{s}-*.parquet" if s else "*.parquet")) for d, s in groups)
        raise DatasetError(f"{text} holds several splits; pick one: {', '.join(choices)}")
    [(_, split)] = groups
    if split:
        _check_complete(files, root)
    return files


def _check_complete(files: list[Path], root: Path) -> None:
    ns = {int(_HUB_SHARD.match(f.name)["n"]) for f in files}  # type: ignore[index]
    have = {int(_HUB_SHARD.match(f.name)["i"]) for f in files}  # type: ignore[index]
    if len(ns) != 1:
        raise DatasetError(f"{root}: shards disagree on their count ({sorted(ns)})")
    missing = sorted(set(range(ns.pop())) - have)
    if missing:
        raise DatasetError(f"{root}: missing shard(s) {', '.join(str(i) for i in missing)} of {files[0].name}'s split")


def saved_dataset_rows(folder: Path) -> Iterable[dict[str, Any]]:
    """Rows of a ``save_to_disk`` folder, through ``datasets`` (when installed)."""
    try:
        import datasets
    except ImportError:
        raise DatasetError(
            f"{folder} is a Hugging Face `datasets` folder (save_to_disk); reading it needs the "
            "`datasets` package (pip install datasets), or export it to parquet"
        ) from None
    ds = datasets.load_from_disk(str(folder))
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DatasetError(
                f"{folder} holds splits {', '.join(ds)}; pass the split's folder, e.g. {folder / next(iter(ds))}"
            )
        ds = next(iter(ds.values()))
    return ds
