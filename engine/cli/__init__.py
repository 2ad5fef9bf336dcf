"""The ``bdc`` command: a lazy click group.

Each command group lives in its own module and is imported only when invoked, so
``bdc --help`` and ``bdc datasets list`` never pay for importing torch or litellm.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from engine.logs import LEVELS

log = logging.getLogger(__name__)

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "datasets": "engine.cli.datasets:datasets",
    "sandbox": "engine.cli.sandbox:sandbox",
    "models": "engine.cli.models:models",
    "config": "engine.cli.models:config",
    "search": "engine.cli.search:search",
    "resume": "engine.cli.search:resume",
    "runs": "engine.cli.runs:runs",
    "show": "engine.cli.runs:show",
    "compare": "engine.cli.runs:compare",
    "export": "engine.cli.runs:export",
    "cluster": "engine.cli.train:cluster",
    "train": "engine.cli.train:train",
    "eval": "engine.cli.train:eval_",
    "jobs": "engine.cli.jobs:jobs",
    "reproduce": "engine.cli.reproduce:reproduce",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    envvar="BDC_DB",
    default=None,
    help="SQLite run store (default: bdc.db in the user data dir; env BDC_DB).",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    envvar="BDC_LOG_LEVEL",
    default="info",
    show_default=True,
    help="Detail of the log files (logs/bdc.log in the data dir; logs/<run or job id>.log beside the store).",
)
@click.version_option(package_name="bdc")
@click.pass_context
def cli(ctx: click.Context, db: str | None, log_level: str) -> None:
    """bdc: MC-Tree-Of-Agents search and DisenLoRA training, headless."""
    from engine.logs import set_level
    from engine.paths import default_db_path

    set_level(log_level)
    ctx.obj = {"db": db or str(default_db_path())}
    log.debug("bdc %s (db %s, pid %d)", ctx.invoked_subcommand, ctx.obj["db"], os.getpid())


def main(argv: list[str] | None = None) -> None:
    """The ``bdc`` entry point: every error ends as one line on stderr, its traceback in the log."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from engine import logs
    from engine.errors import BdcError
    from engine.paths import tighten_own_dirs

    logs.setup(os.environ.get("BDC_LOG_LEVEL", "info"))
    try:
        for d in tighten_own_dirs():
            log.info("made %s owner-only (0700)", d)
        code = cli.main(args=argv, prog_name="bdc", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BdcError as e:
        logs.log_exception(e)
        click.secho(f"error: {logs.one_line(e, expected=True)}", fg="red", err=True)
        sys.exit(2)
    except Exception as e:  # a bug or an environment problem: one line here, the traceback in the log
        logs.log_exception(e)
        click.secho(f"error: {logs.one_line(e, expected=False)}", fg="red", err=True)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
