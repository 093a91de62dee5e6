"""The plugin is found by name, and 0.8's import path works (or says how to install)."""

from __future__ import annotations

import subprocess
import sys

from psyrun.plugins.manager import get_plugin_manager


def test_slurm_is_registered_as_a_scheduler_plugin():
    from psyrun_sched_slurm import Slurm

    assert get_plugin_manager().get("scheduler", "slurm").scheduler is Slurm


def test_old_import_path_gives_the_plugin_class_with_the_old_signature(tmp_path):
    from psyrun.scheduler import Slurm
    from psyrun_sched_slurm.scheduler import Slurm as PluginSlurm

    assert Slurm is PluginSlurm
    assert Slurm().workdir is None
    assert Slurm(str(tmp_path)).workdir == tmp_path


def test_old_import_path_without_the_plugin_names_the_install_command():
    code = ("import sys; sys.modules['psyrun_sched_slurm'] = None\n"
            "try:\n    from psyrun.scheduler import Slurm\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'psyrun[slurm]'" in out
