"""Helpers kept for psyrun 0.8 compatibility; only :mod:`psyrun.utils.example`."""
