"""The event vocabulary of a run: what the search writes and what every viewer folds.

Every event is stored with ``run_id, seq, ts, kind, problem_id, node_id, payload``.
``TreeState.apply`` (engine/search/tree.py) is the one fold over these kinds; the search
itself mutates its tree only through that fold, so a replayed log rebuilds exactly the
tree the search held.

Payloads (node ids are strings unique within a problem; the root is ``"0"``):

run_started       {config}
problem_started   {difficulty, statement_preview, public_tests: int, private_tests: int}
root              {node: "0", statement_preview}
select            {path: [ids root..leaf], rollout: int}
expand            {parent, rollout, children: [{node, thought, policy, prior, depth, terminal}]}
simulate          {node, rollout, pass_rate, solutions: [{policy, code, pass_rate, passed, total,
                    verdicts: [str], feedback, parse_error}]}
backup            {rollout, path: [ids], reward, q: {id: float}, n: {id: int}}
prune             {node, parent, rollout, pass_rate, parent_pass_rate}
reflect           {node, rollout, policy, summary}
refine            {node, rollout, policy, old_thought, new_thought, summary}
solution_found    {node, policy, code, public_pass_rate}
rollout_finished  {rollout}
llm_error         {policy, stage, message}
budget_exhausted  {reason}
problem_finished  {node, policy, code, public_pass_rate, private_pass_rate, passed_private,
                   rollouts, calls, tokens, cost, wall_s, status}
run_finished      {status, metrics}
"""

from __future__ import annotations

RUN_STARTED = "run_started"
PROBLEM_STARTED = "problem_started"
ROOT = "root"
SELECT = "select"
EXPAND = "expand"
SIMULATE = "simulate"
BACKUP = "backup"
PRUNE = "prune"
REFLECT = "reflect"
REFINE = "refine"
SOLUTION_FOUND = "solution_found"
ROLLOUT_FINISHED = "rollout_finished"
LLM_ERROR = "llm_error"
BUDGET_EXHAUSTED = "budget_exhausted"
PROBLEM_FINISHED = "problem_finished"
RUN_FINISHED = "run_finished"

ALL_KINDS = (
    RUN_STARTED, PROBLEM_STARTED, ROOT, SELECT, EXPAND, SIMULATE, BACKUP, PRUNE, REFLECT,
    REFINE, SOLUTION_FOUND, ROLLOUT_FINISHED, LLM_ERROR, BUDGET_EXHAUSTED, PROBLEM_FINISHED,
    RUN_FINISHED,
)
# kinds a viewer lets the user jump between
MILESTONES = (PRUNE, REFINE, SOLUTION_FOUND, LLM_ERROR, BUDGET_EXHAUSTED, PROBLEM_FINISHED)
