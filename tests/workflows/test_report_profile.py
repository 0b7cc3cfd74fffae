"""report.html in a real browser, and `validate --profile`.

The fixture model is exported with --build for the NUCLEO, then validated on QEMU with --profile: the
per-layer emulated instructions read back from the target land in the export's report.json, report.md
and report.html. Headless Chromium then draws report.html before and after: the dumped DOM has the
regions, their segments and the layer bars (and the instruction bars only after --profile), and the
screenshot is not blank and shows the colours of those parts (the per-layer bars have colours no region
segment uses, so counting their pixels says they were drawn). --profile without a counting target or
without an export to hold the counts is one line and exit 2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from html_elements import Elements
from program_fixtures import small_program
from tinyrobust.cli import main
from tinyrobust.converter import ops
from tinyrobust.workflows.export import export_program
from tinyrobust.workflows.report_html import COLOURS, LAYER_COLOURS

REPO = Path(__file__).resolve().parents[2]
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser")
WINDOW = (1280, 1600)
PROGRAM = small_program()


def browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


needs_emulation = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm (gcc-arm-none-eabi, qemu-system-arm)")
needs_browser = pytest.mark.skipif(
    browser() is None,
    reason="no headless Chromium on PATH (Debian package chromium-headless-shell; `make` installs it)")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The export before (a copy of its report.html) and after validate --target qemu --profile."""
    d = tmp_path_factory.mktemp("profiled")
    export = d / "export"
    export_program(PROGRAM, "nucleo_h743zi", export, build=True)
    before = d / "before.html"
    shutil.copy(export / "report.html", before)
    data = d / "data.npz"
    np.savez(data, x=np.random.default_rng(3).random((3, 4, 4, 1)).astype(np.float32), y=np.arange(3))
    rc = main(["validate", str(export), "--data", str(data), "--target", "qemu", "--profile", "--no-progress",
               "--json", str(d / "validate.json")])
    assert rc == 0
    return {"export": export, "before": before, "after": export / "report.html", "dir": d,
            "json": d / "validate.json"}


@needs_emulation
def test_profile_goes_into_the_validate_json(profiled: dict[str, Path]) -> None:
    """profile.layers[] names every layer with its kernel, instructions and MACs; the layers add up to the
    whole inference of the same sample within 1 % (the rest is the glue between kernels)."""
    profile = json.loads(profiled["json"].read_text())["profile"]
    assert [(p["name"], p["kernel"], p["macs"]) for p in profile["layers"]] == [
        (op.name, op.kernel, ops.macs(op)) for op in PROGRAM.ops]
    assert all(p["instructions"] == p["count"] > 0 for p in profile["layers"])
    assert sum(p["share"] for p in profile["layers"]) == pytest.approx(1.0)
    assert profile["total"] <= profile["inference"] <= 1.01 * profile["total"], profile


@needs_emulation
def test_profile_goes_into_the_exports_reports(profiled: dict[str, Path]) -> None:
    report = json.loads((profiled["export"] / "report.json").read_text())
    profile = report["profile"]
    assert profile["target"] == "qemu" and profile["unit"] == "emulated instructions"
    assert profile["image_board"] == "qemu_mps2_an500"
    assert [p["layer"] for p in profile["layers"]] == [op.name for op in PROGRAM.ops]
    assert all(p["count"] > 0 for p in profile["layers"])
    assert profile["total"] == sum(p["count"] for p in profile["layers"])
    assert report["budget"]["linked"] is not None  # the rest of the report is kept
    md = (profiled["export"] / "report.md").read_text()
    assert "### Per-layer emulated instructions on `qemu` (qemu_mps2_an500 image, sample 0)" in md
    assert f"**{profile['total']:,}**" in md
    assert "### What fills each region (linked ELF, bytes)" in md


@pytest.mark.parametrize("args,needle", [
    (["--target", "reference", "--profile"], "--profile: target reference counts neither"),
    (["--target", "host", "--profile"], "--profile: target host counts neither"),
])
def test_profile_needs_a_counting_target(profiled_or_plain: Path, tmp_path: Path, args: list[str], needle: str,
                                         capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((1, 4, 4, 1), np.float32), y=np.zeros(1, np.int64))
    rc = main(["validate", str(profiled_or_plain), "--data", str(data), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_profile_needs_the_exports_report_json(profiled_or_plain: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    export = tmp_path / "export"
    shutil.copytree(profiled_or_plain, export)
    (export / "report.json").unlink()
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((1, 4, 4, 1), np.float32), y=np.zeros(1, np.int64))
    rc = main(["validate", str(export), "--data", str(data), "--target", "serial:/dev/null", "--profile"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "has no report.json to add the counts to" in err[0], err


@needs_emulation  # the target's tools are checked first
def test_profile_of_a_model_file_needs_out(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((1, 8, 8, 1), np.float32), y=np.zeros(1, np.int64))
    rc = main(["validate", str(REPO / "examples" / "digits_stq.h5"), "--data", str(data), "--target", "qemu",
               "--profile"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "give an export directory, or --out DIR" in err[0], err


@pytest.fixture(scope="module")
def profiled_or_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export directory without a build (enough for the argument checks)."""
    out = tmp_path_factory.mktemp("plain") / "export"
    export_program(PROGRAM, "nucleo_h743zi", out)
    return out


# ---------------------------------------------------------------- the browser


def _chromium(page: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = browser()
    assert exe is not None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={work}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", *args, page.resolve().as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _pixels(png: Path) -> dict[tuple[int, int, int], int]:
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        assert rgb.size == WINDOW
        return {c: n for n, c in rgb.getcolors(maxcolors=WINDOW[0] * WINDOW[1])}


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@needs_emulation
@needs_browser
@pytest.mark.parametrize("when", ["before", "after"])
def test_the_browser_draws_regions_layers_and_counts(profiled: dict[str, Path], when: str) -> None:
    work = profiled["dir"] / f"chromium-{when}"
    work.mkdir()
    dom = Elements(_chromium(profiled[when], work, "--dump-dom").stdout)
    report = json.loads((profiled["export"] / "report.json").read_text())
    linked = report["budget"]["linked"]["regions"]

    regions = {a["id"][len("region-"):]: a for _, a in dom.tags if (a.get("id") or "").startswith("region-")}
    assert set(regions) == set(linked) == {"FLASH", "DTCM"}
    for name, a in regions.items():
        assert int(a["data-used"]) == linked[name]["used"]
    segments = dom.with_class("segment")
    assert sum(int(s["data-bytes"]) for s in segments) == sum(r["used"] for r in linked.values())
    assert {"weights", "code", "arena", "stack", "protocol buffers"} <= {s["data-category"] for s in segments}
    assert len(dom.with_class("layer")) == len(PROGRAM.ops)
    assert [int(c["data-value"]) for c in dom.with_class("macs")] == [r["macs"] for r in report["layers"]]
    counts = [int(c["data-value"]) for c in dom.with_class("instructions")]
    assert counts == ([] if when == "before" else [p["count"] for p in report["profile"]["layers"]])

    shot = work / "report.png"
    _chromium(profiled[when], work, f"--screenshot={shot}")
    pixels = _pixels(shot)
    total = WINDOW[0] * WINDOW[1]
    white = pixels.get((255, 255, 255), 0)
    assert total - white > 0.05 * total, "the screenshot is (nearly) blank"
    drawn = {name: pixels.get(_rgb(colour), 0) for name, colour in
             [("code", COLOURS["code"]), ("stack", COLOURS["stack"]), ("protocol buffers", COLOURS["protocol buffers"]),
              *((f"layer {k}", v) for k, v in LAYER_COLOURS.items())]}
    print(when, "pixels:", drawn, f"non-white {100 * (total - white) / total:.1f} %")
    for name in ("code", "stack", "protocol buffers", "layer macs", "layer weight_bytes"):
        assert drawn[name] > 500, (name, drawn)  # a bar 1,000+ px wide and 30 px tall, or three 14 px bars
    if when == "after":
        assert drawn["layer count"] > 500, drawn
    else:
        assert drawn["layer count"] == 0, drawn
