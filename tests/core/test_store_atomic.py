"""Atomic file replacement, which every store writes through."""

from __future__ import annotations

import os
import stat

import pytest
from psyrun.store.atomic import atomic_create, atomic_path


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_permissions_of_a_plain_new_file(tmp_path):
    old_umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "r.bin") as temp:
            temp.write_bytes(b"new")
    finally:
        os.umask(old_umask)
    assert mode(tmp_path / "r.bin") == 0o644  # not mkstemp's private 0o600


def test_replacing_keeps_the_permissions_of_the_old_file(tmp_path):
    target = tmp_path / "r.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_path(target) as temp:
        temp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "r.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_bytes(b"half")
        raise RuntimeError
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]


def test_temporary_files_are_hidden_with_an_extension_no_store_claims(tmp_path):
    with atomic_path(tmp_path / "r.pkl") as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".r.pkl.") and temp.suffix == ".tmp"
        temp.write_bytes(b"x")


def test_atomic_create_never_replaces_an_existing_file(tmp_path):
    target = tmp_path / "r.bin"
    with atomic_create(target) as temp:
        temp.write_bytes(b"first")
    with pytest.raises(FileExistsError), atomic_create(target) as temp:
        temp.write_bytes(b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["r.bin"]
