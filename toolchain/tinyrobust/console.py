"""What a run says while it works, on stderr (stdout carries the results).

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
    return sys.stderr


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
    _t0: float = field(default_factory=time.monotonic)

    def update(self, n: float = 1) -> None:
        self.done += n
        while self.total > 0 and self._next_quarter < 4 and self.done >= self.total * self._next_quarter / 4:
            if time.monotonic() - self._t0 >= QUIET_SECONDS:  # a short step needs its end line only
                print(f"{self.desc}: {25 * self._next_quarter} % ({self._elapsed()})", file=self.stream, flush=True)
            self._next_quarter += 1

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._t0:.1f} s"

    def close(self) -> None:
        if self.total > 0:
            count = f"{self.done:,.0f} {self.unit}{'s' if self.done != 1 else ''}" if self.unit else "done"
            print(f"{self.desc}: {count} in {self._elapsed()}", file=self.stream, flush=True)
        self.total = 0

    def set_postfix_str(self, text: str) -> None:  # tqdm's API; a log line per change would be noise
        pass

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

