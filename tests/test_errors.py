"""errors.py: what an error may show of a string from a file, and the exit codes."""

from __future__ import annotations

from tinyrobust.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_SIGNAL_BASE, shown, terminal_message


def test_shown_escapes_control_and_format_characters_and_cuts() -> None:
    assert shown("conv_1") == "conv_1"
    assert shown("a\x1b[2Jb\nc\u202ed\x00") == "a\\x1b[2Jb\\x0ac\\u202ed\\x00"
    long = shown("x" * 500, limit=80)
    assert long.startswith("x" * 80) and long.endswith("…(420 more characters)")


def test_terminal_message_keeps_tool_output_lines_but_no_escape_sequence() -> None:
    assert terminal_message("compile failed:\n\tfoo.c:1: error\x1b[0m") == "compile failed:\n\tfoo.c:1: error\\x1b[0m"
    assert len(terminal_message("y" * 10_000)) < 4100


def test_exit_codes() -> None:
    assert (EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_SIGNAL_BASE + 15) == (2, 3, 143)
