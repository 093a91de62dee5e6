"""The records a plugin yields from its hooks.

Names are normalised (lower case, ``_`` and spaces become ``-``) and validated
on construction, so ``"Load_Balancing"`` and ``"load-balancing"`` name the same
plugin and a name with a slash never reaches the registry.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from psyrun.exceptions import PluginValidationError

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_EXTENSION_PATTERN = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9._-]*$")


def normalise_name(name: object) -> str:
    """Return the canonical form of a plugin name.

    >>> normalise_name(" Load_Balancing ")
    'load-balancing'
    """
    if not isinstance(name, str):
        raise PluginValidationError(
            f"A plugin name must be a string, got {type(name).__name__} {name!r}."
        )
    normalised = re.sub(r"[\s_]+", "-", name.strip().lower())
    if not _NAME_PATTERN.match(normalised):
        raise PluginValidationError(
            f"Invalid plugin name {name!r}: use letters, digits and single "
            "hyphens, starting with a letter (for example 'my-store')."
        )
    return normalised


def _normalise_extensions(extensions: object) -> tuple[str, ...]:
    if isinstance(extensions, str):
        extensions = (extensions,)
    try:
        items = tuple(extensions)  # type: ignore[arg-type]
    except TypeError:
        raise PluginValidationError(
            f"Store extensions must be a sequence of strings, got {extensions!r}."
        ) from None
    result = []
    for ext in items:
        if not isinstance(ext, str):
            raise PluginValidationError(f"A store extension must be a string, got {ext!r}.")
        ext = ext if ext.startswith(".") else "." + ext
        if not _EXTENSION_PATTERN.match(ext):
            raise PluginValidationError(f"Invalid store extension {ext!r}.")
        result.append(ext.lower())
    if not result:
        raise PluginValidationError("A store needs at least one file extension.")
    return tuple(result)


def _is_callable(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not callable(value):
        raise PluginValidationError(
            f"{type(instance).__name__}.{attribute.name} must be a class or "
            f"factory, got {value!r}."
        )


@attrs.frozen
class PsyrunStore:
    """A store: a file format for parameters and results.

    ``store`` is a class (or factory) whose instances implement
    :class:`psyrun.store.Store`; ``extensions`` are the file extensions it
    writes, the first being its preferred one.
    """

    name: str = attrs.field(converter=normalise_name)
    store: Any = attrs.field(validator=_is_callable)
    extensions: tuple[str, ...] = attrs.field(converter=_normalise_extensions)

    kind = "store"

    @property
    def implementation(self) -> Any:
        return self.store


@attrs.frozen
class PsyrunScheduler:
    """A scheduler: runs jobs, here or on a cluster.

    ``scheduler`` is a class (or factory) implementing
    :class:`psyrun.scheduler.Scheduler`.
    """

    name: str = attrs.field(converter=normalise_name)
    scheduler: Any = attrs.field(validator=_is_callable)

    kind = "scheduler"

    @property
    def implementation(self) -> Any:
        return self.scheduler


@attrs.frozen
class PsyrunBackend:
    """A backend: turns a task into a graph of jobs.

    ``backend`` is a class implementing :class:`psyrun.backend.Backend`.
    """

    name: str = attrs.field(converter=normalise_name)
    backend: Any = attrs.field(validator=_is_callable)

    kind = "backend"

    @property
    def implementation(self) -> Any:
        return self.backend


PluginRecord = PsyrunStore | PsyrunScheduler | PsyrunBackend
