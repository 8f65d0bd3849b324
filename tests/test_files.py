"""``atomic_write``: whole files or none, unique temporary names, usual permissions."""

import os

import pytest

from dens_calc.files import atomic_write, atomic_write_text


def test_two_writers_of_one_file_do_not_collide(tmp_path):
    """Two writers open at once (as two processes writing one folder): both land whole, the last wins."""
    target = tmp_path / "summary.yaml"
    with atomic_write(target) as first:
        first.write("first\n")
        with atomic_write(target) as second:  # a fixed temporary name would truncate `first`'s file here
            second.write("second\n")
        assert target.read_text() == "second\n"
    assert target.read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.yaml"]


def test_failed_write_keeps_old_content_and_leaves_no_temporary(tmp_path):
    target = atomic_write_text(tmp_path / "a.json", "old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as handle:
            handle.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_binary_mode_creates_folder_and_uses_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "x.bin"
    with atomic_write(target, "wb", fsync=True) as handle:
        handle.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_only_write_modes():
    with pytest.raises(ValueError, match="mode"):
        with atomic_write("x", "a"):
            pass
