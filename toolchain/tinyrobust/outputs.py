"""Where results go: checked before the work starts, written whole or not at all.

A report that cannot be written after a ten-minute run is a lost run, so every output path (-o, --json,
--html, --out, --work-dir) is checked first (`check_file`, `check_directory`): the nearest directory
that exists must be one, and a file must be creatable there, which is tried for real (a probe file,
removed at once) because permission bits say nothing on read-only or virtual file systems. Reports are
then written to a temporary file beside the target and renamed over it (`write_text`), so a reader never
sees half a report; if even that fails, the report is saved in the temporary directory and the error
says where.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .errors import BadInputError


class OutputError(BadInputError):
    """An output path cannot be written."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _probe(directory: Path, option: str, shown: Path) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".tinyrobust-probe-", dir=directory)
    except OSError as exc:
        raise OutputError(f"{option} {shown}: cannot create files in {directory} ({exc.strerror})") from exc
    os.close(fd)
    os.unlink(probe)


def check_file(path: Path, option: str) -> None:
    """`path` can be written as a file: not a directory, and creatable in its nearest existing directory."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory; name a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: exists and is not writable")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise OutputError(f"{option} {path}: {base} is not a directory")
    _probe(base, option, path)


def check_directory(path: Path, option: str) -> None:
    """`path` is, or can become, a directory we can write into."""
    path = Path(path)
    base = _nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"{option} {path}: {base} exists and is not a directory")
    _probe(base, option, path)


def plain_write_mode(path: Path) -> int:
    """The permissions a plain write would give `path`: its own when it exists, else 0666 less the umask
    (mkstemp makes 0600 files, and a report only its writer can read is a surprise)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path: Path, text: str, option: str) -> None:
    """Write `text` to `path` atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = plain_write_mode(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        fd, saved = tempfile.mkstemp(prefix=f"tinyrobust-{path.stem}-", suffix=path.suffix)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        raise OutputError(f"{option} {path}: could not be written ({exc.strerror or exc}); the report was "
                          f"saved to {saved}") from exc
