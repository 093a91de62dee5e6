"""``python -m psyrun.cli`` runs the ``psy`` command line."""

from psyrun.cli import main

main()
