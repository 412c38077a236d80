"""Issue 22, classes 4 and 5 at their root: reading only regular files, and write failures that name the
output and the reason."""

from __future__ import annotations

import os
import subprocess

import pytest

from eae.errors import EAEError, MissingArtifact
from eae.io import (
    atomic_files,
    atomic_path,
    check_regular_file,
    human_bytes,
    os_error_message,
    read_json,
    read_regular_bytes,
)

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.00 kB"),
        (1024, "1.02 kB"),
        (18_400_000, "18.4 MB"),
        (1.2e9, "1.20 GB"),
        (120e9, "120 GB"),
        (3.2e16, "32.0 PB"),
    ],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_only_regular_files_are_read(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO (named pipe)"), ("/dev/null", "a character device"), (tmp_path, "a directory")):
        with pytest.raises(EAEError, match=rf"^thing {path} is {kind.replace('(', '[(]').replace(')', '[)]')}, not"):
            check_regular_file(path, "thing")
    with pytest.raises(EAEError, match=r"^missing thing .*/nope$") as info:
        check_regular_file(tmp_path / "nope", "thing")
    assert type(info.value) is EAEError
    with pytest.raises(MissingArtifact, match=r"^missing thing .*/nope$") as info:
        check_regular_file(tmp_path / "nope", "thing", "density")
    assert info.value.artifact == "density"
    (tmp_path / "big").write_bytes(b"x" * 2001)
    with pytest.raises(EAEError, match=r"thing .*/big is larger than 2.00 kB \(2.00 kB\): not a thing"):
        read_regular_bytes(tmp_path / "big", "thing", limit=2000)
    assert read_regular_bytes(tmp_path / "big", "thing", limit=3000) == b"x" * 2001
    with pytest.raises(EAEError, match=r"^file .*/p is a FIFO"):  # reports/fid.json, a model card: never blocks
        read_json(fifo)


def test_error_line_names_the_destination_not_a_temporary(tmp_path):
    target = tmp_path / "out.bin"
    exc = OSError(28, "No space left on device", str(tmp_path / f".out.bin.{os.getpid()}.abc.bin"))
    assert os_error_message(exc, target) == f"cannot write {target}: No space left on device [ENOSPC]"
    staged = tmp_path / ".eae-set.1.x" / "g.onnx"
    assert (
        os_error_message(OSError(27, "File too large"), staged)
        == f"cannot write {tmp_path / 'g.onnx'}: File too large [EFBIG]"
    )
    parent = OSError(17, "File exists", str(tmp_path))
    assert os_error_message(parent, target) == f"cannot write {target}: {tmp_path}: File exists [EEXIST]"
    other = OSError(2, "No such file or directory", "/data/in.npy")
    assert os_error_message(other, target) == "cannot use /data/in.npy: No such file or directory [ENOENT]"


@pytest.fixture
def full_disk(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_names_the_output(full_disk):
    """A write that fails for space names the output (the temporary file is removed, the old file kept)."""
    import numpy as np
    import torch

    target = full_disk / "out.npy"
    target.write_bytes(b"old")
    with pytest.raises(EAEError) as info:
        with atomic_path(target) as tmp:
            np.save(tmp, np.zeros(100_000))
    assert str(info.value) == f"cannot write {target}: No space left on device [ENOSPC]"
    # torch.save reports a full disk as RuntimeError('... unexpected pos ...'): named as the full disk it is
    with pytest.raises(EAEError, match=rf"^cannot write {target.with_suffix('.pt')}: No space left on device"):
        with atomic_path(target.with_suffix(".pt")) as tmp:
            torch.save({"x": torch.zeros(100_000)}, tmp)
    with pytest.raises(EAEError, match=rf"^cannot write {full_disk}/{{a\.bin, b\.bin}}: No space left on device"):
        with atomic_files([full_disk / "a.bin", full_disk / "b.bin"]) as (a, b):
            a.write_bytes(b"a")
            b.write_bytes(b"b" * 200_000)
    assert sorted(os.listdir(full_disk)) == ["out.npy"] and target.read_bytes() == b"old"
