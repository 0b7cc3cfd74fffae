"""The NUCLEO-H743ZI register code against the chip's register description.

Every macro of boards/nucleo_h743zi/stm32h743_regs.h (addresses, bit masks, field encodings, the USART3
interrupt number) is evaluated and compared with tests/firmware/stm32h743_reference.toml, which holds the
RM0433 / ARMv7-M values as data: no SVD package installs from the registries this project reaches (see
that file's header). The literal shifts that board.c and startup.c write into registers (`(2u << 18)`
into GPIOD_MODER, `(ccsidr >> 13) & 0x7FFF`) are checked against the same fields. Each check is shown
firing on a deliberately altered copy.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the backport, a dependency on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
BOARD = REPO / "boards" / "nucleo_h743zi"
HEADER = BOARD / "stm32h743_regs.h"
CODE = (BOARD / "board.c", BOARD / "startup.c")
REFERENCE = Path(__file__).with_name("stm32h743_reference.toml")

HELPERS = {"REG32"}  # the header's own access macro, not a register fact
INT = r"(0x[0-9A-Fa-f]+|\d+)[uU]?"


@dataclass(frozen=True)
class Field:
    lsb: int
    width: int

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


def load_reference(path: Path = REFERENCE) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", " ", text, flags=re.S))


def header_macros(text: str) -> dict[str, int]:
    """Every object-like macro of the header, and every function-like one at argument 0, evaluated."""
    values: dict[str, Any] = {"REG32": lambda address: address}
    for line in _strip_comments(text).splitlines():
        m = re.match(r"\s*#define\s+(\w+)(\(([^)]*)\))?\s*(.*)$", line)
        if not m or not m.group(4).strip() or m.group(1) in HELPERS:
            continue  # include guard, or the access helper itself
        name, params, body = m.group(1), m.group(3), m.group(4)
        body = re.sub(r"\((?:volatile\s+)?u?int\d+_t\s*\*?\s*\)|\(uintptr_t\)", "", body)  # casts
        body = re.sub(r"\(\s*\*", "(", body)  # the dereference of an address
        body = re.sub(r"\b" + INT + r"\b", r"\1", body)  # C integer suffixes
        local = dict(values)
        for p in (params or "").split(","):
            if p.strip():
                local[p.strip()] = 0
        values[name] = int(eval(body, {"__builtins__": {}}, local))  # noqa: S307 - the repo's own header
    return {k: v for k, v in values.items() if k not in HELPERS}


class Reference:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def register(self, periph: str, reg: str) -> dict[str, Any]:
        return self.data["peripherals"][periph]["registers"][reg]

    def field(self, periph: str, reg: str, name: str) -> Field:
        lsb, width = self.register(periph, reg)["fields"][name]
        return Field(lsb, width)

    def fields(self, periph: str, reg: str) -> dict[str, Field]:
        return {n: Field(*v) for n, v in self.register(periph, reg).get("fields", {}).items()}

    def expected(self, meaning: str) -> int:
        """The value a macro must have, from its meaning in the [macros] table (see the TOML file)."""
        path, _, encoding = meaning.partition(":")
        parts = path.split(".")
        periph = self.data["peripherals"][parts[0]]
        if len(parts) == 1:
            return periph["base"]
        if parts[1] == "irq":
            return periph["irq"]
        reg = self.register(parts[0], parts[1])
        if len(parts) == 2:
            return periph["base"] + reg["offset"]
        field = self.field(parts[0], parts[1], parts[2])
        if encoding:
            value_name, _, raw = encoding.partition(".")
            value = reg["values"][parts[2]][value_name]
            return value if raw == "raw" else value << field.lsb
        return field.lsb if parts[3:] == ["lsb"] else field.mask


def header_problems(text: str, reference: Reference) -> list[str]:
    """Every header macro whose value differs from the reference, or that the reference does not cover."""
    meanings: dict[str, str] = reference.data["macros"]
    problems = []
    for name, value in header_macros(text).items():
        if name not in meanings:
            problems.append(f"{name}: not in the reference data, so unchecked")
            continue
        try:
            want = reference.expected(meanings[name])
        except KeyError as exc:
            problems.append(f"{name}: the reference has no {exc} for {meanings[name]}")
            continue
        if value != want:
            problems.append(f"{name} = 0x{value:X}, but {meanings[name]} is 0x{want:X}")
    return problems


def _register_macros(reference: Reference) -> dict[str, tuple[str, str]]:
    """Header macro name -> (peripheral, register) for the macros that name a register."""
    out = {}
    for name, meaning in reference.data["macros"].items():
        parts = meaning.split(".")
        if len(parts) == 2 and ":" not in meaning and parts[1] != "irq":
            out[name] = (parts[0], parts[1])
    return out


def _shift_problems(where: str, fields: dict[str, Field], shift: int, value: int | None) -> Iterator[str]:
    matching = [f for f in fields.values() if f.lsb == shift]
    if not matching:
        yield f"{where}: shifts to bit {shift}, where no field of the register starts"
    elif value is not None and all(value >= 1 << f.width for f in matching):
        yield f"{where}: value {value} does not fit the {matching[0].width}-bit field at bit {shift}"


def code_problems(code: str, reference: Reference) -> list[str]:
    """Literal shifts written into (or read out of) a register that match none of its fields."""
    registers = _register_macros(reference)
    code = _strip_comments(code)
    problems: list[str] = []
    # (1u << N) - 1u is an N-bit all-ones value written from bit 0, not a bit position.
    code = re.sub(r"\(\s*1[uU]?\s*<<\s*(\d+)\s*\)\s*-\s*1[uU]?",
                  lambda m: f"({hex((1 << int(m.group(1))) - 1)} << 0)", code)
    for statement in code.split(";"):
        # The last assignment of the piece (a for-loop header may precede it).
        assign = ([None] + list(re.finditer(r"\b([A-Z][A-Z0-9_]+)\s*(?:\|=|&=|=)(?!=)", statement)))[-1]
        if assign is None or assign.group(1) not in registers:
            continue
        periph, reg = registers[assign.group(1)]
        fields = reference.fields(periph, reg)
        rhs = statement[assign.end():]
        where = f"{assign.group(1)} ({periph}.{reg})"
        literal = {m.start(): m for m in re.finditer(r"\(\s*" + INT + r"\s*<<\s*(\d+)\s*\)", rhs)}
        for m in re.finditer(r"<<\s*(\d+)\b", rhs):
            lit = next((x for x in literal.values() if x.start() < m.start() < x.end()), None)
            problems += _shift_problems(where, fields, int(m.group(1)), int(lit.group(1), 0) if lit else None)
    # Fields read out: REG >> N, and a local copied from a register then `(local >> N) & MASK`.
    for m in re.finditer(r"\b([A-Z][A-Z0-9_]+)\s*>>\s*(\d+)", code):
        if m.group(1) in registers:
            periph, reg = registers[m.group(1)]
            problems += _shift_problems(f"{m.group(1)} read", reference.fields(periph, reg), int(m.group(2)), None)
    for m in re.finditer(r"\b(\w+)\s*=\s*([A-Z][A-Z0-9_]+)\s*;", code):
        if m.group(2) not in registers:
            continue
        periph, reg = registers[m.group(2)]
        fields = reference.fields(periph, reg)
        for r in re.finditer(r"\(\s*" + re.escape(m.group(1)) + r"\s*>>\s*(\d+)\s*\)\s*&\s*" + INT, code):
            shift, mask = int(r.group(1)), int(r.group(2), 0)
            if not any(f.lsb == shift and (1 << f.width) - 1 == mask for f in fields.values()):
                problems.append(f"{m.group(2)} ({periph}.{reg}) read via {m.group(1)}: bits {shift}.. masked "
                                f"with 0x{mask:X} match no field")
    return problems


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference(load_reference())


# ---------------------------------------------------------------- the shipped board


def test_header_matches_the_reference(reference: Reference) -> None:
    macros = header_macros(HEADER.read_text())
    assert len(macros) == len(reference.data["macros"]) > 100
    assert header_problems(HEADER.read_text(), reference) == []


def test_board_code_shifts_match_the_reference(reference: Reference) -> None:
    for path in CODE:
        assert code_problems(path.read_text(), reference) == [], path.name
    # The checks do look at the code: these are among the shifts found in board.c.
    text = (BOARD / "board.c").read_text()
    assert "(2u << 16) | (2u << 18)" in text and "((2u - 1u) << 24)" in text


def test_reference_is_self_consistent(reference: Reference) -> None:
    # board.c clears USART errors by writing ISR flag masks to ICR: the clear bits sit at the flags' bits.
    isr, icr = reference.fields("USART3", "ISR"), reference.fields("USART3", "ICR")
    assert all(icr[f + "CF"].lsb == isr[f].lsb for f in ("PE", "FE", "NE", "ORE"))
    # No two fields of a register overlap, and every field fits in 32 bits.
    for pname, periph in reference.data["peripherals"].items():
        for rname in periph["registers"]:
            masks = [f.mask for f in reference.fields(pname, rname).values()]
            assert all(m < 1 << 32 for m in masks), (pname, rname)
            assert sum(masks) == _or(masks), (pname, rname)


def _or(masks: list[int]) -> int:
    out = 0
    for m in masks:
        out |= m
    return out


# ---------------------------------------------------------------- the checks fire


@pytest.mark.parametrize("old, new, fragment, count", [
    ("#define USART3_BASE 0x40004800u", "#define USART3_BASE 0x40004400u", "USART3_BASE = 0x40004400, but USART3",
     10),  # and the nine USART3 registers built on it
    ("#define RCC_APB1LENR_USART3EN (1u << 18)", "#define RCC_APB1LENR_USART3EN (1u << 17)",
     "RCC_APB1LENR_USART3EN = 0x20000, but RCC.APB1LENR.USART3EN is 0x40000", 1),
    ("#define PWR_D3CR REG32(PWR_BASE + 0x18u)", "#define PWR_D3CR REG32(PWR_BASE + 0x1Cu)",
     "PWR_D3CR = 0x5802481C, but PWR.D3CR is 0x58024818", 1),
    ("#define RCC_CFGR_SWS_MASK (7u << 3)", "#define RCC_CFGR_SWS_MASK (3u << 3)", "RCC_CFGR_SWS_MASK = 0x18", 1),
    ("#define RCC_CFGR_SW_PLL1 (3u << 0)", "#define RCC_CFGR_SW_PLL1 (2u << 0)", "RCC_CFGR_SW_PLL1 = 0x2", 1),
    ("#define DWT_LAR REG32(0xE0001FB0u)", "#define DWT_LAR REG32(0xE0001FB4u)", "DWT_LAR = 0xE0001FB4", 1),
    ("#define USART3_IRQN 39u", "#define USART3_IRQN 38u", "USART3_IRQN = 0x26, but USART3.irq is 0x27", 1),
    ("#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))", "#define NVIC_ISER(n) REG32(0xE000E180u + 4u * (n))",
     "NVIC_ISER = 0xE000E180", 1),
    ("#endif", "#define USART3_GTPR REG32(USART3_BASE + 0x10u)\n#endif", "USART3_GTPR: not in the reference", 1),
])
def test_altered_header_is_caught(reference: Reference, old: str, new: str, fragment: str, count: int) -> None:
    text = HEADER.read_text()
    assert old in text
    problems = header_problems(text.replace(old, new, 1), reference)
    assert len(problems) == count and fragment in problems[0], problems


@pytest.mark.parametrize("path, old, new, fragment", [
    ("board.c", "(2u << 16) | (2u << 18);", "(2u << 16) | (2u << 17);", "GPIOD_MODER (GPIOD.MODER): shifts to bit 17"),
    ("board.c", "(7u << 0) | (7u << 4)", "(7u << 0) | (17u << 4)", "value 17 does not fit the 4-bit field at bit 4"),
    ("board.c", "((4u - 1u) << 16)", "((4u - 1u) << 15)", "RCC_PLL1DIVR (RCC.PLL1DIVR): shifts to bit 15"),
    ("board.c", "(DBGMCU_IDCODE >> 16)", "(DBGMCU_IDCODE >> 12)", "DBGMCU_IDCODE read: shifts to bit 12"),
    # The N-bit all-ones idiom is a value from bit 0: wider than RELOAD's 24 bits, it fires.
    ("board.c", "SYST_RVR = (1u << 24) - 1u", "SYST_RVR = (1u << 25) - 1u", "does not fit the 24-bit field at bit 0"),
    ("startup.c", "((ccsidr >> 13) & 0x7FFFu)", "((ccsidr >> 13) & 0x3FFFu)", "masked with 0x3FFF match no field"),
    ("startup.c", "(way << 30)", "(way << 29)", "SCB_DCISW (SCB.DCISW): shifts to bit 29"),
])
def test_altered_code_is_caught(reference: Reference, path: str, old: str, new: str, fragment: str) -> None:
    text = (BOARD / path).read_text()
    assert old in text
    problems = code_problems(text.replace(old, new, 1), reference)
    assert len(problems) == 1 and fragment in problems[0], problems
