"""tinyrobust: deploy ternary QKeras models on STM32H7 and prove on target that nothing was lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .pipeline import DeployedModel


def convert(model_path: Any, **kwargs: Any) -> DeployedModel:
    """Load a QKeras .h5 model and lower it; the result's `.predict(x)` runs the bit-exact reference."""
    from .pipeline import convert as _convert

    return _convert(model_path, **kwargs)


__all__ = ["convert", "__version__"]
