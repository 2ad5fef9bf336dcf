"""``python -m engine`` is the ``bdc`` command (used to launch detached runs and jobs)."""

from engine.cli import main

main()
