"""Exceptions and warnings raised by psyrun.

Every error here is meant to reach a person: its message says what went wrong
and what to do about it.  The command line turns :class:`PsyrunError` into one
line on stderr and exit code 2 (bad usage) unless ``--debug`` is given.
"""

from __future__ import annotations


class PsyrunError(Exception):
    """Base class of all errors psyrun raises on purpose."""


# --------------------------------------------------------------- plugins
class PluginError(PsyrunError):
    """A plugin could not be found, loaded or chosen."""


class PluginNotFoundError(PluginError, LookupError):
    """No plugin of the requested kind has the requested name."""


class PluginConflictError(PluginError):
    """Two distributions register a plugin of the same kind under one name."""


class PluginValidationError(PluginError, ValueError):
    """A plugin record is malformed (bad name, wrong type, ...)."""


# --------------------------------------------------------------- parameter spaces
class ParameterSpaceError(PsyrunError, ValueError):
    """A parameter space cannot be built from the given values."""


class AmbiguousOperationError(PsyrunError, RuntimeError):
    """An operation on parameter spaces has no unique meaning.

    Raised, for example, when the subtrahend of ``a - b`` has keys that the
    minuend ``a`` lacks.
    """

    # Tracebacks (and the user guide's doctest) show the name under which
    # psyrun 0.8 defined this class; psyrun.pspace re-exports it.
    __module__ = "psyrun.pspace"


class ParameterLengthError(ParameterSpaceError):
    """The sequences given to one ``Param`` differ in length."""


class InvalidParameterValueError(ParameterSpaceError, TypeError):
    """A parameter value is neither a sequence of values nor a scalar.

    Sets, mappings, generators and other one-shot iterators have no clear
    row order (or can only be read once), so ``Param`` refuses them.
    """


class UnhashableValueError(ParameterSpaceError, TypeError):
    """A parameter value cannot be compared by value (needed by ``missing``)."""


class InvalidResultError(PsyrunError, TypeError):
    """A function mapped onto a parameter space returned something other than a dict."""


# --------------------------------------------------------------- stores
class StoreError(PsyrunError):
    """A store cannot read or write a file."""


class UnsupportedDataError(StoreError, TypeError):
    """A store cannot hold the data of some column."""


class CorruptFileError(StoreError):
    """A file exists but cannot be read by its store."""


class ColumnLengthError(StoreError, ValueError):
    """The columns given to a store do not all have the same number of rows."""


class StoreFileNotFoundError(StoreError, FileNotFoundError):
    """A store was asked to read a file that does not exist."""


class ResultExistsError(StoreError, FileExistsError):
    """Writing a file would overwrite results the user did not ask to replace."""


# --------------------------------------------------------------- schedulers, tasks
class SchedulerError(PsyrunError):
    """A scheduler command failed or was given bad arguments."""


class SchedulerArgumentError(SchedulerError, ValueError):
    """``scheduler_args`` hold an unknown key or lack a required one."""


class TaskDefinitionError(PsyrunError):
    """A task file is broken (syntax, missing variable, bad value)."""


class JobFailedError(PsyrunError):
    """A job, or an item within it, failed."""


# --------------------------------------------------------------- warnings
class PsyrunWarning(UserWarning):
    """Base class of psyrun's warnings."""


class IneffectiveExcludeWarning(PsyrunWarning):
    """``exclude`` names a key that is not in the result."""


class TaskWarning(PsyrunWarning):
    """A task file contains something that is probably a mistake."""


class JobsRunningWarning(PsyrunWarning):
    """An operation was requested while jobs of a task are still running."""


class TaskWorkdirDirtyWarning(PsyrunWarning):
    """A task's work directory holds results from an older task definition."""
