"""On a real NUCLEO-H743ZI: runs only when TINYROBUST_PORT names its serial port. With
TINYROBUST_MOUNT (its ST-LINK drive) the firmware is copied to it first, with TINYROBUST_OPENOCD=1 it is
flashed with OpenOCD; otherwise it must already be."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tinyrobust.cli import main
from tinyrobust.resources import checkout_file
from tinyrobust.workflows.demo import EXAMPLE, digits_split

PORT = os.environ.get("TINYROBUST_PORT")
MOUNT = os.environ.get("TINYROBUST_MOUNT")
OPENOCD = os.environ.get("TINYROBUST_OPENOCD") == "1"

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(PORT is None, reason="hardware test: set TINYROBUST_PORT to a NUCLEO-H743ZI serial port"),
]


def test_nucleo_is_bit_exact_and_counts_cycles(tmp_path):
    import numpy as np

    model = checkout_file(EXAMPLE)
    assert model is not None
    split = digits_split()
    np.savez(tmp_path / "cal.npz", x=split.x_train, y=split.y_train)
    np.savez(tmp_path / "test.npz", x=split.x_test, y=split.y_test)
    out = tmp_path / "export"
    assert main(["export", str(model), "--calibration", str(tmp_path / "cal.npz"), "-o", str(out), "--build"]) == 0
    if OPENOCD:
        assert main(["flash", str(out), "--via", "openocd"]) == 0
    elif MOUNT:
        assert main(["flash", str(out), "--via", "drive", "--mount", MOUNT]) == 0
    report = tmp_path / "r.json"
    rc = main(["validate", str(out), "--data", str(tmp_path / "test.npz"), "--target", f"serial:{PORT}",
               "--limit", "100", "--json", str(report), "--no-progress"])
    r = json.loads(Path(report).read_text())
    assert rc == 0 and r["agreement"]["target_reference_exact"] == 100
    assert r["latency"]["unit"] == "cycles" and r["latency"]["mean"] > 0
