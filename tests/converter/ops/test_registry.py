"""The op table (converter/ops/__init__.py): every kernel is registered once, and each has its
pieces where `git grep` finds them: its op module, its C file and declaration, its template macro
and its test module. Every field a macro reads is a params field, and every params field is read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tinyrobust.converter import ops
from tinyrobust.converter.ops.base import scalar_names
from tinyrobust.firmware.sources import templates_dir, tr_nn_dir

OPS_DIR = Path(ops.__file__).parent
TESTS_DIR = Path(__file__).parent
# C files of the library that are not a kernel of their own
SUPPORT_FILES = {"tr_nn_luts.c", "tr_requantize.c"}


def test_op_codes_are_unique_and_dense() -> None:
    assert sorted(ops.OP_CODES.values()) == list(range(1, len(ops.KERNELS) + 1))
    assert len({f.name for f in ops.FAMILIES}) == len(ops.FAMILIES)


@pytest.mark.parametrize("family", ops.FAMILIES, ids=lambda f: f.name)
def test_each_kernel_has_its_module_c_file_macro_and_test(family: ops.OpFamily) -> None:
    module = (OPS_DIR / f"{family.name}.py").read_text()
    macro = (templates_dir() / "ops" / f"{family.name}.c.j2").read_text()
    test = (TESTS_DIR / f"test_{family.name}.py").read_text()
    header = (tr_nn_dir() / "tr_nn.h").read_text()
    for kernel in family.all_kernels():
        assert kernel in module, f"{kernel} not named in ops/{family.name}.py"
        assert (tr_nn_dir() / f"{kernel}.c").is_file(), f"no firmware/tr_nn/{kernel}.c"
        assert re.search(rf"\b{kernel}\(", header), f"{kernel} not declared in tr_nn.h"
        assert kernel in macro, f"{kernel} not named in its macro file"
        assert kernel in test, f"{kernel} not named in test_{family.name}.py"


def test_every_c_kernel_is_registered() -> None:
    files = {p.name for p in tr_nn_dir().glob("*.c")} - SUPPORT_FILES
    assert files == {f"{k}.c" for k in ops.KERNELS}


@pytest.mark.parametrize("family", ops.FAMILIES, ids=lambda f: f.name)
def test_macro_reads_exactly_the_params_fields(family: ops.OpFamily) -> None:
    macro = (templates_dir() / "ops" / f"{family.name}.c.j2").read_text()
    read = set(re.findall(r"k\.v\.(\w+)", macro))
    if "weighted.rest(k)" in macro:
        read |= set(re.findall(r"k\.v\.(\w+)", (templates_dir() / "ops" / "_weighted.c.j2").read_text()))
    assert read == set(scalar_names(family.scalar_type))
    arrays = set(re.findall(r"k\.a\.(\w+)", macro))
    if "weighted.rest(k)" in macro:
        arrays |= set(re.findall(r"k\.a\.(\w+)", (templates_dir() / "ops" / "_weighted.c.j2").read_text()))
    assert arrays == {a.name for a in family.arrays}
