from engine.problems.model import Problem, TestCase, TestStyle


def make_problem() -> Problem:
    return Problem(
        id="HumanEval/0",
        dataset="humaneval",
        statement='def add(a, b):\n    """Return a + b."""\n',
        style=TestStyle.ASSERT,
        public_tests=[TestCase("assert candidate(1, 2) == 3")],
        private_tests=[TestCase("assert candidate(40, 2) == 42  # SECRET")],
        entry_point="add",
        solutions=["def add(a, b):\n    return a + b  # REFERENCE"],
    )
