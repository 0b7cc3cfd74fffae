"""report.json / report.md / report.html (report_html.py) of an export: the per-layer table, totals, arena,
budget, what fills each region, the per-layer counts of `validate --profile`, and a regression or anomaly
model's output error vs Keras and anomaly AUCs (`validate --out`, `output_measures`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import outputs
from ..converter import ops, packing
from ..converter.program import Program
from ..firmware.budget import Budget
from .report_html import ordered_regions, render_html, split_columns

BAR_WIDTH = 30


def layer_rows(program: Program) -> list[dict[str, Any]]:
    pl = program.placement
    rows = []
    for i, op in enumerate(program.ops):
        packed = int(op.arrays["weights"].nbytes) if "weights" in op.arrays else 0
        flash = sum(int(a.nbytes) for a in op.arrays.values())
        weights = ops.weight_count(op)
        ideal = weights * packing.BITS_PER_WEIGHT.get(op.weight_format or "", 0.0) / 8.0
        padding_weights = 0
        shape = ops.weight_rows(op)
        if shape is not None and op.weight_format is not None:
            rows_n, length = shape
            padding_weights = rows_n * (packing.padded_length(length, op.weight_format) - length)
        rows.append({
            "index": i,
            "layer": op.name,
            "kernel": op.kernel,
            "inputs": [list(program.tensor(t).shape) for t in op.inputs],
            "output": list(program.tensor(op.output).shape),
            "weight_format": op.weight_format,
            "params": weights,
            "macs": ops.macs(op),
            "packed_bytes": packed,
            "ideal_packed_bytes": ideal,
            "row_padding_weights": padding_weights,
            "flash_bytes": flash,
            "scratch_bytes": ops.scratch_bytes(op),
            "arena_offset": None if pl is None else pl.tensor_offsets.get(op.output),
            "output_bytes": program.tensor(op.output).nbytes,
            "output_bits": program.tensor(op.output).bits,
        })
    return rows


def precision(program: Program, rows: list[dict[str, Any]], int8_arena_bytes: int | None) -> dict[str, Any]:
    """The activation widths (--fidelity): how many tensors are int16, the conversions between widths, the
    MACs run by int16 kernels, and the arena beside the int8-everywhere one's (when that was planned)."""
    stored = [t for t in program.tensors.values() if t.alias_of is None]
    return {
        "int16_tensors": sum(t.bits == 16 for t in stored),
        "tensors": len(stored),
        "conversions": sum(len(set(ops.io_bits(op.kernel))) > 1 for op in program.ops),
        "int16_macs": sum(r["macs"] for r in rows if ops.io_bits(r["kernel"])[1] == 16),
        "int8_arena_bytes": int8_arena_bytes,
    }


def precision_line(p: dict[str, Any], arena_bytes: int | None) -> str:
    if not p["int16_tensors"]:
        return "activations: int8 everywhere"
    cost = ("" if p["int8_arena_bytes"] is None or arena_bytes is None
            else f"; arena {arena_bytes:,} B (int8 everywhere: {p['int8_arena_bytes']:,} B)")
    return (f"activations: int16 on {p['int16_tensors']} of {p['tensors']} tensors, {p['conversions']} width "
            f"conversions, {p['int16_macs']:,} MACs on int16 kernels{cost}")


def _io(program: Program) -> dict[str, Any]:
    """"input" and "output" of a single-input, single-output model; "inputs" / "outputs" lists (with each
    tensor's name) of a model with several."""
    ins = [{"name": t, "shape": list(program.tensor(t).shape), "scale": q.scale, "zero_point": q.zero_point,
            "grid_source": q.source} for t, q in zip(program.inputs, program.input_quantizations, strict=True)]
    outs = [{"name": t, "shape": list(program.tensor(t).shape), "scale": program.tensor(t).scale,
             "zero_point": program.tensor(t).zero_point} for t in program.outputs]
    if len(ins) == 1 and len(outs) == 1:
        return {"input": {k: v for k, v in ins[0].items() if k != "name"},
                "output": {k: v for k, v in outs[0].items() if k != "name"}}
    return {"inputs": ins, "outputs": outs}


def build_report(program: Program, *, board: str, budget: Budget | None, linked: Budget | None,
                 extra: dict[str, Any] | None = None, int8_arena_bytes: int | None = None) -> dict[str, Any]:
    rows = layer_rows(program)
    pl = program.placement
    totals = {
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "packed_weight_bytes": sum(r["packed_bytes"] for r in rows),
        "ideal_packed_weight_bytes": sum(r["ideal_packed_bytes"] for r in rows),
        "row_padding_weights": sum(r["row_padding_weights"] for r in rows),
        "flash_bytes": sum(r["flash_bytes"] for r in rows),
    }
    ternary_params = sum(r["params"] for r in rows if r["weight_format"] in packing.TERNARY_FORMATS)
    totals["ternary_params"] = ternary_params
    return {
        "model": program.model_name,
        "board": board,
        "packing": program.packing,
        "program_sha256": program.sha256().hex(),
        **_io(program),
        "layers": rows,
        "totals": totals,
        "arena": None if pl is None else {
            "bytes": pl.arena_bytes,
            "lower_bound_bytes": pl.lower_bound_bytes,
            "region": None if budget is None else budget.arena_region,
        },
        "budget": {
            "estimate": None if budget is None else budget.as_dict(),
            "linked": None if linked is None else linked.as_dict(),
        },
        "precision": precision(program, rows, int8_arena_bytes),
        "notes": list(program.notes),
        **(extra or {}),
    }


def _bar(used: int, size: int) -> str:
    frac = 0.0 if size == 0 else used / size
    filled = min(BAR_WIDTH, round(frac * BAR_WIDTH))
    return "█" * filled + "░" * (BAR_WIDTH - filled) + f" {100 * frac:5.1f} %"


def _budget_md(title: str, budget: dict[str, Any] | None) -> list[str]:
    if budget is None:
        return []
    lines = [f"### {title} ({budget['source']})", "", "| region | used | size | |", "|---|---:|---:|---|"]
    for name, r in ordered_regions(budget):
        flag = "" if r["fits"] else " **OVER**"
        lines.append(f"| {name} | {r['used']:,} | {r['size']:,} | `{_bar(r['used'], r['size'])}`{flag} |")
    return [*lines, ""]


def _split_md(budget: dict[str, Any] | None) -> list[str]:
    """What fills each region: one row per region, one column per kind of content present."""
    if budget is None:
        return []
    columns = split_columns(budget)
    lines = [f"### What fills each region ({budget['source']}, bytes)", "",
             "| region | " + " | ".join(columns) + " | used |", "|---|" + "---:|" * (len(columns) + 1)]
    for name, r in ordered_regions(budget):
        cells = " | ".join(f"{r['contents'].get(k, 0):,}" for k in columns)
        lines.append(f"| {name} | {cells} | {r['used']:,} |")
    return [*lines, ""]


def _profile_md(profile: dict[str, Any] | None, total_macs: int) -> list[str]:
    if profile is None:
        return []
    total = profile["total"]
    lines = [f"### Per-layer {profile['unit']} on `{profile['target']}` ({profile['image_board']} image, sample "
             f"{profile['sample']})", "",
             f"| # | layer | {profile['unit']} | per MAC | share |", "|---:|---|---:|---:|---:|"]
    for p in profile["layers"]:
        per_mac = f"{p['count'] / p['macs']:.2f}" if p["macs"] else "–"
        lines.append(f"| {p['index']} | {p['layer']} | {p['count']:,} | {per_mac} | "
                     f"{100 * p['count'] / total if total else 0:.1f} % |")
    per_mac = f"{total / total_macs:.2f}" if total_macs else "–"
    return [*lines, f"| | **total** | **{total:,}** | {per_mac} | |", ""]


def _opt(v: float | None, spec: str, none: str = "n/a") -> str:
    return none if v is None else format(v, spec)


def _output_measures_md(section: dict[str, Any] | None) -> list[str]:
    """validate's measures of a model whose output is not a class: error vs Keras in output grid steps, SNR,
    and the anomaly score's AUC for Keras and the deployed model."""
    if section is None:
        return []
    task = section["task"]
    lines = [f"### Output vs Keras on `{section['target']}` ({section['samples']} samples, task {task['kind']})", "",
             f"Task {task['kind']} ({task['requested']}: {task['reason']}). Errors in steps of the output grid "
             "(ideal rounding: at most 0.5).", ""]
    if section["output_error"] is None:
        lines += ["No Keras model was given (an export directory): no output error.", ""]
    else:
        lines += ["| output | step | mean steps | max steps | SNR dB | Keras values clipped |",
                  "|---|---:|---:|---:|---:|---:|"]
        for e in section["output_error"]:
            lines.append(f"| {e['tensor']} | {e['scale']:.4g} | {e['mean_steps']:.3f} | {e['max_steps']:.2f} | "
                         f"{_opt(e['snr_db'], '.1f', 'exact')} | {100 * e['clipped']:.2f} % |")
        lines.append("")
    an = section.get("anomaly")
    if an is not None:
        auc = an["auc"]
        lines += [f"Anomaly score: {an['score']}; {an['anomalous']} of {an['samples']} samples anomalous.", "",
                  "| AUC Keras | AUC reference | AUC target | AUC difference | Spearman Keras vs target |",
                  "|---:|---:|---:|---:|---:|",
                  f"| {_opt(auc['keras'], '.4f')} | {_opt(auc['reference'], '.4f')} | {_opt(auc['target'], '.4f')} | "
                  f"{_opt(an['auc_difference'], '.4f')} | {_opt(an['spearman_keras_target'], '.4f')} |", ""]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    t = report["totals"]
    lines = [
        f"# tinyrobust export: {report['model']} → {report['board']}",
        "",
        f"Packing `{report['packing']}`; program sha256 `{report['program_sha256'][:16]}…`.",
        "",
        "| # | layer | kernel | in | out | weights | params | MACs | packed B | flash B | arena off |",
        "|---:|---|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["layers"]:
        ins = " + ".join("×".join(map(str, s)) for s in r["inputs"])
        lines.append(
            f"| {r['index']} | {r['layer']} | `{r['kernel']}` | {ins} | {'×'.join(map(str, r['output']))} | "
            f"{r['weight_format'] or '–'} | {r['params']:,} | {r['macs']:,} | {r['packed_bytes']:,} | "
            f"{r['flash_bytes']:,} | {r['arena_offset']} |"
        )
    lines += [
        f"| | **total** | | | | | **{t['params']:,}** | **{t['macs']:,}** | **{t['packed_weight_bytes']:,}** | "
        f"**{t['flash_bytes']:,}** | |",
        "",
        f"Packed weights: {t['packed_weight_bytes']:,} bytes vs {t['ideal_packed_weight_bytes']:,.0f} at the "
        f"format's bits per weight; row padding: {t['row_padding_weights']:,} weights.",
        "",
    ]
    if report.get("arena"):
        a = report["arena"]
        lines += [f"Arena: {a['bytes']:,} bytes (lower bound {a['lower_bound_bytes']:,}) in {a['region']}.", ""]
    if report.get("precision"):
        arena_bytes = report["arena"]["bytes"] if report.get("arena") else None
        line = precision_line(report["precision"], arena_bytes)
        lines += [line[0].upper() + line[1:] + ".", ""]
    lines += _budget_md("Budget", report["budget"]["estimate"])
    lines += _budget_md("Budget", report["budget"]["linked"])
    lines += _split_md(report["budget"]["linked"] or report["budget"]["estimate"])
    lines += _profile_md(report.get("profile"), t["macs"])
    lines += _output_measures_md(report.get("output_measures"))
    if report["notes"]:
        lines += ["## Notes", "", *(f"- {n}" for n in report["notes"]), ""]
    return "\n".join(lines)


def write_reports(report: dict[str, Any], out_dir: Path) -> None:
    """report.json, report.md and report.html, each replaced whole (a reader never sees half of one)."""
    outputs.write_text(out_dir / "report.json", json.dumps(report, indent=1, sort_keys=True) + "\n", "report")
    outputs.write_text(out_dir / "report.md", render_markdown(report), "report")
    outputs.write_text(out_dir / "report.html", render_html(report), "report")
