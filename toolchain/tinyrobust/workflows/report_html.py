"""report.html of an export: one self-contained page (inline CSS and SVG, nothing fetched) drawn from
the same dict as report.json: what fills each memory region, per-layer bars of weight bytes and MACs,
and, once `validate --profile` has run the model on a target, the per-layer counts read back from it; once
`validate --out` has measured a regression or anomaly model, its output error vs Keras and AUCs.

The geometry (bar lengths, segment offsets) is computed here; the template (report.html.j2) only lays
it out, so the page can be checked element by element (ids and data-* attributes name what they show).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from ..firmware import memory_split

TEMPLATE = "report.html.j2"
# Width of the SVG bars in viewBox units (they stretch to the column; the units only set resolution).
BAR_UNITS = 1000

# Colours of the linked split's categories, and of the estimate's labels (budget.estimate) by kinship.
COLOURS: dict[str, str] = {
    memory_split.WEIGHTS: "#1f77b4", memory_split.MODEL_TABLES: "#9467bd", memory_split.CODE: "#ff7f0e",
    memory_split.ARENA: "#2ca02c", memory_split.STACK: "#d62728", memory_split.PROTOCOL: "#17becf",
    memory_split.OTHER: "#8c8c8c",
    "packed weights": "#1f77b4", "bias/requant/LUT tables": "#9467bd", "fast tables (.tr_fast_data)": "#9467bd",
    "code (estimate)": "#ff7f0e", "input staging and output buffers": "#17becf", "firmware data/bss": "#8c8c8c",
}
FALLBACK_COLOUR = "#bcbd22"
# The per-layer bars have colours of their own, none shared with a region's content.
LAYER_COLOURS = {"weight_bytes": "#3b5b92", "macs": "#c49c00", "count": "#e377c2"}


@dataclass(frozen=True)
class Segment:
    category: str
    bytes: int
    x: float  # offset in BAR_UNITS along the region's used bytes
    width: float
    colour: str
    percent_of_used: float


@dataclass(frozen=True)
class RegionView:
    name: str
    size: int
    used: int
    percent_of_size: float
    fits: bool
    segments: tuple[Segment, ...]

    def bytes_of(self, category: str) -> int:
        return sum(s.bytes for s in self.segments if s.category == category)


@dataclass(frozen=True)
class LayerView:
    index: int
    name: str
    kernel: str
    weight_format: str
    weight_bytes: int
    flash_bytes: int
    macs: int
    count: int | None
    weight_bar: float  # BAR_UNITS × value / the largest layer's
    mac_bar: float
    count_bar: float
    count_per_mac: float | None


def ordered_regions(budget: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, region) in the board's order, and each region's contents in the budget's order (report.json
    sorts its keys; the order lists it carries restore them)."""
    names = budget.get("region_order") or list(budget["regions"])
    out = []
    for name in names:
        r = budget["regions"][name]
        keys = r.get("content_order") or list(r["contents"])
        out.append((name, {**r, "contents": {k: r["contents"][k] for k in keys}}))
    return out


def region_views(budget: dict[str, Any]) -> list[RegionView]:
    views = []
    for name, r in ordered_regions(budget):
        used = r["used"]
        segments, x = [], 0.0
        for category, nbytes in r["contents"].items():
            if nbytes <= 0:
                continue
            width = BAR_UNITS * nbytes / used
            segments.append(Segment(category, nbytes, x, width, COLOURS.get(category, FALLBACK_COLOUR),
                                    100.0 * nbytes / used))
            x += width
        views.append(RegionView(name, r["size"], used, 100.0 * used / r["size"] if r["size"] else 0.0, r["fits"],
                                tuple(segments)))
    return views


def split_columns(budget: dict[str, Any]) -> list[str]:
    """The content kinds of any region, in the budget's order, leaving out those empty everywhere."""
    regions = [r for _, r in ordered_regions(budget)]
    return [k for k in dict.fromkeys(k for r in regions for k in r["contents"])
            if any(r["contents"].get(k, 0) for r in regions)]


def _scaled(value: int, largest: int) -> float:
    return BAR_UNITS * value / largest if largest else 0.0


def layer_views(report: dict[str, Any]) -> list[LayerView]:
    profile = report.get("profile")
    counts = [p["count"] for p in profile["layers"]] if profile else [None] * len(report["layers"])
    layers = report["layers"]
    top_w = max((r["packed_bytes"] for r in layers), default=0)
    top_m = max((r["macs"] for r in layers), default=0)
    top_c = max((c or 0 for c in counts), default=0)
    return [
        LayerView(r["index"], r["layer"], r["kernel"], r["weight_format"] or "–", r["packed_bytes"],
                  r["flash_bytes"], r["macs"], c, _scaled(r["packed_bytes"], top_w), _scaled(r["macs"], top_m),
                  _scaled(c or 0, top_c), c / r["macs"] if c is not None and r["macs"] else None)
        for r, c in zip(layers, counts, strict=True)
    ]


def render_html(report: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True, lstrip_blocks=True,
    )
    linked = report["budget"]["linked"]
    budget = linked or report["budget"]["estimate"]
    profile = report.get("profile")
    regions = [] if budget is None else region_views(budget)
    return env.get_template(TEMPLATE).render(
        report=report,
        budget_source=None if budget is None else budget["source"],
        regions=regions,
        split_columns=[] if budget is None else split_columns(budget),
        descriptions=memory_split.DESCRIPTIONS if linked else {},
        layers=layer_views(report),
        profile=profile,
        measures=report.get("output_measures"),  # validate --out of a regression / anomaly model
        bar_units=BAR_UNITS,
        colours=LAYER_COLOURS,
    )
