"""Quiet, informative runs: step lines, progress as a bar on a terminal and as plain lines elsewhere,
--quiet, progress weighted by expected work, defaults in --help."""

from __future__ import annotations

import io

import pytest

from tinyrobust import console
from tinyrobust.cli import build_parser, main


class Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch):
    def use(tty: bool) -> Stream:
        stream = Stream(tty)
        monkeypatch.setattr("sys.stdout", stream)
        return stream

    console.configure(quiet=False)
    yield use
    console.configure(quiet=False)


def test_progress_in_a_log_is_plain_lines(stderr, monkeypatch):
    log = stderr(tty=False)
    monkeypatch.setattr(console, "QUIET_SECONDS", 0.0)
    with console.progress(8, "qemu", unit="sample") as bar:
        for _ in range(8):
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [ln.split(" (")[0] for ln in lines[:3]] == ["qemu: 25 %", "qemu: 50 %", "qemu: 75 %"]
    assert lines[3].startswith("qemu: 8 samples in ") and len(lines) == 4


def test_work_done_in_one_update_is_one_line(stderr, monkeypatch):
    log = stderr(tty=False)
    monkeypatch.setattr(console, "QUIET_SECONDS", 0.0)
    with console.progress(100, "robustness: qemu", unit="sample") as bar:
        bar.update(60)
        bar.update(40)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("robustness: qemu: 50 % (")
    assert lines[1].startswith("robustness: qemu: 100 samples in ")


def test_what_a_long_step_does_now_is_a_line_per_change(stderr):
    log = stderr(tty=False)
    with console.progress(10, "robustness: crafting", weighted=True) as bar:
        for text in ("fgsm ε=0.02", "fgsm ε=0.05", "pgd ε=0.02", "boundary"):
            bar.set_postfix_str(text)
    assert log.getvalue().splitlines()[:3] == ["robustness: crafting: fgsm ε=0.02 …",
                                                "robustness: crafting: pgd ε=0.02 …",
                                                "robustness: crafting: boundary …"]


def test_a_short_step_in_a_log_gets_its_end_line_only(stderr):
    log = stderr(tty=False)
    with console.progress(4, "reference", unit="sample") as bar:
        bar.update(4)
    assert log.getvalue().count("\n") == 1 and "reference: 4 samples in" in log.getvalue()


def test_progress_on_a_terminal_is_a_bar(stderr):
    from tqdm import tqdm

    stderr(tty=True)
    bar = console.progress(3, "qemu", unit="sample")
    assert isinstance(bar, tqdm)
    bar.close()


def test_quiet_prints_no_steps_and_no_progress(stderr):
    for tty in (False, True):
        out = stderr(tty=tty)
        console.configure(quiet=True)
        console.step("converting")
        with console.progress(2, "qemu", unit="sample") as bar:
            bar.update(2)
        assert out.getvalue() == ""


def test_a_step_is_one_line(stderr):
    log = stderr(tty=False)
    console.step("cross-building the firmware")
    assert log.getvalue() == "cross-building the firmware …\n"


def test_quiet_is_an_option_of_every_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert any("--quiet" in a.option_strings for a in command._actions), name


def test_help_shows_defaults_once_and_only_real_ones(capsys):
    with pytest.raises(SystemExit):
        main(["robustness", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: fgsm,pgd,apgd-ce,square,noise)" in text and "(default: qemu)" not in text
    assert "(default: reference)" in text and "(default: None)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count("(default: <model>_<board>)") == 1


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("tinyrobust ")


@pytest.mark.slow
def test_robustness_in_a_pipe_shows_only_its_own_lines():
    """Before: ART's "PyTorch not found", TensorFlow's "GradientTape … persistent tape" warnings and ART's
    "Adversarial example found but not optimal" per sample, between progress bars drawn with \\r."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    ex = repo / "examples"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(repo / "toolchain")
    res = subprocess.run([sys.executable, "-m", "tinyrobust.cli", "robustness", str(ex / "digits_stq.h5"),
                          "--calibration", str(ex / "digits_cal.npz"), "--data", str(ex / "digits_test.npz"),
                          "--attacks", "fgsm,pgd,boundary", "--eps", "0.1", "--limit", "8"],
                         capture_output=True, text=True, env=env, timeout=900)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # warnings and errors only, and there are none
    progress = res.stdout.split("\n| Model |")[0]  # what precedes the results table
    assert "\r" not in progress
    ours = re.compile(r"^(.+ …|[\w :]+: \d+ % \([\d.]+ s\)|[\w :]+: .* in [\d.]+ s)$")
    assert [ln for ln in progress.splitlines() if not ours.match(ln)] == [], res.stdout
    assert any(ln.startswith("robustness: digits_stq: ") for ln in progress.splitlines()), progress
