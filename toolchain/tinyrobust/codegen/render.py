"""Render the model library: tr_model.h/.c and tr_model_weights.h/.c, deterministic bytes."""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..program import Program
from ..resources import resource_dir
from .context import model_context

MODEL_TEMPLATES = ("tr_model.h", "tr_model.c", "tr_model_weights.h", "tr_model_weights.c")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resource_dir("firmware_templates") / "model")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # C, not HTML
    )


def render_model_library(program: Program, out_dir: Path) -> list[Path]:
    """Write the four model files into out_dir (which must exist); returns their paths."""
    env = _environment()
    context = model_context(program)
    written = []
    for name in MODEL_TEMPLATES:
        text = env.get_template(f"{name}.j2").render(**context)
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
