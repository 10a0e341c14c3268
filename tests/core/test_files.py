"""write_atomically: the old content or the new, never a torn file, and no temp left behind."""

import os
import stat

import pytest

from clonedesk.core import files
from clonedesk.core.files import write_atomically


def test_replaces_the_content_with_the_mode_asked_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "state.json"
    write_atomically(target, "first")
    write_atomically(target, "second", mode=0o600)
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["state.json"]
    write_atomically(tmp_path / "secret.json", "{}", mode=0o600)
    assert stat.S_IMODE((tmp_path / "secret.json").stat().st_mode) == 0o600


def test_a_write_that_fails_half_way_leaves_the_old_content(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    write_atomically(target, "old")

    def dies(_fd):
        raise OSError("disk gone")

    monkeypatch.setattr(files.os, "fsync", dies)
    with pytest.raises(OSError, match="disk gone"):
        write_atomically(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]
