"""The event vocabulary of a run: one kind constant and one payload type per kind.

Every event is stored as ``run_id, seq, ts, kind, problem_id, node_id, payload`` (the
payload as JSON, see ``engine.store.records.Event``, which decodes it on first use into
the type declared here). ``TreeState.apply`` (engine/search/tree.py) is the one fold over
these kinds; the search itself mutates its tree only through that fold, so a replayed log
rebuilds exactly the tree the search held.

Why typed payloads: a reader writes ``e.payload.pass_rate``, not ``p.get("pass_rate", 0)``,
so a misspelt field fails at once instead of reading a default. Decoding is strict (a
missing required field or an unknown one raises ``EventPayloadError``), and so is writing:
``payload_for(kind, dict)`` validates a dict a strategy passes before it is stored. The JSON
format is the one the dicts always had, so existing stores load unchanged; fields added
after the first release have defaults. Kinds outside this vocabulary (a store is generic)
keep plain dict payloads.

Node ids are strings unique within a problem; the root is ``"0"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, ClassVar

from engine.errors import BdcError

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


class EventPayloadError(BdcError):
    """A payload does not have the fields its kind declares."""


@dataclass(slots=True)
class Payload:
    """Base of the per-kind payloads: strict conversion from and to the stored JSON dicts.

    Not frozen (a frozen dataclass's ``__init__`` costs several times more, and a replay
    decodes tens of thousands of payloads), but never mutated: the fold copies what it keeps."""

    # fields holding a list of nested payload objects: name -> their type
    NESTED: ClassVar[dict[str, type[Payload]]] = {}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Payload:
        try:
            if cls.NESTED:  # nested payloads are flat (Child, Solution): build them directly
                data = dict(data)
                for name, typ in cls.NESTED.items():
                    if name in data:
                        data[name] = [x if isinstance(x, typ) else typ(**x) for x in data[name]]
            return cls(**data)
        except (TypeError, ValueError) as e:  # a missing or unknown field, or not an object at all
            raise EventPayloadError(f"bad {cls.__name__} payload: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        fields, values = _field_reader(type(self))
        out = dict(zip(fields, values(self), strict=True))
        for name in self.NESTED:
            out[name] = [x.to_dict() for x in out[name]]
        return out


_READERS: dict[type, tuple[tuple[str, ...], Any]] = {}


def _field_reader(cls: type[Payload]) -> tuple[tuple[str, ...], Any]:
    """A payload class's field names (its slots, in order) and one C-level getter of all
    their values: the fold turns every ``simulate``'s solutions back into dicts, and a
    getattr per field was a tenth of folding a run."""
    reader = _READERS.get(cls)
    if reader is None:
        fields: tuple[str, ...] = cls.__slots__
        if len(fields) == 1:  # attrgetter of one name returns the value, not a 1-tuple
            name = fields[0]
            reader = _READERS[cls] = (fields, lambda obj: (getattr(obj, name),))
        else:
            reader = _READERS[cls] = (fields, attrgetter(*fields))
    return reader


@dataclass(slots=True)
class RunStarted(Payload):
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ProblemStarted(Payload):
    difficulty: str | None = None
    statement_preview: str = ""
    public_tests: int = 0
    private_tests: int = 0
    strategy: str | None = None


@dataclass(slots=True)
class Root(Payload):
    node: str = "0"
    statement_preview: str = ""


@dataclass(slots=True)
class Select(Payload):
    path: list[str]
    rollout: int


@dataclass(slots=True)
class Child(Payload):
    """One new node of an ``expand``: a policy's thought with its prior (eq. 4)."""

    node: str
    thought: str
    policy: str | None = None
    prior: float = 1.0
    depth: int | None = None  # None: the parent's depth + 1
    terminal: bool = False


@dataclass(slots=True)
class Expand(Payload):
    NESTED: ClassVar[dict[str, type[Payload]]] = {"children": Child}
    parent: str
    rollout: int
    children: list[Child]


@dataclass(slots=True)
class Solution(Payload):
    """One policy's solution from a state (eq. 9), with its public-test verdicts.

    ``error``: the policy call itself failed (not counted in PR's mean, see ``simulate``)."""

    policy: str
    code: str = ""
    pass_rate: float = 0.0
    passed: int = 0
    total: int = 0
    verdicts: list[str] = field(default_factory=list)
    feedback: str = ""
    parse_error: str | None = None
    error: bool = False


@dataclass(slots=True)
class Simulate(Payload):
    """PR(S) of eq. 10: the mean pass rate over *every* policy's solution. A failed policy
    call is a solution with ``error`` set and scores 0: eq. 10 divides by the number of
    policies, and dropping failures would raise PR exactly when fewer policies answered."""

    NESTED: ClassVar[dict[str, type[Payload]]] = {"solutions": Solution}
    node: str
    rollout: int
    pass_rate: float
    solutions: list[Solution] = field(default_factory=list)


@dataclass(slots=True)
class Backup(Payload):
    rollout: int
    path: list[str]
    reward: float
    q: dict[str, float] = field(default_factory=dict)
    n: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Prune(Payload):
    node: str
    parent: str
    rollout: int
    pass_rate: float | None
    parent_pass_rate: float


@dataclass(slots=True)
class Reflect(Payload):
    node: str
    rollout: int
    policy: str | None
    summary: str | None


@dataclass(slots=True)
class Refine(Payload):
    node: str
    rollout: int
    policy: str | None
    old_thought: str
    new_thought: str
    summary: str | None = None


@dataclass(slots=True)
class SolutionFound(Payload):
    node: str
    policy: str | None
    code: str
    public_pass_rate: float


@dataclass(slots=True)
class RolloutFinished(Payload):
    rollout: int


@dataclass(slots=True)
class LLMError(Payload):
    policy: str | None
    stage: str
    message: str


@dataclass(slots=True)
class BudgetExhausted(Payload):
    reason: str = "budget"


@dataclass(slots=True)
class ProblemFinished(Payload):
    """The problem's result: the answer chosen on public tests, scored on private ones."""

    status: str = "finished"
    problem_id: str | None = None
    node: str | None = None
    policy: str | None = None
    code: str = ""
    public_pass_rate: float = 0.0
    # None when the problem has no private test apart from its public ones (``scored`` False):
    # it is left out of PR/AC rather than scored on the tests that guided it
    scored: bool = True
    private_pass_rate: float | None = 0.0
    passed_private: bool | None = False
    rollouts: int = 0
    calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    difficulty: str | None = None
    nodes: int = 0
    prunes: int = 0
    refinements: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunFinished(Payload):
    status: str = "finished"
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


PAYLOADS: dict[str, type[Payload]] = {
    RUN_STARTED: RunStarted,
    PROBLEM_STARTED: ProblemStarted,
    ROOT: Root,
    SELECT: Select,
    EXPAND: Expand,
    SIMULATE: Simulate,
    BACKUP: Backup,
    PRUNE: Prune,
    REFLECT: Reflect,
    REFINE: Refine,
    SOLUTION_FOUND: SolutionFound,
    ROLLOUT_FINISHED: RolloutFinished,
    LLM_ERROR: LLMError,
    BUDGET_EXHAUSTED: BudgetExhausted,
    PROBLEM_FINISHED: ProblemFinished,
    RUN_FINISHED: RunFinished,
}

# what a viewer lets the user jump between, by group
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "prune": (PRUNE,),
    "refine": (REFLECT, REFINE),
    "solution": (SOLUTION_FOUND, PROBLEM_FINISHED),
    "error": (LLM_ERROR, BUDGET_EXHAUSTED),
}


def payload_for(kind: str, payload: Any) -> Any:
    """``payload`` as ``kind``'s declared type (validated); a kind outside the vocabulary keeps its dict."""
    typ = PAYLOADS.get(kind)
    if typ is None:
        return payload.to_dict() if isinstance(payload, Payload) else payload
    if isinstance(payload, typ):
        return payload
    if isinstance(payload, Payload):
        raise EventPayloadError(f"a {type(payload).__name__} payload for a {kind!r} event")
    try:
        return typ.from_dict(payload)
    except EventPayloadError as e:
        raise EventPayloadError(f"{kind}: {e}") from None


_JSON = json.JSONDecoder()


def decode_payload(kind: str, raw: str | bytes | None) -> Any:
    """A stored payload (JSON text) as ``kind``'s declared type, validated (``Event.payload``).

    ``raw_decode`` skips ``json.loads``' whitespace scans, a tenth of decoding a run's log;
    text it does not take whole (whitespace around it, say) goes through ``json.loads``."""
    if not raw:
        data: Any = {}
    elif isinstance(raw, str):
        try:
            data, end = _JSON.raw_decode(raw)
        except json.JSONDecodeError:
            data, end = json.loads(raw), len(raw)
        if end != len(raw):
            data = json.loads(raw)  # trailing whitespace passes, anything else raises
    else:
        data = json.loads(raw)
    return payload_for(kind, data)


def payload_dict(payload: Any) -> dict[str, Any]:
    """The JSON form of a payload (what the store writes)."""
    return payload.to_dict() if isinstance(payload, Payload) else payload
