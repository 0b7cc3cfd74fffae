"""The C names of a generated model library, all from one prefix (`tinyrobust export --name`).

Prefix `kws` gives kws_model.h/.c and kws_model_weights.h/.c, functions kws_model_run..., tables
kws_op<i>_<array>, macros and header guards KWS_MODEL_..., so several models link into one firmware.
The default prefix `tr` gives the names the evaluation app is written against (tr_model.h); for any
other, the firmware build adds a binding header (firmware_templates/app/tr_model.h.j2).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import BuildError, ExportError

DEFAULT_PREFIX = "tr"
# Lower case only: the macros are the upper-cased prefix, so `kws` and `KWS` would share them.
_PREFIX_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# The library's template names; a library's files are these with `tr` replaced by its prefix.
LIBRARY_FILES = ("tr_model.h", "tr_model.c", "tr_model_weights.h", "tr_model_weights.c")
_WEIGHTS_SUFFIX = "_model_weights.c"


def prefix_problem(prefix: str) -> str | None:
    """Why `prefix` cannot start the library's C names, or None."""
    if not _PREFIX_RE.fullmatch(prefix):
        return (f"'{prefix}' is not a C name prefix: use 1-32 lower-case letters, digits and _, starting with "
                "a letter")
    if prefix != DEFAULT_PREFIX and (prefix.startswith("tr_") or prefix.endswith("_")):
        return f"'{prefix}': a prefix may not start with tr_ (the kernel library's names) nor end with _"
    return None


def check_prefix(prefix: str) -> None:
    problem = prefix_problem(prefix)
    if problem:
        raise ExportError(problem)


def library_file(name: str, prefix: str) -> str:
    """`name` (one of LIBRARY_FILES) for the library with `prefix`."""
    return prefix + name[len(DEFAULT_PREFIX):]


def library_prefix(model_dir: Path) -> str:
    """The prefix of the one generated library in `model_dir` (found by its <prefix>_model_weights.c)."""
    found = sorted(p.name[: -len(_WEIGHTS_SUFFIX)] for p in Path(model_dir).glob(f"*{_WEIGHTS_SUFFIX}"))
    if len(found) != 1:
        what = "no generated model library" if not found else f"{len(found)} model libraries ({', '.join(found)})"
        raise BuildError(f"{model_dir}: expected one generated model (<prefix>_model.c and "
                         f"<prefix>_model_weights.c), found {what}")
    return found[0]
