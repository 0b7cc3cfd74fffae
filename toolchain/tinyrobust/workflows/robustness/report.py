"""Reports for a RobustnessResult: JSON, a Table-IV-style markdown table, and a one-file HTML page.

The HTML embeds its plots as base64 PNGs so it can be mailed or attached to CI as a single file.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from .results import TABLE_COLUMNS, RobustnessResult

COLUMN_TITLES = {
    "clean": "Clean",
    "fgsm": "FGSM",
    "pgd": "PGD",
    "square": "Square",
    "boundary": "Boundary",
    "cw": "C&W-L2",
}
ATTACK_TITLES = {
    "fgsm": "FGSM (white-box, transfer)",
    "pgd": "PGD (white-box, transfer)",
    "square": "Square (black-box on the reference)",
    "boundary": "Boundary (black-box, ε-bounded)",
}
TEMPLATE = "report.html.j2"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def table_markdown(result: RobustnessResult) -> str:
    """Top-1 accuracy (%) for Keras and the deployed model on the target, Table IV of seed 000."""
    table = result.table()
    cols = [c for c in TABLE_COLUMNS if c in table["columns"]]
    head = ["Model"] + [
        COLUMN_TITLES[c] + ("" if c in ("clean", "cw") else f" ε={table['eps'][c]:g}") + " Acc(%)" for c in cols
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    names = {"keras": "Keras (float)", "target": f"Deployed int8 ({result.target})"}
    for row in ("keras", "target"):
        lines.append("| " + " | ".join([names[row]] + [_pct(table["rows"][row][c]) for c in cols]) + " |")
    notes = [f"{result.samples} samples, seed {result.seed}."]
    if "boundary" in cols:
        notes.append("Boundary: a flip counts only if its effective L∞ perturbation is ≤ ε.")
    if "cw" in cols:
        notes.append("C&W-L2: unbounded.")
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


def plot_attack_png(result: RobustnessResult, attack: str) -> bytes:
    """Accuracy vs ε for one attack: Keras, reference and target; clean accuracy as a dashed line."""
    points = result.sweep(attack)
    if not points:
        raise ValueError(f"no ε points for attack '{attack}'")
    eps = [p.eps for p in points]
    fig = Figure(figsize=(5.0, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    style = "o-" if len(points) > 1 else "o"
    if all(p.keras_accuracy is not None for p in points):
        ax.plot(eps, [100 * p.keras_accuracy for p in points], style, label="Keras (float)")  # type: ignore[operator]
    ax.plot(
        eps,
        [100 * p.target_accuracy for p in points],
        "s--" if len(points) > 1 else "s",
        label=f"deployed int8 ({result.target})",
    )
    ax.axhline(100 * result.clean.target_accuracy, color="grey", lw=0.8, ls=":", label="clean (target)")
    ax.set_xlabel("ε (L∞, input units)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(ATTACK_TITLES.get(attack, attack))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_overview_png(result: RobustnessResult) -> bytes:
    """Deployed-model accuracy vs ε for every ε-swept attack on one axis: which attack is strongest."""
    fig = Figure(figsize=(5.0, 3.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for attack in ("fgsm", "pgd", "square", "boundary"):
        points = result.sweep(attack)
        if points:
            ax.plot(
                [p.eps for p in points],
                [100 * p.target_accuracy for p in points],
                "o-" if len(points) > 1 else "o",
                label=COLUMN_TITLES[attack],
            )
    ax.axhline(100 * result.clean.target_accuracy, color="grey", lw=0.8, ls=":", label="clean")
    ax.set_xlabel("ε (L∞, input units)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"Deployed int8 on {result.target}: all attacks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _plots(result: RobustnessResult) -> list[dict[str, str]]:
    out = []
    if any(result.sweep(a) for a in ("fgsm", "pgd", "square", "boundary")):
        png = plot_overview_png(result)
        out.append({"title": "All attacks (deployed)", "png_b64": base64.b64encode(png).decode("ascii")})
    for attack in ("fgsm", "pgd", "square", "boundary"):
        if result.sweep(attack):
            png = plot_attack_png(result, attack)
            out.append({"title": ATTACK_TITLES[attack], "png_b64": base64.b64encode(png).decode("ascii")})
    return out


def _verdict(result: RobustnessResult) -> dict[str, str]:
    agreement = result.to_json()["target_agreement"]
    if result.all_confirmed and agreement["mismatches"] == 0:
        text = f"All {agreement['inputs']} target outputs equal the reference bit for bit"
        if result.confirmations:
            text += "; every black-box adversarial example is confirmed on the target"
        return {"css": "ok", "text": text + "."}
    return {"css": "bad", "text": f"MISMATCH: {agreement['mismatches']} of {agreement['inputs']} target outputs "
                                   "differ from the reference."}


def _confirmation_row(c: Any) -> dict[str, Any]:
    row = c.to_json() | {"attack": c.attack, "eps": "unbounded" if c.eps is None else f"{c.eps:g}"}
    if c.all_confirmed:
        return row | {"css": "ok", "status": "confirmed"}
    return row | {"css": "bad", "status": "UNCONFIRMED: samples " + ", ".join(map(str, c.unconfirmed))}


def _masking_row(m: Any) -> dict[str, Any]:
    result = "FLAGGED" if m.flagged else ("ok" if m.evaluated else "not evaluated")
    return m.to_json() | {"row_css": "flag" if m.flagged else "", "css": "bad" if m.flagged else "ok", "result": result}


def render_html(result: RobustnessResult) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    data = result.to_json()
    table = data["table"]
    cols = [c for c in TABLE_COLUMNS if c in table["columns"]]
    rows: list[dict[str, Any]] = [
        {"name": "Keras (float)", "cells": [_pct(table["rows"]["keras"][c]) for c in cols]},
        {
            "name": f"Deployed int8 ({result.target})",
            "cells": [_pct(table["rows"]["target"][c]) for c in cols],
        },
    ]
    headers = [COLUMN_TITLES[c] + ("" if c in ("clean", "cw") else f" ε={table['eps'][c]:g}") for c in cols]
    points = []
    for name in result.attacks:
        for p in result.points:
            if p.attack != name:
                continue
            points.append(
                {
                    "attack": name,
                    "eps": "unbounded" if p.eps is None else f"{p.eps:g}",
                    "keras": _pct(p.keras_accuracy),
                    "reference": _pct(p.reference_accuracy),
                    "target": _pct(p.target_accuracy),
                    "exact": f"{p.target_reference_exact}/{p.samples}",
                    "linf": f"{p.perturbation.linf_mean:.4f} / {p.perturbation.linf_max:.4f}",
                    "l2": f"{p.perturbation.l2_mean:.4f} / {p.perturbation.l2_max:.4f}",
                }
            )
    grid = data["input_grid"]
    template = env.get_template(TEMPLATE)
    return template.render(
        result=data,
        headers=headers,
        rows=rows,
        plots=_plots(result),
        points=points,
        input_grid=(f"scale {grid['scale']:.6g}, zero point {grid['zero_point']}, range "
                    f"[{grid['range'][0]:.4g}, {grid['range'][1]:.4g}] ({grid['source']})"),
        verdict=_verdict(result),
        confirmations=[_confirmation_row(c) for c in result.confirmations],
        masking=[_masking_row(m) for m in result.masking],
        markdown_note=table_markdown(result).split("\n\n", 1)[1].strip(),
    )


def write_reports(result: RobustnessResult, json_path: str | Path | None, html_path: str | Path | None) -> None:
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result.to_json(), indent=2, allow_nan=False) + "\n")
    if html_path is not None:
        Path(html_path).write_text(render_html(result))
