"""Render C from templates (firmware_templates/): the model library and the kernel runner's
dispatch, deterministic bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from ...converter.program import Program
from ..sources import templates_dir
from .context import model_context
from .runner import runner_context

MODEL_TEMPLATES = ("tr_model.h", "tr_model.c", "tr_model_weights.h", "tr_model_weights.c")
RUNNER_DISPATCH = "tr_runner_ops.c"


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # C, not HTML
    )


def _render(env: jinja2.Environment, template: str, context: dict[str, Any], path: Path) -> Path:
    path.write_text(env.get_template(template).render(**context))
    return path


def render_model_library(program: Program, out_dir: Path) -> list[Path]:
    """Write the four model files into out_dir (which must exist); returns their paths."""
    env = environment()
    context = model_context(program)
    return [_render(env, f"model/{name}.j2", context, out_dir / name) for name in MODEL_TEMPLATES]


def render_runner_dispatch(out_dir: Path) -> Path:
    """Write tr_runner_ops.c (every kernel of the op table) into out_dir; returns its path."""
    return _render(environment(), f"runner/{RUNNER_DISPATCH}.j2", runner_context(), out_dir / RUNNER_DISPATCH)
