"""The plugin registry: records, discovery, failures, conflicts, blocking, errors.

Third-party plugins come from the folders in ``tests/data/plugin-sites``: each
looks like an installed distribution (a ``.dist-info`` with entry points), so
putting one on ``sys.path`` exercises the manager's real discovery path
through ``importlib.metadata``.  Real wheels installed with pip are checked in
``tests/packaging``.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import attrs
import psyrun
import pytest
from psyrun.exceptions import (
    PluginConflictError,
    PluginNotFoundError,
    PluginValidationError,
)
from psyrun.plugins import PsyrunBackend, PsyrunScheduler, PsyrunStore, builtin, hookspec
from psyrun.plugins.manager import (
    DISABLE_ENV_VAR,
    HOOKS,
    PsyrunPluginManager,
    get_plugin_manager,
)
from psyrun.plugins.types import normalise_name

SITES = Path(__file__).resolve().parents[1] / "data" / "plugin-sites"
PLUGIN_MODULES = ("psyrun_plugin_jsonl", "psyrun_plugin_broken", "psyrun_plugin_pbs_a",
                  "psyrun_plugin_pbs_b", "psyrun_plugin_misspelt")


@pytest.fixture
def registry(monkeypatch):
    """Build the process-wide manager afresh with some test sites installed.

    ``registry("good", "broken", disabled="npz")`` puts those sites on
    ``sys.path``, sets ``PSYRUN_DISABLED_PLUGINS`` and returns
    ``get_plugin_manager()`` built from scratch; the cache is cleared again
    after the test so no other test sees the fake plugins.
    """

    def build(*sites: str, disabled: str | None = None) -> PsyrunPluginManager:
        for site in sites:
            monkeypatch.syspath_prepend(str(SITES / site))
        if disabled is None:
            monkeypatch.delenv(DISABLE_ENV_VAR, raising=False)
        else:
            monkeypatch.setenv(DISABLE_ENV_VAR, disabled)
        get_plugin_manager.cache_clear()
        return get_plugin_manager()

    for module in PLUGIN_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield build
    get_plugin_manager.cache_clear()


def infos_named(manager: PsyrunPluginManager, name: str) -> list:
    return [info for info in manager.plugin_infos() if info.name == name]


def bare_manager(*plugins: tuple[object, str]) -> PsyrunPluginManager:
    """A manager with the built-ins and the given plugins, but no entry points.

    This is what psyrun sees on a machine where no plugin distribution is
    installed.
    """
    manager = PsyrunPluginManager()
    manager.load_builtins()
    for plugin, name in plugins:
        manager.register(plugin, name=name)
    manager.collect()
    return manager


# ------------------------------------------------------------------ records
@pytest.mark.parametrize(
    ("given", "normalised"),
    [("h5", "h5"), ("NPZ", "npz"), ("Load_Balancing", "load-balancing"),
     (" my  store ", "my-store"), ("a__b", "a-b"), ("x2-y3", "x2-y3")],
)
def test_names_are_normalised(given, normalised):
    assert normalise_name(given) == normalised
    assert PsyrunScheduler(name=given, scheduler=object).name == normalised


@pytest.mark.parametrize("bad", ["", "   ", "my/store", "1store", "-store", "store-", "a--b", "stör"])
def test_invalid_names_are_refused_with_an_example_of_a_valid_one(bad):
    with pytest.raises(PluginValidationError, match="Invalid plugin name.*for example 'my-store'"):
        PsyrunBackend(name=bad, backend=object)


@pytest.mark.parametrize("bad", [None, 3, b"h5"])
def test_names_must_be_strings(bad):
    with pytest.raises(PluginValidationError, match="must be a string"):
        normalise_name(bad)


def test_store_extensions_get_a_dot_and_lower_case():
    record = PsyrunStore(name="x", store=object, extensions=["JSONL", ".Json"])
    assert record.extensions == (".jsonl", ".json")
    assert PsyrunStore(name="x", store=object, extensions=".h5").extensions == (".h5",)


@pytest.mark.parametrize("bad", [(), [3], ["a b"], 42])
def test_bad_store_extensions_are_refused(bad):
    with pytest.raises(PluginValidationError, match="extension"):
        PsyrunStore(name="x", store=object, extensions=bad)


def test_the_implementation_must_be_callable():
    with pytest.raises(PluginValidationError, match="PsyrunScheduler.scheduler must be a class"):
        PsyrunScheduler(name="x", scheduler="not a class")


def test_records_are_frozen():
    record = PsyrunBackend(name="x", backend=object)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.name = "y"  # type: ignore[misc]


# ------------------------------------------------------------------ built-ins
BUILTINS = [
    ("store", "pickle", "psyrun.store.pickle"),
    ("store", "npz", "psyrun.store.npz"),
    ("scheduler", "immediate", "psyrun.scheduler.immediate"),
    ("backend", "distribute", "psyrun.backend.distribute"),
    ("backend", "load-balancing", "psyrun.backend.load_balancing"),
]


@pytest.mark.parametrize(("kind", "name", "module"), BUILTINS)
def test_builtins_are_registered_through_the_hooks(registry, kind, name, module):
    # One hook yields all built-ins of a kind, so it needs all their modules.
    unwritten = [m for k, _, m in BUILTINS if k == kind and importlib.util.find_spec(m) is None]
    if unwritten:
        pytest.skip(f"{', '.join(unwritten)} not written yet")
    manager = registry()
    record = manager.get(kind, name)
    assert record.name == name
    assert record.implementation.__module__.startswith(module)
    source = manager.source_of(kind, name)
    assert (source.distribution, source.version) == ("psyrun", psyrun.__version__)
    # Registered like any plugin: the built-in module is a pluggy plugin whose
    # hook yields this record.
    assert manager.get_plugin("psyrun-builtin") is builtin
    hook_name = next(h for h, (k, _) in HOOKS.items() if k == kind)
    assert builtin in [impl.plugin for impl in getattr(manager.hook, hook_name).get_hookimpls()]


FIRST_PARTY = [
    ("store", "h5", "psyrun-store-h5", "psyrun_store_h5"),
    ("scheduler", "slurm", "psyrun-sched-slurm", "psyrun_sched_slurm"),
    ("scheduler", "sqsub", "psyrun-sched-sqsub", "psyrun_sched_sqsub"),
]


@pytest.mark.parametrize(("kind", "name", "distribution", "package"), FIRST_PARTY)
def test_first_party_plugins_are_loaded_from_their_entry_points(registry, kind, name,
                                                                 distribution, package):
    manager = registry()
    plugin = manager.get_plugin(name)
    assert plugin is not None, f"entry point {name!r} of {distribution} was not registered"
    assert plugin.__name__ == f"{package}.plugin"
    assert metadata.version(distribution) == psyrun.__version__
    if importlib.util.find_spec(f"{package}.{kind}") is None and name != "h5":
        pytest.skip(f"{package} has no {kind} module yet")
    if name == "h5" and importlib.util.find_spec("psyrun_store_h5.store") is None:
        pytest.skip("psyrun_store_h5.store is not written yet")
    assert manager.get(kind, name).name == name
    assert manager.source_of(kind, name).distribution == distribution


def test_the_manager_is_built_once(registry):
    manager = registry()
    assert get_plugin_manager() is manager


def test_lookups_accept_any_spelling_of_a_name(registry):
    manager = registry()
    assert manager.get("store", " PICKLE ") is manager.get("store", "pickle")


# ------------------------------------------------------------------ third-party plugins
def test_a_third_party_plugin_is_found_through_its_entry_point(registry):
    manager = registry("good")
    store = manager.get("store", "json_lines")
    assert store.name == "json-lines"
    assert store.extensions == (".jsonl",)
    assert manager.store_for_path("results/out.JSONL") is store
    source = manager.source_of("scheduler", "fifo")
    assert (source.distribution, source.version, source.entry_point) == (
        "psyrun-plugin-jsonl", "0.3.0", "jsonl")
    assert manager.get_plugin("jsonl").__name__ == "psyrun_plugin_jsonl"


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_still_load(registry):
    manager = registry("broken", "good")
    [info] = infos_named(manager, "broken")
    assert (info.distribution, info.version, info.status) == ("psyrun-plugin-broken", "1.2.3",
                                                              "failed")
    assert "psyrun_plugin_broken_dependency" in info.error
    assert "ModuleNotFoundError" in info.error
    # The good plugin and the built-ins are unaffected.
    assert manager.get("scheduler", "fifo").name == "fifo"
    assert manager.get("store", "pickle").name == "pickle"


def test_asking_for_a_failed_plugin_by_its_entry_point_name_repeats_its_error(registry):
    manager = registry("broken")
    with pytest.raises(PluginNotFoundError) as caught:
        manager.get("store", "broken")
    message = str(caught.value)
    assert "The plugin 'broken' from psyrun-plugin-broken 1.2.3 failed to load" in message
    assert "psyrun_plugin_broken_dependency" in message


def test_a_conflict_names_both_distributions_and_neither_plugin_is_used(registry):
    manager = registry("clash")
    assert "pbs" not in manager.names("scheduler")
    with pytest.raises(PluginConflictError) as caught:
        manager.get("scheduler", "pbs")
    message = str(caught.value)
    assert "psyrun-plugin-pbs-a 1.0.0" in message
    assert "psyrun-plugin-pbs-b 2.0.0" in message
    assert f"{DISABLE_ENV_VAR}=pbs-" in message
    statuses = {(i.distribution, i.status) for i in infos_named(manager, "pbs")}
    assert statuses == {("psyrun-plugin-pbs-a", "conflict"), ("psyrun-plugin-pbs-b", "conflict")}


def test_blocking_one_side_of_a_conflict_resolves_it(registry):
    manager = registry("clash", disabled="pbs-b")
    assert manager.source_of("scheduler", "pbs").distribution == "psyrun-plugin-pbs-a"
    [blocked] = [i for i in manager.plugin_infos() if i.name == "pbs-b"]
    assert blocked.status == "blocked"


def test_a_misspelt_hook_makes_its_plugin_fail_loudly(registry):
    manager = registry("misspelt", "good")
    [info] = infos_named(manager, "misspelt")
    assert (info.distribution, info.version, info.status) == ("psyrun-plugin-misspelt", "0.1.0",
                                                              "failed")
    assert "psyrun_register_store" in info.error
    assert "yaml" not in manager.names("store")
    assert manager.get_plugin("misspelt") is None
    assert "json-lines" in manager.names("store")


# ------------------------------------------------------------------ PSYRUN_DISABLED_PLUGINS
def test_a_blocked_entry_point_is_not_even_imported(registry):
    manager = registry("good", disabled="JSONL")
    assert "psyrun_plugin_jsonl" not in sys.modules
    [info] = infos_named(manager, "jsonl")
    assert (info.status, info.distribution) == ("blocked", "psyrun-plugin-jsonl")
    assert "fifo" not in manager.names("scheduler")


def test_blocked_names_apply_to_builtin_records_too(registry):
    manager = registry("good", disabled=" npz ,Fifo")
    assert "npz" not in manager.names("store")
    assert "fifo" not in manager.names("scheduler")
    assert "json-lines" in manager.names("store")
    assert {i.status for i in infos_named(manager, "npz")} == {"blocked"}
    with pytest.raises(PluginNotFoundError, match=f"blocked by {DISABLE_ENV_VAR}"):
        manager.get("store", "npz")


# ------------------------------------------------------------------ errors that say what to do
def test_an_unknown_name_lists_the_available_ones(registry):
    manager = registry("good")
    with pytest.raises(PluginNotFoundError) as caught:
        manager.get("scheduler", "nonesuch")
    message = str(caught.value)
    assert message.startswith("Unknown scheduler 'nonesuch'. Available: ")
    assert "fifo" in message and "immediate" in message
    assert "pip install" not in message


@pytest.mark.parametrize(("kind", "name", "extra"),
                         [("store", "h5", "h5"), ("scheduler", "slurm", "slurm"),
                          ("scheduler", "SQSUB", "sqsub")])
def test_a_missing_first_party_plugin_comes_with_its_install_command(kind, name, extra):
    manager = bare_manager()
    with pytest.raises(PluginNotFoundError) as caught:
        manager.get(kind, name)
    assert f"Install it with: pip install 'psyrun[{extra}]'" in str(caught.value)
    assert f"Available: {', '.join(manager.names(kind))}." in str(caught.value)


def test_an_invalid_name_in_a_lookup_lists_the_available_ones():
    manager = bare_manager()
    with pytest.raises(PluginNotFoundError, match="Invalid plugin name.*Available stores: .*pickle"):
        manager.get("store", "no/such")


def test_an_unknown_extension_names_the_installed_ones():
    manager = bare_manager()
    with pytest.raises(PluginNotFoundError) as caught:
        manager.store_for_path("out.xyz")
    message = str(caught.value)
    assert "'.xyz'" in message
    assert ".pkl (pickle)" in message and ".npz (npz)" in message


def test_an_h5_file_without_the_h5_plugin_says_how_to_install_it():
    manager = bare_manager()
    with pytest.raises(PluginNotFoundError, match=r"pip install 'psyrun\[h5\]'"):
        manager.store_for_extension("H5")


def test_an_h5_file_with_the_h5_plugin_blocked_says_it_is_blocked():
    manager = PsyrunPluginManager(disabled={"h5"})
    manager.load_builtins()
    manager.load_entrypoints()
    manager.collect()
    with pytest.raises(PluginNotFoundError) as caught:
        manager.store_for_extension(".h5")
    assert "blocked by PSYRUN_DISABLED_PLUGINS" in str(caught.value)
    assert "pip install" not in str(caught.value)


def test_a_path_without_extension_lists_the_usable_ones():
    manager = bare_manager()
    with pytest.raises(PluginNotFoundError, match="no file extension. Use one of: .*.pkl"):
        manager.store_for_path(Path("results") / "out")


def test_a_hook_that_raises_or_yields_a_non_record_fails_only_its_plugin():
    class Raising:
        @psyrun.plugins.hookimpl
        def psyrun_register_stores(self):
            raise RuntimeError("disk on fire")
            yield  # pragma: no cover

    class WrongRecord:
        @psyrun.plugins.hookimpl
        def psyrun_register_schedulers(self):
            yield PsyrunStore(name="oops", store=object, extensions=(".oops",))

    manager = bare_manager((Raising(), "raising"), (WrongRecord(), "wrong-record"))
    failed = {i.name: i.error for i in manager.plugin_infos() if i.status == "failed"}
    assert "disk on fire" in failed["raising"]
    assert "must yield PsyrunScheduler records" in failed["wrong-record"]
    assert "oops" not in manager.names("store")
    assert "pickle" in manager.names("store")


def test_resolve_looks_names_up_and_passes_objects_through():
    manager = bare_manager()
    pickle_store = manager.get("store", "pickle").store
    assert manager.resolve("store", "Pickle") is pickle_store
    instance = object()
    assert manager.resolve("store", instance) is instance
    assert manager.name_of("store", pickle_store) == "pickle"


# ------------------------------------------------------------------ hookspec documentation
HOOKSPECS = [name for name, _ in inspect.getmembers(hookspec.PsyrunSpecs, inspect.isfunction)]


def test_every_hook_the_manager_knows_is_a_hookspec_and_back():
    assert sorted(HOOKSPECS) == sorted(HOOKS)


def code_blocks(docstring: str) -> list[str]:
    """The bodies of the ``.. code-block:: python`` directives in a docstring."""
    text = inspect.cleandoc(docstring)
    blocks = []
    for match in re.finditer(r"^( *)\.\. code-block:: python\n\n((?:\1 +\S.*\n|\n)+)", text + "\n",
                             re.MULTILINE):
        blocks.append(textwrap.dedent(match.group(2)))
    return blocks


@pytest.mark.parametrize("name", HOOKSPECS)
def test_every_hookspec_is_documented_with_an_example_plugin(name):
    doc = getattr(hookspec.PsyrunSpecs, name).__doc__
    assert doc and doc.strip(), f"hookspec {name} has no docstring"
    blocks = code_blocks(doc)
    assert blocks, f"the docstring of {name} has no '.. code-block:: python' example"
    assert any("@hookimpl" in b and f"def {name}(" in b for b in blocks), (
        f"the example of {name} does not implement it with @hookimpl")


@pytest.mark.parametrize("name", HOOKSPECS)
def test_hookspec_examples_run_and_register(name):
    _, record_type = HOOKS[name]
    [example] = [b for b in code_blocks(getattr(hookspec.PsyrunSpecs, name).__doc__)
                 if f"def {name}(" in b]
    module = types.ModuleType(f"example_{name}")
    exec(compile(example, f"<example of {name}>", "exec"), module.__dict__)
    records = list(getattr(module, name)())
    assert records and all(isinstance(r, record_type) for r in records)
    manager = bare_manager((module, "example"))
    for record in records:
        assert manager.get(record_type.kind, record.name) == record


def test_a_builtin_that_fails_to_import_does_not_hide_its_siblings(monkeypatch):
    broken = ("broken-backend", "psyrun.backend.no_such_module:Nothing", {})
    monkeypatch.setattr(builtin, "_BACKENDS", [broken, *builtin._BACKENDS])
    manager = bare_manager()
    assert manager.names("backend") == ["distribute", "load-balancing"]
    failed = [i for i in manager.plugin_infos() if i.status == "failed"]
    assert len(failed) == 1
    assert "broken-backend" in failed[0].error and "no_such_module" in failed[0].error
