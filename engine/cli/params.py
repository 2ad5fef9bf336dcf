"""Click parameter types that refuse bad values before any work starts.

A wrong ``--timeout`` (negative, ``nan``, ``inf``), ``--k 0`` or an ``--out`` in a folder
that does not exist is a usage error naming the option, printed before a sandbox starts or
a model loads, so nothing computed is lost to a bad argument.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float within bounds that is a real number: ``nan`` and ``inf`` are refused
    (click's FloatRange lets ``nan`` through, as every comparison with it is false)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return rv


class IntList(click.ParamType):
    """Comma-separated integers, each at least ``min`` (``--k 1,10,100``); sorted, unique."""

    name = "integers"

    def __init__(self, min: int = 1) -> None:
        self.min = min

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        try:
            ints = [int(v) for v in items]
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers.", param, ctx)
        if not ints:
            self.fail("give at least one integer.", param, ctx)
        bad = [i for i in ints if i < self.min]
        if bad:
            self.fail(f"{bad[0]} is not >= {self.min}.", param, ctx)
        return sorted(set(ints))


class OutputFile(click.Path):
    """A file to write: its folder must exist and be writable, and it must not be a folder.
    Checked while parsing, so a typo fails before the work instead of after it."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        path = Path(super().convert(value, param, ctx))
        folder = path.expanduser().parent
        if path.is_dir():
            self.fail(f"{str(path)!r} is a directory, not a file.", param, ctx)
        if not folder.is_dir():
            self.fail(f"folder {str(folder)!r} does not exist (create it first).", param, ctx)
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            self.fail(f"{str(path)!r} is not writable.", param, ctx)
        return path


def positive_int() -> click.IntRange:
    """An integer >= 1 (counts, limits, workers)."""
    return click.IntRange(min=1)


def seconds() -> FiniteFloat:
    """A duration > 0 in seconds."""
    return FiniteFloat(min=0, min_open=True)


def non_negative() -> FiniteFloat:
    """A finite number >= 0 (weights, budgets)."""
    return FiniteFloat(min=0)


def fraction() -> FiniteFloat:
    """A finite number in [0, 1] (rates, densities, discounts)."""
    return FiniteFloat(min=0, max=1)
