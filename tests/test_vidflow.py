"""Shared helpers: atomic writes, deterministic JSON, picklable errors."""

import os
import pickle
import stat

import pytest
from vidflow.errors import UserError
from vidflow.io import atomic_path, read_json, write_json


def test_write_json_is_atomic_sorted_and_readable_by_others(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json(path, {"b": 1, "a": [1.5, "é"]})
    assert path.read_text() == '{\n  "a": [\n    1.5,\n    "é"\n  ],\n  "b": 1\n}\n'
    assert read_json(path) == {"a": [1.5, "é"], "b": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    write_json(path, {"z": 0}, compact=True)
    assert path.read_text() == '{"z":0}\n'


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_user_error_survives_pickling():
    err = pickle.loads(pickle.dumps(UserError("a.mp4", "no video stream")))
    assert isinstance(err, UserError) and str(err) == "a.mp4: no video stream" and err.reason == "no video stream"
