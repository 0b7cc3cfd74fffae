"""End to end on real targets: every zoo model exported, then validated byte for byte against the
reference on the host (C compiled with ASan/UBSan, via ctypes) and on QEMU (Cortex-M7, DSP path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from tinyrobust.cli import main
from tinyrobust.converter.pipeline import convert_file
from tinyrobust.firmware.hostbuild import sanitizer_preload
from tinyrobust.workflows.export import export_program

pytestmark = pytest.mark.slow

_exports: dict[tuple[str, str], Path] = {}


@pytest.fixture(scope="module")
def exported(trained_model, digits_files, tmp_path_factory):
    """exported(name, packing) → export directory (made once per module)."""

    def get(name: str, packing: str = "t2") -> Path:
        key = (name, packing)
        if key not in _exports:
            out = tmp_path_factory.mktemp("exports") / f"{name}_{packing}"
            deployed = convert_file(trained_model(name), calibration=digits_files["calibration"],
                                    input_range=(0.0, 1.0), packing=packing)
            export_program(deployed.program, "nucleo_h743zi", out, model_path=trained_model(name))
            _exports[key] = out
        return _exports[key]

    return get


def _validate(export_dir: Path, data: Path, target: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    report = tmp_path / f"{target}.json"
    rc = main(["validate", str(export_dir), "--data", str(data), "--target", target, "--json", str(report),
               "--no-progress", *extra])
    return rc, json.loads(report.read_text()) if report.exists() else {}


def _sanitized_host_validate(export_dir: Path, data: Path, report: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, LD_PRELOAD=sanitizer_preload(), ASAN_OPTIONS="detect_leaks=0:abort_on_error=1")
    return subprocess.run(
        [sys.executable, "-m", "tinyrobust.cli", "validate", str(export_dir), "--data", str(data), "--target", "host",
         "--host-sanitize", "--no-progress", "--json", str(report)],
        env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_host_is_bit_exact_under_sanitizers(name, exported, digits_files, tmp_path):
    report = tmp_path / "host.json"
    proc = _sanitized_host_validate(exported(name), digits_files["test"], report)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(report.read_text())
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_qemu_is_bit_exact(name, exported, digits_files, tmp_path):
    rc, r = _validate(exported(name), digits_files["test"], "qemu", tmp_path)
    assert rc == 0, r
    assert r["agreement"]["target_reference_exact"] == r["samples"] == 597
    assert r["accuracy"]["target"] == r["accuracy"]["reference"]
    assert r["latency"]["unit"] == "emulated instructions" and r["latency"]["mean"] > 0
    assert len(r["per_layer"]) > 0 and all(layer["count"] > 0 for layer in r["per_layer"])


@pytest.mark.qemu
def test_trit5_export_is_bit_exact_on_qemu(exported, digits_files, tmp_path):
    rc, r = _validate(exported("ternary_bn_relu", "trit5"), digits_files["test"], "qemu", tmp_path)
    assert rc == 0 and r["agreement"]["target_reference_exact"] == r["samples"]


@pytest.mark.qemu
def test_paper_size_model_is_bit_exact_on_qemu(tmp_path):
    model = zoo.save_untrained(zoo.paper_model(), tmp_path / "paper.h5")
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "cal.npz", x=rng.random((16, 32, 32, 1)).astype(np.float32))
    np.savez(tmp_path / "few.npz", x=rng.random((3, 32, 32, 1)).astype(np.float32), y=np.arange(3))
    deployed = convert_file(model, calibration=tmp_path / "cal.npz", input_range=(0.0, 1.0), packing="t2")
    export_program(deployed.program, "nucleo_h743zi", tmp_path / "export", model_path=model)
    rc, r = _validate(tmp_path / "export", tmp_path / "few.npz", "qemu", tmp_path)
    assert rc == 0 and r["agreement"]["target_reference_exact"] == 3
    print(f"paper model on qemu: {r['latency']['mean']:,.0f} emulated instructions per inference")


@pytest.mark.qemu
def test_firmware_with_another_model_hash_is_refused(exported, digits_files, tmp_path, capsys):
    a, b = exported("ternary_bn_relu"), exported("residual_concat")
    assert main(["validate", str(a), "--data", str(digits_files["test"]), "--target", "qemu", "--limit", "2",
                 "--no-progress"]) == 0
    impostor = tmp_path / "impostor"
    shutil.copytree(b, impostor)
    fw_b = impostor / "firmware-qemu_mps2_an500"
    shutil.rmtree(fw_b, ignore_errors=True)
    shutil.copytree(a / "firmware-qemu_mps2_an500", fw_b)
    manifest = json.loads((impostor / "manifest.json").read_text())
    (fw_b / "program.sha256").write_text(manifest["program_sha256"])  # pretend it was built for b
    capsys.readouterr()
    rc = main(["validate", str(impostor), "--data", str(digits_files["test"]), "--target", "qemu", "--limit", "2",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "hash" in err.lower()


@pytest.mark.qemu
def test_divergent_firmware_names_the_first_divergent_layer(exported, digits_files, tmp_path):
    """A firmware whose weights differ from the Program (one byte of op 2's weights flipped) must fail
    with exit 1 and name op 2 as the first divergent layer."""
    src = exported("ternary_bn_relu")
    broken = tmp_path / "broken"
    shutil.copytree(src, broken)
    shutil.rmtree(broken / "firmware-qemu_mps2_an500", ignore_errors=True)
    weights = broken / "model" / "tr_model_weights.c"
    text = weights.read_text()
    marker = "const uint8_t tr_op2_weights"
    start = text.index("{", text.index(marker)) + 1
    first = text.index("0x", start)
    byte = int(text[first:first + 4], 16)
    # Change the first weight's 2-bit code to another valid one (0 → +1, +1 → 0, −1 → +1).
    changed = (byte & ~3) | {0: 1, 1: 0, 3: 1}[byte & 3]
    weights.write_text(text[:first] + f"0x{changed:02x}" + text[first + 4:])
    rc, r = _validate(broken, digits_files["test"], "qemu", tmp_path, "--limit", "40")
    assert rc == 1
    assert r["agreement"]["target_reference_exact"] < r["samples"]
    div = r["first_divergence"]
    assert div["index"] == 2 and div["layer"] == json.loads((src / "report.json").read_text())["layers"][2]["layer"]
