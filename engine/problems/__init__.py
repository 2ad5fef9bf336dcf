"""Problems and datasets: one Problem model, loaders for HumanEval, MBPP, APPS, CodeContests."""

from engine.problems.model import Problem, TestCase, TestStyle, split_public_private
from engine.problems.registry import (
    DATASETS,
    DatasetInfo,
    dataset_dirs,
    info,
    load_dataset,
    resolve_path,
    select_subset,
)

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "Problem",
    "TestCase",
    "TestStyle",
    "dataset_dirs",
    "info",
    "load_dataset",
    "resolve_path",
    "select_subset",
    "split_public_private",
]
