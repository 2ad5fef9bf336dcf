"""Errors the user can act on. The CLI prints them as one clear line, the TUI notifies."""


class BdcError(Exception):
    """Base for errors that carry a message meant for the user, not a traceback."""


class DatasetError(BdcError):
    """A dataset file is missing, unreadable, or has a bad row (the message names file:line)."""


class StoreError(BdcError):
    """The run store cannot be opened or is from a newer version of bdc."""


class StoreWriteError(StoreError):
    """The run store's writer could not commit a batch; it writes nothing more (sticky)."""


class ConfigError(BdcError):
    """A configuration value (agents, models, budgets) is wrong."""
