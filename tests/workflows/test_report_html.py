"""workflows/report_html.py: the export's report.html. Its region bars split exactly the used bytes
(segments contiguous, widths summing to the bar), its layer bars scale to the largest layer, it fetches
nothing, it keeps the board's order after report.json's sorted round trip, and the per-layer counts of
`validate --profile` and the output measures of `validate --out` appear only once there are some. (The
page as a browser draws it: test_report_browser.py.)"""

from __future__ import annotations

import json

import pytest

import program_fixtures
from html_elements import Elements
from tinyrobust.converter import memplan
from tinyrobust.firmware.budget import Budget, RegionUse
from tinyrobust.firmware.memory_split import CATEGORIES
from tinyrobust.workflows.report import build_report, render_markdown
from tinyrobust.workflows.report_html import BAR_UNITS, LAYER_COLOURS, region_views, render_html

PROGRAM = memplan.plan(program_fixtures.small_program())
FLASH_SPLIT = dict(zip(CATEGORIES, (80, 440, 20_204, 0, 0, 8, 124), strict=True))
DTCM_SPLIT = dict(zip(CATEGORIES, (0, 0, 0, 352, 8_192, 6_268, 20), strict=True))
LINKED = Budget("nucleo_h743zi", "DTCM", (
    RegionUse("FLASH", 2_097_152, sum(FLASH_SPLIT.values()), tuple(FLASH_SPLIT.items())),
    RegionUse("DTCM", 131_072, sum(DTCM_SPLIT.values()), tuple(DTCM_SPLIT.items())),
), "linked ELF")
PROFILE = {"target": "qemu", "unit": "emulated instructions", "image_board": "qemu_mps2_an500", "sample": 0,
           "layers": [{"index": 0, "layer": "conv", "count": 3480, "macs": 576},
                      {"index": 1, "layer": "pool", "count": 600, "macs": 64},
                      {"index": 2, "layer": "fc", "count": 680, "macs": 64}], "total": 4760}


@pytest.fixture()
def report() -> dict:
    return build_report(PROGRAM, board="nucleo_h743zi", budget=None, linked=LINKED)


def test_region_segments_split_the_used_bytes_exactly(report: dict) -> None:
    for view in region_views(report["budget"]["linked"]):
        assert sum(s.bytes for s in view.segments) == view.used
        assert sum(s.width for s in view.segments) == pytest.approx(BAR_UNITS)
        x = 0.0
        for s in view.segments:
            assert s.bytes > 0 and s.x == pytest.approx(x)
            x += s.width


def test_page_shows_every_region_segment_and_layer(report: dict) -> None:
    page = Elements(render_html(report))
    regions = {a["id"]: a for _, a in page.tags if (a.get("id") or "").startswith("region-")}
    assert list(regions) == ["region-FLASH", "region-DTCM"]
    segments = page.with_class("segment")
    assert sum(int(s["data-bytes"]) for s in segments) == sum(FLASH_SPLIT.values()) + sum(DTCM_SPLIT.values())
    assert {s["data-category"] for s in segments} == {k for k in CATEGORIES if FLASH_SPLIT[k] or DTCM_SPLIT[k]}
    rows = page.with_class("layer")
    assert [r["data-index"] for r in rows] == ["0", "1", "2"]
    macs = [int(c["data-value"]) for c in page.with_class("macs")]
    assert macs == [r["macs"] for r in report["layers"]]
    assert not page.with_class("instructions")  # no counts before validate --profile


def test_layer_bars_scale_to_the_largest_layer(report: dict) -> None:
    page = Elements(render_html({**report, "profile": PROFILE}))
    bars = {colour: [float(a["width"]) for t, a in page.tags if t == "rect" and a.get("fill") == colour]
            for colour in LAYER_COLOURS.values()}

    def near(values: list[float]) -> object:  # the page writes 3 decimals
        return pytest.approx(values, abs=1e-3)

    assert bars[LAYER_COLOURS["macs"]] == near([BAR_UNITS, BAR_UNITS * 64 / 576, BAR_UNITS * 64 / 576])
    assert bars[LAYER_COLOURS["weight_bytes"]] == near([BAR_UNITS * 16 / 64, 0, BAR_UNITS])
    assert bars[LAYER_COLOURS["count"]] == near([BAR_UNITS, BAR_UNITS * 600 / 3480, BAR_UNITS * 680 / 3480])
    assert [int(c["data-value"]) for c in page.with_class("instructions")] == [3480, 600, 680]


def test_page_is_self_contained(report: dict) -> None:
    html = render_html({**report, "profile": PROFILE})
    for fetch in ("http:", "https:", "<link", "<script", "@import", "src=", "url("):
        assert fetch not in html


def test_board_order_survives_the_sorted_json_round_trip(report: dict) -> None:
    kept = json.loads(json.dumps({**report, "profile": PROFILE}, sort_keys=True))
    assert render_html(kept) == render_html({**report, "profile": PROFILE})
    assert render_markdown(kept) == render_markdown({**report, "profile": PROFILE})
    md = render_markdown(kept)
    assert md.index("| FLASH | 80 | 440 | 20,204 |") < md.index("| DTCM | 0 | 0 | 0 | 352 | 8,192 |")
    assert "| 0 | conv | 3,480 | 6.04 | 73.1 % |" in md and "| | **total** | **4,760** | 6.76 | |" in md


def test_an_estimate_only_report_shows_the_estimate(report: dict) -> None:
    estimate = Budget("nucleo_h743zi", "DTCM", (
        RegionUse("FLASH", 4096, 1234, (("packed weights", 92), ("code (estimate)", 1142))),), "estimate")
    html = render_html(build_report(PROGRAM, board="nucleo_h743zi", budget=estimate, linked=None))
    page = Elements(html)
    assert [(s["data-category"], s["data-bytes"]) for s in page.with_class("segment")] == [
        ("packed weights", "92"), ("code (estimate)", "1142")]
    assert "export with <code>--build</code>" in html


MEASURES = {"target": "qemu", "samples": 20,
            "task": {"kind": "anomaly", "requested": "auto", "reason": "the output has the input's shape"},
            "output_error": [{"tensor": "y", "scale": 0.0393, "zero_point": -16, "values": 12800, "max_steps": 1.91,
                              "mean_steps": 0.384, "snr_db": 28.71, "clipped": 0.0}],
            "anomaly": {"score": "mean squared reconstruction error", "samples": 20, "anomalous": 10,
                        "auc": {"keras": 0.69, "reference": 0.7, "target": 0.7}, "auc_difference": 0.01,
                        "spearman_keras_target": None}}


def test_output_measures_appear_once_validate_has_measured_them(report: dict) -> None:
    """validate --out of an autoencoder: its error vs Keras and AUCs in report.html and report.md; a report
    without them has neither section."""
    html = render_html({**report, "output_measures": MEASURES})
    page = Elements(html)
    assert len(page.with_class("output-error")) == 1 and len(page.with_class("anomaly")) == 1
    assert "<td>0.384</td><td>1.91</td><td>28.7</td><td>0.00 %</td>" in html
    assert "<td>0.6900</td><td>0.7000</td><td>0.7000</td><td>0.0100</td><td>n/a</td>" in html
    md = render_markdown({**report, "output_measures": MEASURES})
    assert "### Output vs Keras on `qemu` (20 samples, task anomaly)" in md
    assert "| y | 0.0393 | 0.384 | 1.91 | 28.7 | 0.00 % |" in md
    assert "| 0.6900 | 0.7000 | 0.7000 | 0.0100 | n/a |" in md
    plain = render_html(report)
    assert 'id="output-measures"' not in plain and 'id="output-measures"' in html
    assert "Output vs Keras" not in render_markdown(report)
    no_keras = {**MEASURES, "output_error": None, "anomaly": None}
    assert "no output error" in render_html({**report, "output_measures": no_keras})
    assert "no output error" in render_markdown({**report, "output_measures": no_keras})
