"""The hooks a psyrun plugin implements.

A plugin is a module (or object) with functions decorated by
:data:`psyrun.plugins.hookimpl`.  It is found through the ``psyrun``
entry-point group, so a third-party distribution declares, in its
``pyproject.toml``::

    [project.entry-points.psyrun]
    my-plugin = "my_package.plugin"

Each hook takes no arguments and yields typed records; the manager checks the
records and registers them under their (normalised) names.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from psyrun.plugins import PROJECT_NAME
from psyrun.plugins.types import PsyrunBackend, PsyrunScheduler, PsyrunStore

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class PsyrunSpecs:
    """The hookspecs of psyrun; every plugin implements one or more."""

    @hookspec
    def psyrun_register_stores(self) -> Iterable[PsyrunStore]:
        """Register stores: file formats that hold parameters and results.

        Yield one :class:`~psyrun.plugins.types.PsyrunStore` per store.  Its
        ``extensions`` are the file extensions the store writes; ``psy merge``
        and the result file of a task pick the store by them.

        Example: a store for JSON-lines files.

        .. code-block:: python

            from psyrun.plugins import PsyrunStore, hookimpl
            from psyrun.store import Store


            class JsonLinesStore(Store):
                ext = ".jsonl"
                ...  # save, load, append, count: see the plugin author guide


            @hookimpl
            def psyrun_register_stores():
                yield PsyrunStore(
                    name="jsonl", store=JsonLinesStore, extensions=(".jsonl",)
                )
        """

    @hookspec
    def psyrun_register_schedulers(self) -> Iterable[PsyrunScheduler]:
        """Register schedulers: the things that run psyrun's jobs.

        Yield one :class:`~psyrun.plugins.types.PsyrunScheduler` per
        scheduler.  ``scheduler`` is a class implementing
        :class:`psyrun.scheduler.Scheduler`; a task file selects it with
        ``scheduler = "<name>"``.

        Example: a scheduler for a cluster reached with ``qsub``.

        .. code-block:: python

            from psyrun.plugins import PsyrunScheduler, hookimpl
            from psyrun.scheduler import Scheduler


            class PbsScheduler(Scheduler):
                ...  # submit, submit_array, kill, status: see the guide


            @hookimpl
            def psyrun_register_schedulers():
                yield PsyrunScheduler(name="pbs", scheduler=PbsScheduler)
        """

    @hookspec
    def psyrun_register_backends(self) -> Iterable[PsyrunBackend]:
        """Register backends: the ways a task is cut into jobs.

        Yield one :class:`~psyrun.plugins.types.PsyrunBackend` per backend.
        ``backend`` is a class implementing :class:`psyrun.backend.Backend`;
        a task file selects it with ``backend = "<name>"``.

        Example: a backend registered under the name ``one-job``.

        .. code-block:: python

            from psyrun.backend import Backend
            from psyrun.plugins import PsyrunBackend, hookimpl


            class OneJobBackend(Backend):
                ...  # create_job, get_missing, ...: see the guide


            @hookimpl
            def psyrun_register_backends():
                yield PsyrunBackend(name="one-job", backend=OneJobBackend)
        """
