"""Run untrusted, LLM-written Python programs against tests: safely, and fast.

``Sandbox`` keeps pre-imported worker servers (one per concurrent run) inside network, mount
and pid namespaces; each test runs in a freshly forked child as an unprivileged user with
rlimits, a private directory, a scrubbed environment and no network. See ``_server`` for
the isolation details and ``compare`` for how answers are judged.
"""

from engine.sandbox.sandbox import Sandbox, reference_test_case
from engine.sandbox.types import ExecutionResult, SandboxLimits, TestResult, Verdict

__all__ = ["Sandbox", "SandboxLimits", "Verdict", "TestResult", "ExecutionResult", "reference_test_case"]
