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

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


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
