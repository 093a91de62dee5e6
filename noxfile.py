"""Development sessions for the psyrun monorepo.

``nox`` (no arguments) runs what CI runs: ruff, the test suite with every
distribution installed, the docs with their doctests, and the packaging check.
pytest exits non-zero when it collects no test, so an empty run never passes.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
DISTRIBUTIONS = ["psyrun-core", "psyrun-store-h5", "psyrun-sched-slurm", "psyrun-sched-sqsub"]
PYPROJECT = nox.project.load_toml("pyproject.toml")

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "docs", "packaging"]
nox.options.reuse_existing_virtualenvs = True


def install_psyrun(session: nox.Session, *, editable: bool = True) -> None:
    """All four distributions in one call, so none is looked up on an index."""
    args = []
    for dist in DISTRIBUTIONS:
        args += ["-e", f"./{dist}"] if editable else [f"./{dist}"]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite with every distribution installed.

    Slurm tests skip without a running Slurm unless PSYRUN_REQUIRE_SLURM=1.
    Pass extra pytest arguments after ``--``.
    """
    install_psyrun(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *(session.posargs or ["tests", "--ignore=tests/packaging"]),
                env={"PSYRUN_REQUIRE_SLURM": os.environ.get("PSYRUN_REQUIRE_SLURM", "0")})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the docs and run their doctests (the seed guide runs in ``tests``)."""
    install_psyrun(session)
    session.install(*nox.project.dependency_groups(PYPROJECT, "docs"))
    session.run("sphinx-build", "-W", "--keep-going", "-b", "doctest", "docs", "docs/_build/doctest")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session
def packaging(session: nox.Session) -> None:
    """Build the wheels and check that plugins are found when installed from them.

    The test builds and installs with uv when it is on PATH, else with pip.
    """
    session.install("pytest")
    session.run("pytest", "tests/packaging", "-p", "no:cacheprovider")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks in bench/ and print their figures."""
    install_psyrun(session, editable=False)
    session.install(*nox.project.dependency_groups(PYPROJECT, "bench"))
    scripts = session.posargs or sorted(str(p) for p in (ROOT / "bench").glob("bench_*.py"))
    for script in scripts:
        session.run("python", script)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree (configuration in pyproject.toml)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
