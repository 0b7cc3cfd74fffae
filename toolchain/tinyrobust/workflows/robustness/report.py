"""Reports for an Evaluation: JSON, a Table-IV-style Markdown table, and a one-file HTML page.

The HTML embeds its plots as base64 PNGs so it can be mailed or attached to CI as a single file;
it explains every threat model, attack and masking check in plain words. Templates never compute:
everything the page prints is prepared here.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import jinja2
from matplotlib.figure import Figure

from ... import outputs
from .results import Evaluation, ModelResult, Rate, Row
from .threats import (
    ATTACK_TITLES,
    ATTACK_WORDS,
    NORM_WORDS,
    THREAT_TITLES,
    THREAT_WORDS,
    RowKey,
)

TEMPLATE = "report.html.j2"
SHORT_THREAT = {"ste": "STE", "bpda": "BPDA", "transfer": "transfer", "black-box": "black-box", "noise": "noise"}


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def rate_text(rate: Rate | dict[str, Any] | None) -> str:
    """'93.1 [90.2–95.2]': percent with the 95 % interval."""
    if rate is None:
        return "–"
    if isinstance(rate, Rate):
        rate = rate.to_json()
    if rate["value"] is None:
        return "–"
    lo, hi = rate["ci95"]
    return f"{100 * rate['value']:.1f} [{100 * lo:.1f}–{100 * hi:.1f}]"


def column_title(key: RowKey, eps: float | None) -> str:
    where = "unbounded" if eps is None else f"ε={eps:g}"
    norm = "" if key.norm == "linf" else f" {key.norm.upper()}"
    return f"{ATTACK_TITLES[key.attack]} ({SHORT_THREAT[key.threat]}){norm} {where}"


def _latency_text(m: ModelResult) -> str:
    if m.latency is None:
        return "–"
    return f"{m.latency['mean']:,.0f} {m.latency['unit']}"


def table_markdown(ev: Evaluation) -> str:
    """Rows = models, columns = attack × threat model × ε: robust accuracy % [95 % interval]."""
    cols = ev.columns()
    head = ["Model", "Clean %"] + [column_title(k, e) + " %" for k, e in cols] + ["Flash (B)", "Latency"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in ev.models:
        cells = [m.name, rate_text(m.clean)]
        for key, eps in cols:
            row = m.row(key.threat, key.attack, key.norm)
            point = None if row is None else row.point(eps)
            cells.append("–" if point is None else rate_text(point.robust_accuracy))
        cells += [f"{m.flash_bytes:,}", _latency_text(m)]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"{ev.samples} samples, seed {ev.seed}; robust accuracy (correct on the clean and on the adversarial "
             "input) on the target, in % with its 95 % Wilson interval; ε in the units of the data, the "
             "perturbation as the target received it."]
    for m in ev.models:
        flagged = [c.check for c in m.masking if c.flagged]
        notes.append(f"{m.name}: gradient masking " + (f"FLAGGED ({'; '.join(flagged)})" if flagged else "not flagged")
                     + ".")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_model_png(m: ModelResult, norm: str) -> bytes:
    """Robust accuracy vs ε of every row of one norm, with 95 % intervals; clean accuracy dotted."""
    fig = Figure(figsize=(6.0, 3.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for row in m.rows:
        if row.key.norm != norm or not row.bounded:
            continue
        pts = row.bounded
        eps = [float(p.eps) for p in pts]  # type: ignore[arg-type]
        acc = [100 * p.robust_accuracy.value for p in pts]
        lo = [100 * (p.robust_accuracy.value - p.robust_accuracy.interval[0]) for p in pts]
        hi = [100 * (p.robust_accuracy.interval[1] - p.robust_accuracy.value) for p in pts]
        ax.errorbar(eps, acc, yerr=[lo, hi], marker="o", ms=3, capsize=2, lw=1,
                    label=f"{ATTACK_TITLES[row.key.attack]} ({SHORT_THREAT[row.key.threat]})")
    ax.axhline(100 * m.clean.value, color="grey", lw=0.8, ls=":", label="clean")
    ax.set_xlabel(f"ε ({norm.upper()}, data units)")
    ax.set_ylabel("robust accuracy (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"{m.name} on {m.target}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best", ncol=2)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _row_details(row: Row) -> list[dict[str, Any]]:
    out = []
    for p in row.points:
        out.append({
            "eps": "unbounded" if p.eps is None else f"{p.eps:g}",
            "robust": rate_text(p.robust_accuracy),
            "success": rate_text(p.attack_success),
            "reference": rate_text(p.reference_robust_accuracy),
            "surrogate": _pct(p.surrogate_accuracy),
            "perturbation": f"{p.perturbation.mean:.4g} / {p.perturbation.max:.4g}",
            "linf": f"{p.perturbation.linf_mean:.4g} / {p.perturbation.linf_max:.4g}",
            "exact": f"{p.target_reference_exact}/{p.robust_accuracy.n}",
            "folds": "" if p.folds is None else
            f"{100 * p.folds.to_json()['mean']:.1f} ± {100 * p.folds.to_json()['std']:.1f}",
        })
    return out


def _model_view(m: ModelResult, norms: tuple[str, ...]) -> dict[str, Any]:
    rows = []
    for row in m.rows:
        queries = "" if row.queries is None else \
            f"{row.queries:,} queries ({row.queries / max(row.attacked, 1):,.0f} per attacked sample)"
        conf = row.confirmation
        rows.append({"title": row.key.title, "points": _row_details(row), "notes": list(row.notes), "queries": queries,
                     "confirmation": None if conf is None else
                     {"css": "ok" if conf.all_confirmed else "bad",
                      "text": (f"{conf.bytes_identical}/{conf.examples} target outputs identical to the reference, "
                               f"{conf.flips_confirmed}/{conf.reference_flips} label flips confirmed on the target")
                      + ("" if conf.all_confirmed else
                         "; UNCONFIRMED samples " + ", ".join(map(str, conf.unconfirmed)))}})
    agreement_ok = m.target_mismatches == 0 and m.all_confirmed
    return {
        "name": m.name, "target": m.target, "model_sha256": m.model_sha256 or "–", "program_sha256": m.program_sha256,
        "clean": rate_text(m.clean), "flash": f"{m.flash_bytes:,}", "latency": _latency_text(m),
        "grid": (f"scale {m.input_grid['scale']:.6g}, zero point {m.input_grid['zero_point']}, range "
                 f"[{m.input_grid['range'][0]:.4g}, {m.input_grid['range'][1]:.4g}] ({m.input_grid['source']})"),
        "agreement": {"css": "ok" if agreement_ok else "bad",
                      "text": (f"All {m.target_inputs} distinct inputs sent to the target gave the reference's output "
                               "bytes; every black-box example is confirmed on the target.") if agreement_ok else
                      (f"MISMATCH: {m.target_mismatches} of {m.target_inputs} target outputs differ from the "
                       "reference.")},
        "masking": [{"check": c.check, "verdict": c.verdict, "css": "bad" if c.flagged else "ok" if c.evaluated else "",
                     "meaning": c.meaning, "evidence": list(c.evidence)} for c in m.masking],
        "masking_flagged": m.masking_flagged,
        "gradients": [{"threat": THREAT_TITLES[g.threat], "zero": rate_text(g.zero_samples),
                       "components": _pct(g.zero_components)} for g in m.gradients],
        "plots": [{"title": f"{m.name} ({n.upper()})", "png_b64": base64.b64encode(plot_model_png(m, n)).decode()}
                  for n in norms if any(r.key.norm == n and r.bounded for r in m.rows)],
        "rows": rows,
    }


def render_html(ev: Evaluation) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    cols = ev.columns()
    threats_used = list(dict.fromkeys(k.threat for k, _ in cols))
    attacks_used = list(dict.fromkeys(k.attack for k, _ in cols))
    table_rows = []
    for m in ev.models:
        cells = []
        for key, eps in cols:
            row = m.row(key.threat, key.attack, key.norm)
            point = None if row is None else row.point(eps)
            cells.append("–" if point is None else rate_text(point.robust_accuracy))
        table_rows.append({"name": m.name, "clean": rate_text(m.clean), "cells": cells, "flash": f"{m.flash_bytes:,}",
                           "latency": _latency_text(m), "css": "flag" if m.masking_flagged else ""})
    return env.get_template(TEMPLATE).render(
        ev=ev.to_json(),
        columns=[{"title": column_title(k, e), "threat": THREAT_TITLES[k.threat],
                  "threat_words": THREAT_WORDS[k.threat]} for k, e in cols],
        table_rows=table_rows,
        threats=[{"title": THREAT_TITLES[t], "words": THREAT_WORDS[t]} for t in threats_used],
        attacks=[{"title": ATTACK_TITLES[a], "words": ATTACK_WORDS[a]} for a in attacks_used],
        norms=[{"title": n.upper(), "words": NORM_WORDS[n], "eps": ", ".join(f"{e:g}" for e in ev.eps[n])}
               for n in ev.norms],
        models=[_model_view(m, ev.norms) for m in ev.models],
        budget=", ".join(f"{k} {v}" for k, v in ev.budget.to_json().items() if k != "derived"),
        derived=", ".join(f"{k} {v}" for k, v in ev.budget.to_json()["derived"].items()),
        markdown_note=table_markdown(ev).split("\n\n", 1)[1].strip().splitlines()[0],
    )


def report_json(ev: Evaluation) -> str:
    return json.dumps(ev.to_json(), indent=2, allow_nan=False) + "\n"


def write_reports(ev: Evaluation, json_path: str | Path | None, html_path: str | Path | None,
                  markdown_path: str | Path | None = None) -> None:
    """Each report is rendered in full first, then written atomically (outputs.py): a failed render
    leaves no file, and a reader never sees half a report."""
    reports = [(json_path, "--json", report_json), (markdown_path, "--markdown", table_markdown),
               (html_path, "--html", render_html)]
    texts = [(Path(path), option, render(ev)) for path, option, render in reports if path is not None]
    for path, option, text in texts:
        outputs.write_text(path, text, option)
