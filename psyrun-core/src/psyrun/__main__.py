"""``python -m psyrun`` runs the ``psy`` command line."""

from psyrun.cli import main

main()
