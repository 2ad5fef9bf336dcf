"""Logging for bdc: log files hold the details and tracebacks, the user sees one line.

* Every module logs through ``logging.getLogger(__name__)``, so each package has its logger
  under ``engine`` (``engine.jobs.runner``, ``engine.cli.search`` ...). ``--log-level`` sets
  the level of those loggers; other libraries log only their warnings.
* ``setup()`` (the ``bdc`` entry point calls it) sends records to ``bdc.log`` in the data
  dir's ``logs`` folder, and warnings to the terminal as one line each, with no traceback.
* ``log_file(path)`` adds a file for the span of one run or job: ``logs/<run or job id>.log``
  beside the run store (``log_dir``), the same file a detached run's output goes to.
* Log files are owner-only, and every registered secret (a key from the config, the
  provider keys in the environment) is replaced by ``***`` in what any handler writes.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.paths import data_dir, is_own_dir, open_private, private_dir

log = logging.getLogger(__name__)

LEVELS = ("debug", "info", "warning", "error")
FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(process)d]: %(message)s"
PACKAGES = ("engine", "bdc_tui")
INVOCATION_LOG_BYTES = 5_000_000
MASK = "***"

_secrets: set[str] = set()
_ENV_SECRET_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_SECRET_ACCESS_KEY", "_PASSWORD")


# -- secrets ------------------------------------------------------------------------------------
def register_secret(value: Any) -> None:
    """Never write ``value`` to a log (or a one-line error): it is replaced by ``***``."""
    if isinstance(value, str) and len(value) >= 6:
        _secrets.add(value)


def register_env_secrets(env: dict[str, str] | None = None) -> None:
    """The provider keys in the environment (``OPENAI_API_KEY``, ``HF_TOKEN`` ...)."""
    for name, value in (os.environ if env is None else env).items():
        if name.upper().endswith(_ENV_SECRET_SUFFIXES):
            register_secret(value)


def redact(text: str) -> str:
    """``text`` with every registered secret masked (longest first, so no prefix survives)."""
    for s in sorted(_secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, MASK)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class OneLineFormatter(logging.Formatter):
    """``warning: message`` with no traceback: the terminal gets one line per record."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage().strip().splitlines() or [""]
        return redact(f"{record.levelname.lower()}: {msg[0]}")


# -- handlers -----------------------------------------------------------------------------------
class _QuietOnFailure:
    """A log file that cannot be written must not put a traceback on the user's screen: the
    handler says so once in one line and stops writing."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1]
            with contextlib.suppress(Exception):
                sys.stderr.write(f"warning: cannot write the log file {getattr(self, 'baseFilename', '?')}: {err}\n")

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)  # type: ignore[misc]


class PrivateFileHandler(_QuietOnFailure, logging.FileHandler):
    """A log file created 0600 in a 0700 folder, opened at the first record (so a command
    that logs nothing creates nothing)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(str(path), mode="a", encoding="utf-8", delay=True)
        self.setFormatter(RedactingFormatter(FORMAT))

    def _open(self):  # type: ignore[override]
        return open_private(self.baseFilename, "a", encoding="utf-8")


class PrivateRotatingHandler(_QuietOnFailure, logging.handlers.RotatingFileHandler):
    """``bdc.log``: every invocation appends; kept to a few MB by rotation."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(
            str(path), mode="a", maxBytes=INVOCATION_LOG_BYTES, backupCount=3, encoding="utf-8", delay=True
        )
        self.setFormatter(RedactingFormatter(FORMAT))

    def _open(self):  # type: ignore[override]
        return open_private(self.baseFilename, "a", encoding="utf-8")


class ConsoleHandler(logging.StreamHandler):
    """Warnings to the current ``sys.stderr`` (looked up per record: tests and the TUI swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)
        self.setFormatter(OneLineFormatter())
        self.muted = 0

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if not self.muted and getattr(record, "console", True):
            super().emit(record)


_console: ConsoleHandler | None = None
_invocation: PrivateRotatingHandler | None = None
_root_level: int | None = None
_thread_hook: Any = None


def invocation_log() -> Path:
    """``bdc.log``: what every ``bdc`` command logged, and the tracebacks of its errors."""
    return data_dir() / "logs" / "bdc.log"


def log_dir(db_path: str | Path) -> Path:
    """``logs`` beside the run store: one file per run and per job (``<id>.log``). Made 0700;
    an existing one is tightened only in bdc's own folders (a user's ``logs`` is theirs)."""
    folder = Path(db_path).expanduser().resolve().parent
    return private_dir(folder / "logs", own=is_own_dir(folder))


def set_level(level: str | int) -> None:
    """The level of bdc's own loggers (``--log-level``)."""
    value = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    for name in PACKAGES:
        logging.getLogger(name).setLevel(value)


def setup(level: str | int = "info", *, console: bool = True) -> None:
    """Log to ``bdc.log`` and warnings to the terminal (``console=False`` for a full-screen
    app, whose screen stderr would tear); safe to call again (no duplicates)."""
    global _console, _invocation, _root_level, _thread_hook
    root = logging.getLogger()
    if _root_level is None:
        _root_level = root.level
    if _console is None and console:
        _console = ConsoleHandler()
        root.addHandler(_console)
    if _invocation is None:
        _invocation = PrivateRotatingHandler(invocation_log())
        root.addHandler(_invocation)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)  # other libraries: their warnings only
    # a bad BDC_LOG_LEVEL is refused by the --log-level option with one line; not here
    set_level(level if not isinstance(level, str) or level.lower() in LEVELS else "info")
    register_env_secrets()
    logging.captureWarnings(True)
    if _thread_hook is None:  # a worker thread's crash: its traceback to the log, not the screen
        _thread_hook = threading.excepthook
        threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    log.error(
        "thread %s died: %s",
        getattr(args.thread, "name", "?"),
        args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def teardown() -> None:
    """Remove what ``setup`` added (tests)."""
    global _console, _invocation, _root_level, _thread_hook
    root = logging.getLogger()
    if _thread_hook is not None:
        threading.excepthook = _thread_hook
        _thread_hook = None
    for h in (_console, _invocation):
        if h is not None:
            root.removeHandler(h)
            h.close()
    if _root_level is not None:
        root.setLevel(_root_level)
    logging.captureWarnings(False)
    _console = _invocation = _root_level = None


def _same_file(path: Path) -> bool:
    """Whether stderr already writes to ``path`` (a detached run's output goes to its log)."""
    try:
        a, b = os.fstat(sys.stderr.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextlib.contextmanager
def log_file(path: str | Path) -> Iterator[Path]:
    """Also log to ``path`` while the block runs (a run's or a job's own log); an exception
    leaving the block is logged there with its traceback."""
    path = Path(path)
    handler = PrivateFileHandler(path)
    root = logging.getLogger()
    root.addHandler(handler)
    muted = _console is not None and _same_file(path)
    if muted:
        _console.muted += 1  # type: ignore[union-attr]
    try:
        yield path
    except BaseException as e:
        if not isinstance(e, (KeyboardInterrupt, SystemExit, GeneratorExit)):
            log_exception(e)
        raise
    finally:
        if muted:
            _console.muted -= 1  # type: ignore[union-attr]
        root.removeHandler(handler)
        handler.close()


def log_exception(e: BaseException) -> None:
    """Log ``e`` with its traceback once, however many layers report it."""
    if getattr(e, "_bdc_logged", False):
        return
    # not on the terminal: the entry point prints its own one line about it
    log.error("%s: %s", type(e).__name__, e, exc_info=(type(e), e, e.__traceback__), extra={"console": False})
    with contextlib.suppress(AttributeError, TypeError):
        e._bdc_logged = True  # type: ignore[attr-defined]


def one_line(e: BaseException, *, expected: bool) -> str:
    """What the user reads about ``e``: its first line, secrets masked; for an unexpected
    error, its type and where the traceback is."""
    text = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    if expected:
        return redact(text or type(e).__name__)
    where = invocation_log() if _invocation is not None and not _invocation.failed else None
    hint = f" (traceback in {where})" if where else ""
    return redact(f"{type(e).__name__}: {text}" if text else type(e).__name__) + hint
