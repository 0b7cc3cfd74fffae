"""What a run says while it works, on stdout before its results; stderr carries only warnings and errors,
so a bad input is still one line there.

Every step that can take more than about two seconds (loading TensorFlow and converting, building
firmware, starting an emulator, running samples, crafting attacks) announces itself with one line
before it starts, so a run is never silent. Progress bars are drawn only on a terminal; in a log file
or a pipe the same progress is a few plain lines (start, each quarter, end) instead of a wall of `\\r`.
`--quiet` keeps only results, warnings and errors.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

_state = {"quiet": False}
QUIET_SECONDS = 2.0  # steps shorter than this get no intermediate progress lines


def configure(*, quiet: bool) -> None:
    _state["quiet"] = quiet


def quiet() -> bool:
    return _state["quiet"]


def _stream() -> TextIO:
    return sys.stdout


def step(text: str) -> None:
    """One line saying what starts now (suppressed by --quiet)."""
    if not _state["quiet"]:
        print(f"{text} …", file=_stream(), flush=True)


def interactive() -> bool:
    try:
        return _stream().isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class PlainProgress:
    """A progress report for logs: a line when a quarter more of the work is done, and one at the end."""

    total: float
    desc: str
    unit: str
    stream: TextIO
    done: float = 0.0
    _next_quarter: int = 1
    _doing: str = ""
    _t0: float = field(default_factory=time.monotonic)

    def update(self, n: float = 1) -> None:
        self.done += n
        if self.total <= 0:
            return
        quarter = min(4, int(4 * self.done / self.total + 1e-9))
        if quarter < self._next_quarter:
            return
        self._next_quarter = quarter + 1
        # One line for the furthest quarter reached; none when the work is complete (close() says so) or
        # when the step is short (its end line is enough).
        if quarter < 4 and time.monotonic() - self._t0 >= QUIET_SECONDS:
            print(f"{self.desc}: {25 * quarter} % ({self._elapsed()})", file=self.stream, flush=True)

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._t0:.1f} s"

    def close(self) -> None:
        if self.total > 0:
            count = f"{self.done:,.0f} {self.unit}{'s' if self.done != 1 else ''}" if self.unit else "done"
            print(f"{self.desc}: {count} in {self._elapsed()}", file=self.stream, flush=True)
        self.total = 0

    def set_postfix_str(self, text: str) -> None:
        """tqdm's API: what the step is doing now. A line when its first word changes (e.g. the next attack),
        not for each of its settings (every ε), which would be noise."""
        head = text.split(" ", 1)[0]
        if head != self._doing:
            self._doing = head
            print(f"{self.desc}: {text} …", file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Silent:
    def update(self, n: float = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress(total: float, desc: str, *, unit: str = "", enabled: bool = True, weighted: bool = False) -> Any:
    """A progress object with tqdm's update/close/context-manager API: a tqdm bar on a terminal, plain
    lines elsewhere, nothing with --quiet or enabled=False. `weighted`: `total` is expected work, not
    a count of items, so the bar shows a percentage and time only."""
    if not enabled or _state["quiet"]:
        return _Silent()
    if not interactive():
        return PlainProgress(total, desc, "" if weighted else unit, _stream())
    from tqdm import tqdm

    if weighted:
        return tqdm(total=total, desc=desc, file=_stream(), dynamic_ncols=True,
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
    return tqdm(total=total, desc=desc, unit=unit, file=_stream(), dynamic_ncols=True)

