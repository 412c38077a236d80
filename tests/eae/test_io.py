import os
import stat

import pytest

from eae.errors import EAEError
from eae.io import atomic_dir, atomic_path, read_json, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == tmp_path
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_outputs_get_normal_permissions(tmp_path):
    write_json(tmp_path / "a.json", {"x": 1})
    mode = stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH


def test_atomic_dir(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("1")
    with pytest.raises(KeyError):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("2")
            raise KeyError
    assert os.listdir(target) == ["old"]
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("2")
    assert os.listdir(target) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["d"]


def test_read_json_errors(tmp_path):
    with pytest.raises(EAEError, match="missing"):
        read_json(tmp_path / "x.json")
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(EAEError, match="corrupt"):
        read_json(tmp_path / "x.json")
    write_json(tmp_path / "y.json", {"b": [1, 2]})
    assert read_json(tmp_path / "y.json") == {"b": [1, 2]}
