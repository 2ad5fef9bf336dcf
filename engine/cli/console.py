"""The Rich console every ``bdc`` command prints through.

Rich falls back to 80 columns when the output is not a terminal (a pipe, a log file, CI),
which squeezes the wide run and comparison tables into wrapped cells. Piped output is read
by people in pagers and editors, not a fixed-width screen, so it gets ``PIPE_WIDTH``
columns unless ``COLUMNS`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PIPE_WIDTH = 160


def make_console(*, stderr: bool = False, **kwargs: Any):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if "width" not in kwargs and not os.environ.get("COLUMNS") and not stream.isatty():
        kwargs["width"] = PIPE_WIDTH
    return Console(stderr=stderr, **kwargs)
