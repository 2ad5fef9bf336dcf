"""bdc engine: datasets, sandbox, agents, search, store, training and evaluation.

The engine never imports Textual; the TUI (``bdc_tui``) is a client of it.
"""

__version__ = "0.1.0"
