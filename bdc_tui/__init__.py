"""bdc-tui: the Textual face of bdc.

It reads the run store (the same SQLite file the headless ``bdc`` writes) and submits
work to the engine; the engine never imports this package (an import-linter contract in
pyproject.toml enforces the direction).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
