"""The sizes ``bdc reproduce --scale`` runs at.

* ``tiny``  - CI in minutes: scripted agents (``scripted:canonical`` / ``scripted:broken``),
  a tiny random Llama as the base model, HumanEval (which ships) for the data and the test
  split, a few steps of training. Numbers exercise the pipeline; they say nothing about it.
* ``small`` - a 2-core CPU in about two hours: the configured agents (the local pair by
  default) and the installed base model. Sized from measured rates: one problem per
  difficulty, one rollout of one thought (a Table 1 problem then costs at most ~52 LLM calls
  over its 13 rows), 10 MBPP train problems (the data step needs solved problems: MBPP's
  short functions are within a 0.5B model's reach, 7 of 10 in the measured run; the APPS file
  at hand is a 10-row sample), 6 test problems, at most 8 training steps (one epoch of
  the few pairs is fewer). Measured on 2 cores shared with three other jobs, niced
  (Qwen2.5-Coder-0.5B + SmolLM2-135M, ~3 LLM calls a minute): data search 16 min, clustering
  and all training 4.5 min, Table 2 21 min, Table 3 20 min, Table 1's APPS rows 28 min (all
  on transformers), its CodeContests rows 9 min (on llama.cpp, the default where installed):
  98 min in all. The README's "Reproducing the paper at small scale" has the tables of that run.
* ``paper`` - the paper's sizes (Table 1: the full APPS / CodeContests test subsets with 16
  rollouts; all of the train split for data), for GPU and hosted-model users.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TABLE1_STRATEGIES = ("zero-shot", "reflexion", "tot", "lats", "rethinkmcts", "mcts-single", "mcts")
SOLVERS = ("base", "sft", "experts", "merge:linear", "merge:ties", "twin", "disenlora")


@dataclass(frozen=True)
class Scale:
    name: str
    table1_datasets: tuple[str, ...]  # searched for Table 1 when a file is found
    per_difficulty: int | None  # problems per difficulty in Table 1 (None: all)
    strategies: tuple[str, ...]
    rollouts: int
    thoughts: int
    data_dataset: str  # the train and test splits come from it
    train_problems: int | None  # None: the whole train half
    test_problems: int | None
    table3_datasets: tuple[str, ...]
    table3_limit: int | None
    clusters: int
    train_steps: int | None  # None: one epoch
    max_new_tokens: int
    agents: tuple[str, ...] = ()  # empty: the config file's agents
    tiny_base: bool = False  # build a tiny random Llama as the base model
    train: dict = field(default_factory=dict)


SCALES: dict[str, Scale] = {
    "tiny": Scale(
        "tiny",
        ("apps", "codecontests"),
        1,
        ("zero-shot", "reflexion", "rethinkmcts", "mcts"),
        2,
        1,
        "humaneval",
        8,
        4,
        ("humaneval", "mbpp"),
        2,
        2,
        2,
        8,
        agents=("good=scripted:canonical", "bad=scripted:broken"),
        tiny_base=True,
        train={"batch_size": 2, "max_length": 256},
    ),
    "small": Scale(
        "small",
        ("apps", "codecontests"),
        1,
        TABLE1_STRATEGIES,
        1,
        1,
        "mbpp",
        10,
        6,
        ("humaneval", "mbpp"),
        6,
        2,
        8,
        384,
        train={"batch_size": 2, "max_length": 512},
    ),
    "paper": Scale(
        "paper",
        ("apps", "codecontests"),
        None,
        TABLE1_STRATEGIES,
        16,
        3,
        "apps",
        None,
        None,
        ("humaneval", "mbpp", "apps", "codecontests"),
        None,
        4,
        None,
        2048,
    ),
}
