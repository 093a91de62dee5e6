"""The plugin manager: one registry of stores, schedulers and backends.

It is built once per process (:func:`get_plugin_manager`) in three steps:

1. the built-in plugins (:mod:`psyrun.plugins.builtin`) are registered through
   the same hooks a third-party plugin uses;
2. the ``psyrun`` entry points are loaded one at a time, so a plugin that fails
   to import is reported (with its distribution and version) and the others
   still load; names listed in ``PSYRUN_DISABLED_PLUGINS`` (comma separated)
   are not loaded at all;
3. every hook is called and its records are collected by kind and name; two
   distributions registering the same name are a conflict, reported when the
   name is looked up and by ``psy plugins``.

Nothing is imported from numpy or PyTables here: looking a plugin up must stay
cheap enough for ``psy --help``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import PurePath
from typing import Any

import attrs
import pluggy

from psyrun.exceptions import (
    PluginConflictError,
    PluginError,
    PluginNotFoundError,
    PluginValidationError,
)
from psyrun.plugins import ENTRY_POINT_GROUP, PROJECT_NAME, hookspec
from psyrun.plugins.types import (
    PluginRecord,
    PsyrunBackend,
    PsyrunScheduler,
    PsyrunStore,
    normalise_name,
)

DISABLE_ENV_VAR = "PSYRUN_DISABLED_PLUGINS"

#: The hooks, the kind of plugin each registers and the record it yields.
HOOKS: dict[str, tuple[str, type]] = {
    "psyrun_register_stores": ("store", PsyrunStore),
    "psyrun_register_schedulers": ("scheduler", PsyrunScheduler),
    "psyrun_register_backends": ("backend", PsyrunBackend),
}
KINDS = tuple(kind for kind, _ in HOOKS.values())

#: First-party plugins shipped as separate distributions: (kind, name) -> extra.
FIRST_PARTY_EXTRAS: dict[tuple[str, str], str] = {
    ("store", "h5"): "h5",
    ("scheduler", "slurm"): "slurm",
    ("scheduler", "sqsub"): "sqsub",
}
#: File extensions of first-party stores that are not part of the core.
FIRST_PARTY_EXTENSIONS: dict[str, str] = {".h5": "h5", ".hdf5": "h5"}

ACTIVE, BLOCKED, FAILED, CONFLICT = "active", "blocked", "failed", "conflict"


@attrs.frozen
class Source:
    """Where a plugin comes from: a distribution and an entry point."""

    distribution: str
    version: str
    entry_point: str | None = None  # None for the built-ins

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}"


@attrs.frozen
class PluginInfo:
    """One line of ``psy plugins``."""

    name: str
    kind: str
    distribution: str
    version: str
    status: str
    error: str | None = None


def _disabled_names(environ: dict[str, str] | None = None) -> frozenset[str]:
    value = (os.environ if environ is None else environ).get(DISABLE_ENV_VAR, "")
    names = set()
    for part in value.split(","):
        if part.strip():
            try:
                names.add(normalise_name(part))
            except PluginValidationError:
                names.add(part.strip())
    return frozenset(names)


def _core_source() -> Source:
    try:
        version = metadata.version("psyrun")
    except metadata.PackageNotFoundError:  # running from a source tree
        version = "unknown"
    return Source("psyrun", version)


class PsyrunPluginManager(pluggy.PluginManager):
    """pluggy's manager plus psyrun's registry of named records."""

    def __init__(self, disabled: Iterable[str] = ()) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspec.PsyrunSpecs)
        self.disabled = frozenset(disabled)
        self._sources: dict[int, Source] = {}
        self._infos: list[PluginInfo] = []
        self._registry: dict[str, dict[str, tuple[PluginRecord, Source]]] = {k: {} for k in KINDS}
        self._conflicts: dict[tuple[str, str], list[Source]] = {}
        self._failed: dict[str, tuple[Source, str]] = {}

    # ------------------------------------------------------------ loading
    def _register_checked(self, plugin: object, name: str, source: Source) -> bool:
        try:
            self.register(plugin, name=name)
            self.check_pending()
        except Exception as exc:  # pluggy raises PluginValidationError and ValueError
            if self.is_registered(plugin):
                self.unregister(plugin)
            self._fail(name, source, f"{type(exc).__name__}: {exc}")
            return False
        self._sources[id(plugin)] = source
        return True

    def _fail(self, name: str, source: Source, error: str) -> None:
        self._failed[name] = (source, error)
        self._infos.append(
            PluginInfo(name, "plugin", source.distribution, source.version, FAILED, error)
        )

    def load_builtins(self) -> None:
        from psyrun.plugins import builtin

        self._register_checked(builtin, "psyrun-builtin", _core_source())

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        seen = set()
        # A fixed order (by distribution, then entry point) keeps messages and
        # `psy plugins` the same from run to run, whatever sys.path holds.
        found = sorted(metadata.entry_points(group=group),
                       key=lambda ep: (getattr(getattr(ep, "dist", None), "name", ""), ep.name))
        for ep in found:
            dist = getattr(ep, "dist", None)
            source = Source(
                dist.name if dist is not None else "unknown",
                dist.version if dist is not None else "unknown",
                ep.name,
            )
            key = (ep.name, ep.value, source.distribution)
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            if self._is_blocked(ep.name):
                self._infos.append(
                    PluginInfo(ep.name, "plugin", source.distribution, source.version, BLOCKED,
                               f"blocked by {DISABLE_ENV_VAR}")
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break psyrun
                self._fail(ep.name, source, f"cannot import {ep.value}: {type(exc).__name__}: {exc}")
                continue
            self._register_checked(plugin, ep.name, source)

    def _is_blocked(self, name: str) -> bool:
        try:
            return normalise_name(name) in self.disabled
        except PluginValidationError:
            return name in self.disabled

    def collect(self) -> None:
        """Call every hook and fill the registry with the records."""
        for hook_name, (kind, record_type) in HOOKS.items():
            caller = getattr(self.hook, hook_name)
            for impl in caller.get_hookimpls():
                source = self._sources.get(id(impl.plugin), Source("unknown", "unknown"))
                plugin_name = impl.plugin_name
                # Records yielded before a failure are kept: one broken
                # implementation must not hide its siblings.
                records = []
                try:
                    for record in impl.function() or ():
                        if not isinstance(record, record_type):
                            raise PluginValidationError(
                                f"{hook_name} must yield {record_type.__name__} "
                                f"records, got {record!r}"
                            )
                        records.append(record)
                except Exception as exc:
                    self._fail(plugin_name, source, f"{hook_name}: {type(exc).__name__}: {exc}")
                for record in records:
                    self._add(kind, record, source)

    def _add(self, kind: str, record: PluginRecord, source: Source) -> None:
        if record.name in self.disabled:
            self._infos.append(
                PluginInfo(record.name, kind, source.distribution, source.version, BLOCKED,
                           f"blocked by {DISABLE_ENV_VAR}")
            )
            return
        registry = self._registry[kind]
        if record.name in registry or (kind, record.name) in self._conflicts:
            clash = self._conflicts.setdefault((kind, record.name), [])
            if record.name in registry:
                clash.append(registry.pop(record.name)[1])
            clash.append(source)
            return
        registry[record.name] = (record, source)

    # ------------------------------------------------------------ queries
    def plugin_infos(self) -> list[PluginInfo]:
        """Every plugin with its kind, distribution, version and status."""
        infos = list(self._infos)
        for kind, registry in self._registry.items():
            for name, (_, source) in registry.items():
                infos.append(PluginInfo(name, kind, source.distribution, source.version, ACTIVE))
        for (kind, name), sources in self._conflicts.items():
            text = " and ".join(str(s) for s in sources)
            for source in sources:
                infos.append(PluginInfo(name, kind, source.distribution, source.version,
                                        CONFLICT, f"also registered by {text}"))
        order = {kind: i for i, kind in enumerate(KINDS + ("plugin",))}
        return sorted(infos, key=lambda i: (order.get(i.kind, 99), i.name, i.distribution))

    def names(self, kind: str) -> list[str]:
        """The names of the usable plugins of one kind, sorted."""
        return sorted(self._registry[kind])

    def records(self, kind: str) -> list[PluginRecord]:
        return [self._registry[kind][name][0] for name in self.names(kind)]

    def source_of(self, kind: str, name: str) -> Source:
        return self._registry[kind][normalise_name(name)][1]

    def get(self, kind: str, name: str) -> PluginRecord:
        """The record of plugin ``name`` of ``kind``, or an error saying what to do."""
        if kind not in self._registry:
            raise PluginError(f"Unknown plugin kind {kind!r}; use one of {', '.join(KINDS)}.")
        try:
            key = normalise_name(name)
        except PluginValidationError as exc:
            raise PluginNotFoundError(f"{exc} Available {kind}s: {self._available(kind)}.") from None
        if key in self._registry[kind]:
            return self._registry[kind][key][0]
        if (kind, key) in self._conflicts:
            sources = self._conflicts[(kind, key)]
            entry_points = [s.entry_point for s in sources if s.entry_point]
            hint = (f" or block one with {DISABLE_ENV_VAR}={entry_points[-1]}" if entry_points else "")
            raise PluginConflictError(
                f"The {kind} {key!r} is registered by more than one distribution: "
                f"{' and '.join(str(s) for s in sources)}. Uninstall one of them{hint}."
            )
        raise PluginNotFoundError(self._not_found_message(kind, key))

    def _available(self, kind: str) -> str:
        return ", ".join(self.names(kind)) or "none"

    def _not_found_message(self, kind: str, key: str) -> str:
        message = f"Unknown {kind} {key!r}. Available: {self._available(kind)}."
        if key in self.disabled:
            return message + f" It is blocked by {DISABLE_ENV_VAR}; remove it from there to use it."
        extra = FIRST_PARTY_EXTRAS.get((kind, key))
        failed = self._failed.get(extra or key)
        if failed is not None:
            source, error = failed
            return message + f" The plugin {extra or key!r} from {source} failed to load: {error}"
        if extra is not None:
            return message + f" Install it with: pip install 'psyrun[{extra}]'"
        return message

    def store_for_extension(self, ext: str) -> PsyrunStore:
        """The store that writes files with extension ``ext`` (``".h5"`` or ``"h5"``)."""
        ext = ext.lower() if ext.startswith(".") else "." + ext.lower()
        matches = [(r, s) for r, s in self._registry["store"].values() if ext in r.extensions]
        if len(matches) == 1:
            return matches[0][0]
        if len(matches) > 1:
            raise PluginConflictError(
                f"The file extension {ext!r} is claimed by several stores: "
                + ", ".join(f"{r.name} ({s})" for r, s in matches)
                + ". Choose a store by name instead."
            )
        known = ", ".join(
            f"{e} ({r.name})" for r in self.records("store") for e in r.extensions
        ) or "none"
        message = f"No store handles the file extension {ext!r}. Installed stores: {known}."
        extra = FIRST_PARTY_EXTENSIONS.get(ext)
        if extra is not None and extra in self.disabled:
            message += (f" The {extra} store is blocked by {DISABLE_ENV_VAR}; "
                        "remove it from there to use it.")
        elif extra is not None:
            message += f" Install the {extra} store with: pip install 'psyrun[{extra}]'"
        raise PluginNotFoundError(message)

    def store_for_path(self, path: str | os.PathLike[str]) -> PsyrunStore:
        suffix = PurePath(path).suffix
        if not suffix:
            raise PluginNotFoundError(
                f"Cannot choose a store for {os.fspath(path)!r}: it has no file extension. "
                f"Use one of: {', '.join(e for r in self.records('store') for e in r.extensions)}."
            )
        return self.store_for_extension(suffix)

    # ------------------------------------------------------------ resolving task settings
    def resolve(self, kind: str, spec: Any, factory: Callable[[Any], Any] | None = None) -> Any:
        """Turn a task setting into an implementation.

        ``spec`` is a plugin name (looked up, then its class is returned, or
        ``factory(cls)`` if given) or anything else (returned as it is: an
        instance or class the task file made itself).
        """
        if isinstance(spec, str):
            implementation = self.get(kind, spec).implementation
            return factory(implementation) if factory is not None else implementation
        return spec

    def name_of(self, kind: str, implementation: Any) -> str | None:
        """The registered name of a class or instance, if it is registered."""
        cls = implementation if isinstance(implementation, type) else type(implementation)
        for record in self.records(kind):
            if record.implementation is cls:
                return record.name
        return None


@functools.cache
def get_plugin_manager() -> PsyrunPluginManager:
    """The process-wide plugin manager, built on first use.

    Tests that change the installed plugins or ``PSYRUN_DISABLED_PLUGINS``
    call ``get_plugin_manager.cache_clear()``.
    """
    manager = PsyrunPluginManager(disabled=_disabled_names())
    manager.load_builtins()
    manager.load_entrypoints()
    manager.collect()
    return manager
