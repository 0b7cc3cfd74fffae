"""Export + budget: the seed-paper-sized model fits the NUCLEO-H743ZI (t2 and trit5) and builds;
models over a region's budget are refused naming the region and the deficit, leaving nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import zoo
from tinyrobust.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paper(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("paper")
    model = zoo.save_untrained(zoo.paper_model(), d / "paper.h5")
    cal = d / "cal.npz"
    np.savez(cal, x=np.random.default_rng(0).random((16, 32, 32, 1)).astype(np.float32))
    return model, cal


@pytest.mark.parametrize("packing,limit", [("t2", 260 * 1024), ("trit5", 215 * 1024)])
def test_paper_model_fits_and_builds(paper, tmp_path, packing, limit, capsys):
    model, cal = paper
    out = tmp_path / f"export_{packing}"
    rc = main(["export", str(model), "--board", "nucleo_h743zi", "--calibration", str(cal), "--packing", packing,
               "-o", str(out), "--build"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    totals = report["totals"]
    print(f"{packing}: {totals['params']:,} weights, packed {totals['packed_weight_bytes']:,} B, "
          f"arena {report['arena']['bytes']:,} B in {report['arena']['region']}")
    assert 0.9e6 < totals["params"] < 1.1e6
    assert totals["packed_weight_bytes"] <= limit
    bits = 2.0 if packing == "t2" else 1.6
    ideal = totals["params"] * bits / 8
    padding_bytes = totals["row_padding_weights"] * bits / 8
    assert totals["packed_weight_bytes"] <= 1.01 * ideal + padding_bytes + 8
    assert report["arena"]["region"] in ("DTCM", "AXI_SRAM")
    for budget in (report["budget"]["estimate"], report["budget"]["linked"]):
        assert all(r["fits"] for r in budget["regions"].values()), budget
    assert (out / "firmware" / "firmware.elf").is_file() and (out / "firmware" / "firmware.bin").is_file()


def _dense_model(path: Path, inputs: int, units: int) -> Path:
    import qkeras as q
    import tf_keras as keras

    inp = keras.Input((inputs,))
    out = q.QDense(units, kernel_quantizer=q.ternary(alpha="auto"), name="huge")(inp)
    model = keras.Model(inp, out)
    model.save(path)
    return path


def test_over_flash_budget_is_refused(tmp_path, capsys):
    model = _dense_model(tmp_path / "big.h5", 8192, 1100)  # 9.0 M ternary weights: 2.25 MB packed
    cal = tmp_path / "cal.npz"
    np.savez(cal, x=np.random.default_rng(0).random((4, 8192)).astype(np.float32))
    out = tmp_path / "big_export"
    rc = main(["export", str(model), "--calibration", str(cal), "-o", str(out), "--build"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "FLASH" in err and "over by" in err, err
    assert not out.exists()
    assert not any(p.name.startswith(".big_export") for p in tmp_path.iterdir())


def test_activation_over_ram_is_refused(tmp_path, capsys):
    import qkeras as q
    import tf_keras as keras

    inp = keras.Input((32, 32, 1))
    x = q.QConv2D(520, (1, 1), kernel_quantizer=q.ternary(), name="wide")(inp)  # 532 KB tensor
    x = keras.layers.GlobalAveragePooling2D()(x)
    model_path = tmp_path / "wide.h5"
    keras.Model(inp, x).save(model_path)
    cal = tmp_path / "cal.npz"
    np.savez(cal, x=np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32))
    out = tmp_path / "wide_export"
    rc = main(["export", str(model_path), "--calibration", str(cal), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "AXI_SRAM" in err and "over by" in err, err
    assert not out.exists()


CONCURRENT_EXPORT = """
import sys, time
sys.path.insert(0, sys.argv[3])
from program_fixtures import small_program
from tinyrobust.workflows.export import export_program
program = small_program(seed=int(sys.argv[4]))
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # every process starts its export at the same instant
export_program(program, "nucleo_h743zi", sys.argv[1])
"""


def test_concurrent_exports_to_one_directory_take_turns(tmp_path: Path) -> None:
    """Six processes export to one -o at the same instant: each succeeds in turn (the export lock), the
    directory ends up a complete export of one of them, and nothing else is left beside it."""
    import os
    import subprocess
    import sys
    import time

    from program_fixtures import small_program
    from tinyrobust.firmware.project import load_export

    out = tmp_path / "shared"
    tests = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tests.parent / "toolchain"), str(tests)]))
    start = time.time() + 4.0
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_EXPORT, str(out), str(start), str(tests), str(k)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(6)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    failed = [err for _, err, rc in results if rc != 0]
    assert not failed, failed[0][-2000:]
    export = load_export(out)
    assert export.program.sha256() in {small_program(seed=k).sha256() for k in range(6)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]
