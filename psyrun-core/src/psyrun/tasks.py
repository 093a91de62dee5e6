"""Task files: ``task_<name>.py`` modules that say what to compute and how.

A task file is plain Python.  Its module-level variables are the task's
settings; ``psy-conf.py`` in the same directory sets defaults for every task
there; psyrun's defaults (:class:`Config`) fill in the rest:

=======================  =======================================================
``pspace``               the parameter space (required)
``execute``              ``execute(**params) -> dict`` (required)
``setup``                ``setup(proc_id) -> dict`` called once per worker process;
                         the dict is passed as extra keyword arguments to ``execute``
``store``                the file format of inputs, outputs and the result: a name
                         (``"pickle"``, ``"npz"``, ``"h5"``), a class or an instance
``backend``              how the task is cut into jobs: a name (``"distribute"``,
                         ``"load-balancing"``) or a class
``scheduler``            what runs the jobs: a name (``"immediate"``, ``"slurm"``),
                         a class or an instance
``scheduler_args``       dict passed to the scheduler; values may be callables of
                         the job name ``<task>:<job>``
``max_jobs``             at most this many parallel jobs (default 100)
``min_items``            at least this many assignments per job (default 1)
``pool_size``            processes per job (default 1)
``workdir``              where psyrun keeps its files (default ``psy-work``,
                         relative to the current directory)
``resultfile``           the merged result (default ``<workdir>/<name>/result<ext>``)
``file_dep``             further files the task depends on (rerun when they change)
``exclude_from_result``  output keys left out of the result file
``python``               the interpreter that runs the jobs (default: this one)
``overwrite_dirty``      rerun over results of an older task definition (default True)
``name``                 the task's name (default: from the file name)
=======================  =======================================================

Plugin settings given by name are looked up through the plugin manager, so a
missing plugin is reported with the command that installs it.  Every problem
with a task file becomes one :class:`~psyrun.exceptions.TaskDefinitionError`
naming the file (and the line, for errors raised while it runs) and what to do.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from psyrun.exceptions import PluginError, TaskDefinitionError, TaskWarning

TASK_PREFIX = "task_"
CONF_FILE = "psy-conf.py"
DEFAULT_TASKDIR = "psy-tasks"

#: Every setting a task file or psy-conf.py may define, with its default.
DEFAULTS: dict[str, Any] = {
    "pspace": None,
    "execute": None,
    "setup": None,
    "store": "pickle",
    "backend": "distribute",
    "scheduler": "immediate",
    "scheduler_args": {},
    "max_jobs": 100,
    "min_items": 1,
    "pool_size": 1,
    "workdir": "psy-work",
    "resultfile": None,
    "file_dep": [],
    "exclude_from_result": [],
    "python": sys.executable,
    "overwrite_dirty": True,
    "name": None,
}
SETTINGS = frozenset(DEFAULTS)

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


# ---------------------------------------------------------------- loading files
def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _error_line(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` at which ``exc`` was raised, if it passed through it."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return line


def exec_file(path: Path, module_name: str) -> dict[str, Any]:
    """Run a Python file as module ``module_name``; return its namespace.

    Errors become one :class:`TaskDefinitionError` with the file and line.
    """
    where = _display(path)
    try:
        source = path.read_text()
    except OSError as exc:
        raise TaskDefinitionError(f"Cannot read {where}: {exc.strerror}.") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise TaskDefinitionError(
            f"{where}, line {exc.lineno}: {exc.msg}. Fix the syntax error and run again."
        ) from None
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    # Registered so that objects of classes defined in the task file pickle
    # and unpickle in the worker, which loads the file under the same name.
    sys.modules[module_name] = module
    taskdir = str(path.parent)
    if taskdir not in sys.path:  # task files may import helper modules next to them
        sys.path.insert(0, taskdir)
    try:
        exec(code, module.__dict__)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        line = _error_line(exc, path)
        at = f", line {line}" if line is not None else ""
        hint = ("Install the missing module or fix the import."
                if isinstance(exc, ImportError) else "Fix the task file and run again.")
        raise TaskDefinitionError(
            f"{where}{at}: loading it raised {type(exc).__name__}: {exc}. {hint}"
        ) from None
    return module.__dict__


def _public_settings(namespace: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in namespace.items() if k in SETTINGS}


def _warn_misspelt(namespace: Mapping[str, Any], path: Path) -> None:
    for key, value in namespace.items():
        if key.startswith("_") or key in SETTINGS or isinstance(value, type(sys)):
            continue
        close = difflib.get_close_matches(key, sorted(SETTINGS), n=1, cutoff=0.8)
        if close:
            warnings.warn(
                f"{_display(path)}: '{key}' is not a psyrun setting; did you mean "
                f"'{close[0]}'?",
                TaskWarning,
                stacklevel=3,
            )


class Config:
    """The defaults of every task in a directory: psyrun's, then ``psy-conf.py``.

    psyrun 0.8 exposed this class as ``psyrun.tasks.Config``; it still works
    the same way: attributes are the settings.
    """

    def __init__(self, **settings: Any) -> None:
        for key, value in DEFAULTS.items():
            setattr(self, key, _copy(value))
        for key, value in settings.items():
            if key not in SETTINGS:
                raise TaskDefinitionError(f"Unknown task setting {key!r}.")
            setattr(self, key, value)
        #: The settings given explicitly (not psyrun's defaults).
        self.given = frozenset(settings)

    @classmethod
    def load_from_file(cls, filename: str | os.PathLike[str]) -> Config:
        """The defaults with the settings of ``filename`` (a ``psy-conf.py``) on top."""
        path = Path(filename).resolve()
        namespace = exec_file(path, "psyrun_conf_" + _module_suffix(path.parent))
        _warn_misspelt(namespace, path)
        conf = cls(**_public_settings(namespace))
        #: The file the settings came from (errors in its values name it).
        conf.path = path
        return conf

    @classmethod
    def for_taskdir(cls, taskdir: str | os.PathLike[str]) -> Config:
        """The defaults of the tasks in ``taskdir`` (its ``psy-conf.py`` if it has one)."""
        conf = Path(taskdir) / CONF_FILE
        return cls.load_from_file(conf) if conf.exists() else cls()

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in DEFAULTS if key != "given"}


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def _module_suffix(path: Path) -> str:
    return re.sub(r"\W", "_", str(path))[-60:]


def validate_task_name(name: str) -> str:
    """Refuse names that could escape the work directory."""
    if (not isinstance(name, str) or not name or "/" in name or "\\" in name
            or ".." in name or not _NAME_PATTERN.match(name)):
        raise TaskDefinitionError(
            f"Invalid task name {name!r}: use letters, digits, '_', '-', '.' and no "
            "path separators or '..' (the task file is psy-tasks/task_<name>.py)."
        )
    return name


# ---------------------------------------------------------------- the task
class TaskDef:
    """A loaded task file with every setting resolved.

    Attributes are the settings of the module docstring, with plugins
    resolved: ``store`` is a store instance, ``backend`` a backend class,
    ``scheduler`` a scheduler instance; ``workdir`` and ``resultfile`` are
    absolute paths.  Other module-level names of the task file are reachable
    as attributes too (as in psyrun 0.8).

    ``path`` is the task file; ``taskdir`` its directory; ``taskworkdir``
    (``<workdir>/<name>``) holds everything psyrun writes for the task.
    """

    def __init__(self, path: str | os.PathLike[str], conf: Config | None = None, *,
                 plugins: Mapping[str, str] | None = None) -> None:
        #: kind -> "module:qualname" of plugins already resolved by ``psy run``;
        #: the worker gets them so that it need not build the plugin manager.
        self._resolved_paths = dict(plugins or {})
        self.path = Path(path).resolve()
        self.taskdir = self.path.parent
        stem = self.path.stem
        if not stem.startswith(TASK_PREFIX) or self.path.suffix != ".py":
            raise TaskDefinitionError(
                f"{_display(self.path)} is not a task file: task files are named "
                "task_<name>.py."
            )
        file_name = validate_task_name(stem[len(TASK_PREFIX):])
        #: The name in the file name (``task_<name>.py``); the worker loads the task by it.
        self.file_task_name = file_name
        if conf is None:
            conf = Config.for_taskdir(self.taskdir)
        self.namespace = exec_file(self.path, "psyrun_task_" + file_name)
        self._conf_path = getattr(conf, "path", None)
        self._conf_given = frozenset(getattr(conf, "given", frozenset()))
        _warn_misspelt(self.namespace, self.path)
        settings = conf.as_dict()
        settings.update(_public_settings(self.namespace))
        self.settings = settings
        #: Settings the task file or psy-conf.py set (the others are defaults).
        self.given = frozenset(getattr(conf, "given", frozenset())) | frozenset(
            _public_settings(self.namespace))
        self._resolve(settings, file_name)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set in __init__: the task file's own.
        namespace = self.__dict__.get("namespace")
        if namespace is not None and name in namespace:
            return namespace[name]
        raise AttributeError(f"task has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"TaskDef({str(self.path)!r})"

    # -------------------------------------------------------- validation
    def _fail(self, message: str, key: str | None = None) -> TaskDefinitionError:
        """The error for the file that set ``key``: the task file, or psy-conf.py."""
        where = self.path
        conf_path = getattr(self, "_conf_path", None)
        if (key is not None and conf_path is not None and key not in self.namespace
                and key in getattr(self, "_conf_given", ())):
            where = conf_path
        return TaskDefinitionError(f"{_display(where)}: {message}")

    def _resolve(self, s: dict[str, Any], file_name: str) -> None:
        try:
            self.name = validate_task_name(s["name"]) if s["name"] is not None else file_name
        except TaskDefinitionError as exc:
            raise self._fail(f"'name': {exc}", "name") from None

        if s["pspace"] is None:
            raise self._fail("defines no 'pspace'. Add a parameter space, for example "
                             "pspace = Param(x=range(10)).")
        if not (callable(getattr(s["pspace"], "build", None))
                and callable(getattr(s["pspace"], "keys", None))):
            raise self._fail(f"'pspace' must be a parameter space (psyrun.Param), got "
                             f"{type(s['pspace']).__name__}.", "pspace")
        self.pspace = s["pspace"]

        if s["execute"] is None:
            raise self._fail("defines no 'execute'. Add a function "
                             "def execute(**params): return {...}.")
        if not callable(s["execute"]):
            raise self._fail("'execute' must be a function taking the parameters as "
                             "keyword arguments and returning a dict.", "execute")
        self.execute = s["execute"]
        self._check_execute_takes_the_parameters()
        if s["setup"] is not None and not callable(s["setup"]):
            raise self._fail("'setup' must be a function setup(proc_id) returning a dict.",
                             "setup")
        self.setup = s["setup"]

        for key in ("max_jobs", "min_items", "pool_size"):
            value = s[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise self._fail(f"'{key}' must be a positive integer, got {value!r}.", key)
        self.max_jobs = s["max_jobs"]
        self.min_items = s["min_items"]
        self.pool_size = s["pool_size"]

        if not isinstance(s["scheduler_args"], Mapping):
            raise self._fail("'scheduler_args' must be a dict, got "
                             f"{type(s['scheduler_args']).__name__}.", "scheduler_args")
        self.scheduler_args = dict(s["scheduler_args"])

        self.file_dep = [self._path(p, relative_to=self.taskdir, key="file_dep")
                         for p in self._list("file_dep", s["file_dep"])]
        self.exclude_from_result = [str(k) for k in self._list("exclude_from_result",
                                                               s["exclude_from_result"])]
        params = [k for k in self.exclude_from_result if k in set(self.pspace.keys())]
        if params:
            # Rows are matched to assignments by their parameters: without
            # them every row would count as missing for psy status and run -c.
            raise self._fail(f"'exclude_from_result' names the parameter '{params[0]}'; "
                             "parameters always stay in the result. Remove it from the list.",
                             "exclude_from_result")
        self.python = str(s["python"])
        self.overwrite_dirty = bool(s["overwrite_dirty"])

        self.store = self._resolve_plugin("store", s["store"], instantiate=True)
        if not all(callable(getattr(self.store, m, None)) for m in ("save", "load", "append")):
            raise self._fail(f"'store' must be a store name such as 'pickle', 'npz' or 'h5', "
                             f"or a store class or instance, got {s['store']!r}.", "store")
        self.backend = self._resolve_plugin("backend", s["backend"], instantiate=False)
        if not isinstance(self.backend, type):
            raise self._fail(f"'backend' must be a backend name ('distribute', "
                             f"'load-balancing') or a backend class, got {s['backend']!r}.",
                             "backend")
        self._scheduler_spec = s["scheduler"]
        self._scheduler = None
        if not isinstance(s["scheduler"], str) and not isinstance(s["scheduler"], type):
            self._scheduler = s["scheduler"]  # an instance made by the task file
        elif isinstance(s["scheduler"], str) and "scheduler" not in self._resolved_paths:
            self._resolve_plugin("scheduler", s["scheduler"], instantiate=False)

        self.workdir = self._path(s["workdir"], relative_to=Path.cwd(), key="workdir")
        self.taskworkdir = self.workdir / self.name
        ext = getattr(self.store, "ext", "") or ""
        if s["resultfile"] is None:
            self.resultfile = self.taskworkdir / f"result{ext}"
        else:
            self.resultfile = self._path(s["resultfile"], relative_to=Path.cwd(),
                                         key="resultfile")
            self._check_result_extension(ext)

    def _check_execute_takes_the_parameters(self) -> None:
        """Refuse an ``execute`` that cannot take a parameter of the space.

        Every assignment would fail with the same TypeError; one line now
        is better than a failed item per assignment after the run.
        """
        import inspect

        try:
            signature = inspect.signature(self.execute)
        except (TypeError, ValueError):
            return  # a callable Python cannot inspect: let it run
        accepted = signature.parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
            return
        names = {p.name for p in accepted if p.kind in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
        absent = [k for k in list(self.pspace.keys()) if k not in names]
        if absent:
            raise self._fail(
                f"execute{signature} does not take the parameter '{absent[0]}' of the "
                f"parameter space. Add it to execute's arguments (or **params).",
                "execute")

    def _list(self, key: str, value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, (str, os.PathLike)):
            return [value]
        try:
            return list(value)
        except TypeError:
            raise self._fail(f"'{key}' must be a list, got {type(value).__name__}.",
                             key) from None

    def _path(self, value: Any, relative_to: Path, key: str) -> Path:
        if not isinstance(value, (str, os.PathLike)):
            raise self._fail(f"'{key}' must be a path (a string), got {value!r}.", key)
        path = Path(os.path.expanduser(os.fspath(value)))
        return path if path.is_absolute() else (relative_to / path)

    def _check_result_extension(self, ext: str) -> None:
        """Refuse a result file whose extension belongs to another store.

        The store writes its own format whatever the name; ``result.h5``
        written by the pickle store could not be read by ``load_result`` or
        ``psy merge``, which choose the store by the extension.
        """
        from psyrun.store.autodetect import AutodetectStore

        suffix = self.resultfile.suffix
        if (not ext or suffix == ext or isinstance(self.store, AutodetectStore)
                or self._resolved_paths):  # a worker: psy run checked it already
            return
        from psyrun.plugins.manager import get_plugin_manager

        try:
            owner = get_plugin_manager().store_for_path(self.resultfile).store
        except PluginError:
            return  # an extension no store claims: nothing would misread it
        if isinstance(self.store, owner) or not isinstance(owner, type):
            return
        manager = get_plugin_manager()
        wanted = manager.name_of("store", owner) or owner.__name__
        mine = manager.name_of("store", self.store) or type(self.store).__name__
        raise self._fail(
            f"'resultfile' {_display(self.resultfile)} is a {suffix} file, but the task's "
            f"store ({mine}) writes {ext} files that load_result could not read under that "
            f"name. Name it {self.resultfile.with_suffix(ext).name}, or set "
            f"store = {wanted!r}.", "resultfile")

    def _resolve_plugin(self, kind: str, spec: Any, instantiate: bool) -> Any:
        if not isinstance(spec, str):
            value = spec  # a class or instance made by the task file
        elif kind in self._resolved_paths:
            value = import_object(self._resolved_paths[kind])
        else:
            from psyrun.plugins.manager import get_plugin_manager

            try:
                value = get_plugin_manager().resolve(kind, spec)
            except PluginError as exc:
                raise self._fail(f"'{kind}': {exc}", kind) from None
        if instantiate and isinstance(value, type):
            try:
                value = value()
            except Exception as exc:
                raise self._fail(f"cannot create the {kind} {value.__name__}: "
                                 f"{type(exc).__name__}: {exc}", kind) from None
        return value

    # -------------------------------------------------------- derived objects
    @property
    def scheduler(self) -> Any:
        """The scheduler instance (created on first use, with its files in the work dir)."""
        if self._scheduler is None:
            cls = self._resolve_plugin("scheduler", self._scheduler_spec, instantiate=False)
            try:
                self._scheduler = cls(workdir=self.taskworkdir / "scheduler")
            except TypeError:
                self._scheduler = cls()
        if getattr(self._scheduler, "workdir", False) is None:
            # An instance made without a workdir (``Slurm()`` in a 0.8 task
            # file) would keep its job records in memory only; give it the
            # task's, so a later ``psy status`` finds them.
            self._scheduler.workdir = self.taskworkdir / "scheduler"
        return self._scheduler

    def create_backend(self) -> Any:
        """An instance of the task's backend for this task."""
        return self.backend(self)

    def plugin_paths(self) -> dict[str, str]:
        """``"module:qualname"`` of the plugins the task named, for :class:`TaskDef`'s ``plugins``.

        Only plugins given by name are listed (the task file makes the others
        itself), and only if they can be imported by that path.
        """
        resolved = {"store": type(self.store), "backend": self.backend}
        if isinstance(self.settings["scheduler"], str):
            resolved["scheduler"] = type(self.scheduler)
        paths = {}
        for kind, cls in resolved.items():
            if not isinstance(self.settings[kind], str):
                continue
            path = f"{cls.__module__}:{cls.__qualname__}"
            if "<" not in path and not cls.__module__.startswith(("psyrun_task_", "psyrun_conf_")):
                paths[kind] = path
        return paths

    @property
    def dependencies(self) -> list[Path]:
        """Files whose change makes the task out of date."""
        return [self.path, *self.file_dep]


def import_object(path: str) -> Any:
    """The object ``"package.module:Qual.name"`` names."""
    module_name, _, qualname = path.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


# ---------------------------------------------------------------- finding tasks
def task_path(taskdir: str | os.PathLike[str], name: str) -> Path:
    return Path(taskdir) / f"{TASK_PREFIX}{validate_task_name(name)}.py"


def find_task_files(taskdir: str | os.PathLike[str]) -> list[Path]:
    """The task files in ``taskdir``, sorted by name."""
    taskdir = Path(taskdir)
    if not taskdir.is_dir():
        raise TaskDefinitionError(
            f"The task directory {_display(taskdir)} does not exist. Run psy in the "
            "directory holding psy-tasks/, or pass --taskdir, or create a task with "
            "psy new-task NAME."
        )
    return sorted(p for p in taskdir.glob(f"{TASK_PREFIX}*.py") if p.is_file())


def task_names(taskdir: str | os.PathLike[str]) -> list[str]:
    return [p.stem[len(TASK_PREFIX):] for p in find_task_files(taskdir)]


def _renamed_tasks(taskdir: str | os.PathLike[str]) -> dict[str, Path]:
    """``name`` setting -> file, for the task files whose name is not their file's.

    Found by reading the files' text for a ``name =`` line first, so that
    only the candidates are loaded.
    """
    found = {}
    for path in find_task_files(taskdir):
        try:
            text = path.read_text()
        except OSError:
            continue
        if re.search(r"^name\s*=", text, re.MULTILINE):
            try:
                name = TaskDef(path).name
            except TaskDefinitionError:
                continue  # not the one asked for, or reported when it is run itself
            if name != path.stem[len(TASK_PREFIX):]:
                found[name] = path
    return found


def load_tasks(taskdir: str | os.PathLike[str], names: Iterable[str] = ()) -> list[TaskDef]:
    """The tasks called ``names`` (all tasks if empty) from ``taskdir``.

    Every file is loaded before anything happens, so a broken one stops the
    command before a single job is submitted.
    """
    names = list(dict.fromkeys(names))  # `psy run a a` means a, once
    if not names:
        paths = find_task_files(taskdir)
        if not paths:
            raise TaskDefinitionError(
                f"No task files (task_<name>.py) in {_display(Path(taskdir))}. "
                "Create one with psy new-task NAME."
            )
    else:
        available = task_names(taskdir)
        paths = []
        renamed: dict[str, Path] | None = None
        for name in names:
            path = task_path(taskdir, name)
            if not path.is_file():
                # A task file may set 'name'; psy prints that name in its
                # hints (psy run -c NAME), so it must find the task by it.
                if renamed is None:
                    renamed = _renamed_tasks(taskdir)
                if name in renamed:
                    paths.append(renamed[name])
                    continue
                close = difflib.get_close_matches(name, available, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise TaskDefinitionError(
                    f"No task '{name}' in {_display(Path(taskdir))}.{hint} "
                    f"Available: {', '.join(available) or 'none'}."
                )
            paths.append(path)
    conf = Config.for_taskdir(taskdir)
    # a file asked for by its file name and by its 'name' setting is one task
    tasks = [TaskDef(path, conf) for path in dict.fromkeys(paths)]
    seen: dict[str, TaskDef] = {}
    for task in tasks:
        other = seen.setdefault(task.name, task)
        if other is not task:
            # They would share psy-work/<name>/, each run overwriting the other.
            raise TaskDefinitionError(
                f"{_display(other.path)} and {_display(task.path)} both name their task "
                f"'{task.name}'. Give one of them another 'name'.")
    return tasks
