"""Where the firmware's C lives, and the flags every build of it shares (host and cross).

firmware/tr_nn      the kernel library (static C, copied verbatim into exports)
firmware/app        the evaluation firmware: protocol loop, start-up
firmware/runner     the kernel runner: one kernel call per case, for the tests and the bench
firmware_templates  jinja2 templates only: the model library, per-family call macros, the runner's
                    dispatch and the linker script
"""

from __future__ import annotations

from pathlib import Path

from ..resources import resource_dir

# Warnings are errors everywhere: the same sources must stay clean for every build.
WARNING_FLAGS: tuple[str, ...] = ("-std=c11", "-Wall", "-Wextra", "-Werror")
# Selects every kernel's plain-C path even where the Arm DSP extension is present.
PLAIN_C_FLAG = "-DTR_NN_FORCE_REFERENCE"


def firmware_dir() -> Path:
    return resource_dir("firmware")


def templates_dir() -> Path:
    return resource_dir("firmware_templates")


def tr_nn_dir() -> Path:
    return firmware_dir() / "tr_nn"


def app_dir() -> Path:
    return firmware_dir() / "app"


def runner_dir() -> Path:
    return firmware_dir() / "runner"


def tr_nn_sources() -> list[Path]:
    """Every .c file of the kernel library, sorted for reproducible builds."""
    return sorted(tr_nn_dir().glob("*.c"))
