"""Render the C model library from a placed Program (jinja2 templates in firmware_templates/model)."""

from .render import render_model_library

__all__ = ["render_model_library"]
