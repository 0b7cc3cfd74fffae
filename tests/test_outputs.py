"""outputs.py: reports are written whole, in place of the old one, with the permissions a plain write gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tinyrobust import outputs


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_report_gets_the_umask_permissions_not_mkstemps(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        outputs.write_text(tmp_path / "sub" / "r.json", "{}\n", "--json")
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "r.json").read_text() == "{}\n"
    assert _mode(tmp_path / "sub" / "r.json") == 0o644  # mkstemp alone would leave 0600


def test_replaced_report_keeps_its_permissions_and_no_temporary_is_left(tmp_path: Path) -> None:
    path = tmp_path / "r.md"
    path.write_text("old")
    path.chmod(0o640)
    outputs.write_text(path, "new", "--markdown")
    assert path.read_text() == "new" and _mode(path) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["r.md"]


def test_failed_rename_keeps_the_old_report_and_saves_the_new_one(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.json"
    path.write_text("old")

    def no_rename(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", no_rename)
    with pytest.raises(outputs.OutputError, match="could not be written .*saved to") as exc:
        outputs.write_text(path, "new", "--json")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]
    saved = Path(str(exc.value).rsplit(" ", 1)[1])
    assert saved.read_text() == "new"
    saved.unlink()
