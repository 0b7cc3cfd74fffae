"""Every error tinyrobust reports to its user, under one base class.

The command line turns a `TinyRobustError` into one line on stderr and its `exit_code`; anything
else is a bug (exit 3, with the traceback written to a file). Exit codes:

    0  success
    1  a target's output differs from the reference (a result, not an exception)
    2  bad input or an unusable environment: a corrupt or unsupported model, bad data, a model over
       budget, a missing tool, a target that cannot be reached
    3  an internal error (a bug in tinyrobust)
"""

from __future__ import annotations

import unicodedata

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
# A run ended by a signal exits 128 + its number, as a shell reports it: 130 SIGINT, 143 SIGTERM, 129 SIGHUP.
EXIT_SIGNAL_BASE = 128


class TinyRobustError(Exception):
    """Base of every error the user can act on."""

    exit_code = EXIT_BAD_INPUT


class BadInputError(TinyRobustError):
    """Something the user gave (a file, an option, data) cannot be used; the message says what."""


class ModelFileError(BadInputError):
    """The model file is not a readable Keras .h5 model."""


class UnsupportedModelError(BadInputError):
    """The model uses something tinyrobust cannot deploy; the message names the layer."""


class DatasetError(BadInputError):
    """A dataset .npz is unreadable or does not fit the model."""


class BoardError(BadInputError):
    """A board is unknown or its board.toml is malformed."""


class BudgetError(BadInputError):
    """The model does not fit the board; the message says where, by how much, and what would fit."""


class ExportError(BadInputError):
    """An export directory is missing, foreign or corrupt, or cannot be written."""


class EnvironmentProblem(TinyRobustError):
    """A tool tinyrobust needs is missing or failed (compiler, emulator)."""


class BuildError(EnvironmentProblem):
    """The firmware did not compile or link; the message holds the tool's output."""


class TargetError(TinyRobustError):
    """A target could not be opened, or its link failed beyond what retries mend."""


class InternalError(TinyRobustError):
    """An invariant of tinyrobust itself broke: a bug, reported as such."""

    exit_code = EXIT_INTERNAL


def _escaped(ch: str, keep: str) -> str:
    if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object, limit: int = 80) -> str:
    """A string from a file (a layer name, a class, a quantizer) as it may reach a terminal: control and
    format characters escaped (no escape sequence, no newline, no bidi trick reaches the screen) and cut
    to `limit` characters, saying how many were cut."""
    s = "".join(_escaped(ch, "") for ch in str(text))
    return s if len(s) <= limit else f"{s[:limit]}…({len(s) - limit} more characters)"


def terminal_message(text: object, limit: int = 4000) -> str:
    """An error message as the command line prints it: control characters escaped (newlines and tabs of
    multi-line tool output kept), and at most `limit` characters."""
    s = "".join(_escaped(ch, "\n\t") for ch in str(text))
    return s if len(s) <= limit else f"{s[:limit]}…({len(s) - limit} more characters)"
