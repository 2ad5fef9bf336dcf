"""Solver evaluation (paper Tables 2 and 3): generate a solution per problem with a solver,
score it on the private tests in the sandbox, report PR (mean pass rate) and AC (share of
problems whose every test passes) per difficulty and overall.

- ``codegen``  turn a generation into the program the sandbox runs
- ``solvers``  base / adapter (SFT, expert, merge) / DisenLoRA solvers behind one interface
- ``runner``   generate + score, asynchronously, with progress and cancel
- ``tables``   per-difficulty summaries and the Table 2 layout
"""
