"""Atomic output files: complete or absent, usual permissions, one clear error."""

import os

import pytest

from lmul_hw.files import atomic_write, output_dir


def test_atomic_write_gives_usual_permissions_and_no_temporaries(tmp_path):
    target = atomic_write(tmp_path / "out.txt", "hello\n")
    assert target.read_text() == "hello\n"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("bad", ["missing/out.txt", "."])
def test_unwritable_targets_are_value_errors(tmp_path, bad):
    with pytest.raises(ValueError, match="cannot write"):
        atomic_write(tmp_path / bad, b"x")
    assert not (tmp_path / "missing").exists()


def test_output_dir_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="cannot create output directory"):
        output_dir(tmp_path / "f" / "sub")


def test_special_files_are_written_in_place_and_links_followed(tmp_path):
    fifo_like = tmp_path / "sink"
    os.mkfifo(fifo_like)
    reader = os.open(fifo_like, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert atomic_write(fifo_like, "x\n") == fifo_like
        assert os.read(reader, 10) == b"x\n"
    finally:
        os.close(reader)
    assert fifo_like.exists() and not fifo_like.is_file()     # still the pipe, not replaced by a file
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    atomic_write(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
