"""The ``psy`` command itself: help, version, ``psy plugins``, a light start.

Every test runs the installed ``psy`` console script in a subprocess, in a
temporary directory, as a user would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from psyrun.cli import COMMANDS

SITES = Path(__file__).resolve().parents[1] / "data" / "plugin-sites"
DISTRIBUTIONS = ("psyrun", "psyrun-store-h5", "psyrun-sched-slurm", "psyrun-sched-sqsub")


def psy_executable() -> str:
    """The ``psy`` of the environment running the tests."""
    beside = Path(sys.executable).parent / ("psy.exe" if os.name == "nt" else "psy")
    found = str(beside) if beside.exists() else shutil.which("psy")
    assert found, "the psy console script is not installed"
    return found


def psy(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "PSYRUN_DISABLED_PLUGINS"}
    environ.update(env or {})
    return subprocess.run([psy_executable(), *args], cwd=cwd, env=environ, capture_output=True,
                          text=True, timeout=120)


def with_sites(*names: str) -> dict[str, str]:
    """PYTHONPATH that makes the test plugin distributions look installed."""
    paths = [str(SITES / name) for name in names]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(paths)}


def table(output: str) -> list[list[str]]:
    """The rows of ``psy plugins``: five columns, the status with its error."""
    lines = output.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS"]
    return [line.split(None, 4) for line in lines[1:] if line.strip()]


# ------------------------------------------------------------------ help and version
def test_help_lists_the_commands(tmp_path):
    result = psy("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: psy ")
    assert "plugins" in result.stdout
    for name, target in COMMANDS.items():
        if importlib.util.find_spec(target.split(":")[0]) is not None:
            assert f"\n  {name} " in result.stdout, f"{name} missing from psy --help"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_help(tmp_path, command):
    module = COMMANDS[command].split(":")[0]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not written yet")
    result = psy(command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: psy {command}")
    assert not list(tmp_path.iterdir()), "--help must not create files"


def test_short_help_option(tmp_path):
    result = psy("-h", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == psy("--help", cwd=tmp_path).stdout


def test_version_is_the_one_version_of_all_four_distributions(tmp_path):
    result = psy("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "psy, version 0.9.0"
    assert {metadata.version(d) for d in DISTRIBUTIONS} == {"0.9.0"}


def test_an_unknown_command_is_a_usage_error(tmp_path):
    result = psy("nonesuch", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'nonesuch'" in result.stderr


def test_help_does_not_import_heavy_modules(tmp_path):
    # `psy --help` must stay fast: numpy, PyTables, joblib and pandas are
    # imported only by the commands and plugins that use them.
    code = (
        "import sys\n"
        "from psyrun.cli import cli\n"
        "code = cli.main(['--help'], prog_name='psy', standalone_mode=False)\n"
        "heavy = sorted({'numpy', 'tables', 'joblib', 'pandas'} & set(sys.modules))\n"
        "print('heavy:', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage: psy" in result.stdout
    assert "heavy: []" in result.stdout


# ------------------------------------------------------------------ psy plugins
def test_plugins_lists_name_kind_distribution_version_status(tmp_path):
    result = psy("plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert ["pickle", "store", "psyrun", "0.9.0", "active"] in rows
    assert ["immediate", "scheduler", "psyrun", "0.9.0", "active"] in rows
    # h5, slurm and sqsub come from their own distributions, working or not.
    by_name = {row[0]: row for row in rows}
    for name, distribution in [("h5", "psyrun-store-h5"), ("slurm", "psyrun-sched-slurm"),
                               ("sqsub", "psyrun-sched-sqsub")]:
        assert by_name[name][2:4] == [distribution, "0.9.0"]


def test_plugins_shows_failed_plugins_with_their_error_next_to_working_ones(tmp_path):
    result = psy("plugins", cwd=tmp_path, env=with_sites("broken", "good", "misspelt"))
    assert result.returncode == 0, result.stderr
    rows = {row[0]: row for row in table(result.stdout)}
    assert rows["json-lines"] == ["json-lines", "store", "psyrun-plugin-jsonl", "0.3.0", "active"]
    assert rows["fifo"] == ["fifo", "scheduler", "psyrun-plugin-jsonl", "0.3.0", "active"]
    broken = rows["broken"]
    assert broken[2:4] == ["psyrun-plugin-broken", "1.2.3"]
    assert broken[4].startswith("failed: ")
    assert "No module named 'psyrun_plugin_broken_dependency'" in broken[4]
    misspelt = rows["misspelt"]
    assert misspelt[4].startswith("failed: ") and "psyrun_register_store" in misspelt[4]


def test_plugins_shows_conflicts_with_both_distributions(tmp_path):
    result = psy("plugins", cwd=tmp_path, env=with_sites("clash"))
    assert result.returncode == 0, result.stderr
    pbs = [row for row in table(result.stdout) if row[0] == "pbs"]
    assert sorted(row[2] for row in pbs) == ["psyrun-plugin-pbs-a", "psyrun-plugin-pbs-b"]
    for row in pbs:
        assert row[4].startswith("conflict: ")
        assert "psyrun-plugin-pbs-a 1.0.0" in row[4] and "psyrun-plugin-pbs-b 2.0.0" in row[4]


def test_plugins_reflects_psyrun_disabled_plugins(tmp_path):
    env = with_sites("good") | {"PSYRUN_DISABLED_PLUGINS": "npz,jsonl"}
    result = psy("plugins", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    rows = {row[0]: row for row in table(result.stdout)}
    assert rows["npz"] == ["npz", "store", "psyrun", "0.9.0",
                           "blocked: blocked by PSYRUN_DISABLED_PLUGINS"]
    assert rows["jsonl"][2:] == ["psyrun-plugin-jsonl", "0.3.0",
                                 "blocked: blocked by PSYRUN_DISABLED_PLUGINS"]
    assert "json-lines" not in rows and "fifo" not in rows
    assert rows["pickle"][4] == "active"
