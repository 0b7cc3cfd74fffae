"""The robustness evaluation's user errors and its exit code for a masking flag under --strict."""

from __future__ import annotations

from ...errors import BadInputError

# `--strict`: a gradient-masking flag is a failed verdict. Distinct from 1 (a target output differed
# from the reference), so a CI job can tell the two apart.
EXIT_MASKING_FLAGGED = 4


class RobustnessError(BadInputError):
    """Bad input to the robustness evaluation (shapes, labels, attack names, ε, budgets)."""
