"""Render C from templates (firmware_templates/): the model library and the kernel runner's
dispatch, deterministic bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from ... import __version__
from ...converter.program import Program
from ..sources import templates_dir
from .c_names import DEFAULT_PREFIX, LIBRARY_FILES, check_prefix, library_file
from .context import model_context
from .runner import runner_context

MODEL_TEMPLATES = LIBRARY_FILES
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


def render_model_library(program: Program, out_dir: Path, prefix: str = DEFAULT_PREFIX) -> list[Path]:
    """Write the four model files into out_dir (which must exist); returns their paths. `prefix` starts
    every C name and file name (c_names.py)."""
    env = environment()
    context = model_context(program, prefix)
    return [_render(env, f"model/{name}.j2", context, out_dir / library_file(name, prefix))
            for name in MODEL_TEMPLATES]


def render_app_binding(prefix: str, out_dir: Path) -> Path | None:
    """For a library with another prefix than the default, tr_model.h into out_dir: the names the
    evaluation app uses, bound to that library's. None (nothing written) for the default prefix."""
    check_prefix(prefix)
    if prefix == DEFAULT_PREFIX:
        return None
    context = {"version": __version__, "p": prefix, "P": prefix.upper()}
    return _render(environment(), "app/tr_model.h.j2", context, out_dir / "tr_model.h")


def render_runner_dispatch(out_dir: Path) -> Path:
    """Write tr_runner_ops.c (every kernel of the op table) into out_dir; returns its path."""
    return _render(environment(), f"runner/{RUNNER_DISPATCH}.j2", runner_context(), out_dir / RUNNER_DISPATCH)
