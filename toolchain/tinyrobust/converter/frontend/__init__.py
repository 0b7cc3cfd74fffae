"""The only part of tinyrobust that imports TensorFlow / QKeras (other modules reach it through
tinyrobust/lazy.py, the one deferred import).

`load_model` checks the file's config before Keras deserialises it; `build_graph` walks the model
with class-keyed handlers; `tensor_values`, `tensor_samples` and `predict` run the float model; `models` builds the
architectures the demo, the bench and the tests use; `training`, `builders` and `recipe` serve `tinyrobust train`.
"""

from __future__ import annotations

import logging
import os

# Must precede the first TensorFlow import anywhere in the process: QKeras needs tf-keras,
# never Keras 3. Users should not have to set it themselves.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from .quiet import quiet_startup  # noqa: E402  (imports no TensorFlow)

with quiet_startup():  # TensorFlow's absl/CUDA start-up lines are not for tinyrobust's users
    from . import attacks, builders, models, recipe, training  # noqa: E402
    from .evaluate import predict, predict_outputs, tensor_samples, tensor_values  # noqa: E402
    from .loader import load_model  # noqa: E402
    from .walk import build_graph  # noqa: E402

# TensorFlow's Python warnings are advice to library authors (e.g. "GradientTape.gradient on a persistent
# tape … less efficient", raised inside ART), nothing a tinyrobust user can act on; errors still show.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
# ART logs per-sample remarks ("Adversarial example found but not optimal") that the robustness report
# already quantifies (the perturbation received); only its errors are shown.
logging.getLogger("art").setLevel(logging.ERROR)

__all__ = ["load_model", "build_graph", "tensor_samples", "tensor_values", "predict", "predict_outputs", "models",
           "attacks", "builders", "recipe", "training"]
