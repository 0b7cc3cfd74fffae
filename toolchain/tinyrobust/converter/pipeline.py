"""model.h5 → Graph → passes → Program: the Python API (`tinyrobust.convert`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import lazy
from ..dataset import Dataset
from ..errors import DatasetError
from .calibration import CalibrationRange, min_max, minimum_error
from .ir import Graph
from .lower import lower
from .ops.lowering import LowerOptions
from .passes import (
    GridOptions,
    run_quantize,
    run_structural,
    run_widths,
    table_inputs,
    tensors_improved_by_calibration,
    tensors_needing_calibration,
    widenable_nodes,
)
from .precision import DEFAULT_FIDELITY, Fidelity
from .program import Program
from .reference import Reference


@dataclass(frozen=True)
class ConvertOptions:
    input_range: tuple[float, float] | None = None  # None: from the calibration data, else [0, 1]
    packing: str = "t2"
    calibration: Dataset | None = None
    fidelity: Fidelity = DEFAULT_FIDELITY  # which calibrated tensors get int16 activations (passes/widths.py)


class DeployedModel:
    """A converted model: its Program, the bit-exact reference, and the float Keras model."""

    def __init__(self, program: Program, graph: Graph, keras_model: Any | None, int8_program: Program | None = None):
        self.program = program
        self.graph = graph
        self.keras_model = keras_model
        self.reference = Reference(program)
        # the same model with int8 activations everywhere (--fidelity fast), when `program` has int16 ones:
        # what the export report compares the memory cost with
        self.int8_program = int8_program

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """float samples (N, *input_shape) → the firmware's int8 input bytes (N, input_bytes)."""
        shape = self.program.tensor(self.program.input).shape
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != tuple(shape):
            raise DatasetError(f"input samples have shape {x.shape[1:]}, the model takes {tuple(shape)}")
        return self.program.input_quantization.quantize(x).reshape(len(x), -1)

    def predict_int8(self, x: np.ndarray) -> np.ndarray:
        return self.reference.run(self.quantize_input(x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Dequantised outputs (logits) of the deployed integer model."""
        out = self.program.tensor(self.program.output)
        return out.scale * (self.program.output_values(self.predict_int8(x)).astype(np.float64) - out.zero_point)

    def keras_predict(self, x: np.ndarray) -> np.ndarray:
        if self.keras_model is None:
            raise RuntimeError("this model was loaded from an export directory: no Keras model")
        return lazy.frontend().predict(self.keras_model, np.asarray(x, dtype=np.float32))

    def keras_predict_outputs(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The float model on one array per input: one array per output (any number of either)."""
        if self.keras_model is None:
            raise RuntimeError("this model was loaded from an export directory: no Keras model")
        return lazy.frontend().predict_outputs(self.keras_model, [np.asarray(x, np.float32) for x in xs])

    def predict_int8_outputs(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The deployed model on one float array per input: its outputs, one (N, elements) int8 or int16 array
        each."""
        return self.program.split_outputs(self.reference.run(self.program.pack_inputs(xs)))


def _calibrate(graph: Graph, keras_model: Any, tensors: list[str],
               xs: Sequence[np.ndarray]) -> dict[str, CalibrationRange]:
    """A range per tensor from samples of its values on `xs` (one array per input): the least-error range
    for hidden tensors and the inputs, min/max for the model's outputs (clipping logits can change the
    class) and for table inputs (their grid is then clipped where the function saturates)."""
    hidden = [t for t in tensors if t not in graph.inputs]
    fed = xs[0] if len(xs) == 1 else list(xs)
    samples = lazy.frontend().tensor_samples(keras_model, hidden, fed) if hidden else {}
    for t, x in zip(graph.inputs, xs, strict=True):
        if t in tensors:
            flat = np.asarray(x, np.float32).reshape(-1)
            pick = np.random.default_rng(0).choice(flat.size, size=min(flat.size, 200_000), replace=False)
            samples[t] = np.concatenate([[flat.min(), flat.max()], flat[pick]])
    keep_extremes = table_inputs(graph) | set(graph.outputs)
    return {t: (min_max if t in keep_extremes else minimum_error)(samples[t]) for t in tensors}


def choose_wide_nodes(graph: Graph, fidelity: Fidelity) -> frozenset[str]:
    """The nodes that run on int16 activations at this fidelity (passes/widths.py).

    balanced: those whose int16 output is no larger than the model's largest int8 tensor, so the
    activation memory's peak barely moves: in a network that narrows as it deepens, the deeper layers,
    where rounding noise has compounded most, and the head.
    """
    if fidelity == "fast":
        return frozenset()
    candidates = widenable_nodes(graph)
    if fidelity == "exact":
        return frozenset(candidates)
    elements = {t: int(np.prod(info.shape, dtype=np.int64)) for t, info in graph.tensors.items()}
    largest = max(elements.values())
    by_name = {n.name: n for n in graph.nodes}
    return frozenset(n for n in candidates if 2 * elements[by_name[n].output] <= largest)


def convert(model_path: str | Path, options: ConvertOptions | None = None, **kwargs: Any) -> DeployedModel:
    """Load a QKeras .h5 and lower it. kwargs override ConvertOptions fields, e.g.
    `convert("m.h5", calibration=Dataset.load("cal.npz"), packing="trit5")`."""
    frontend = lazy.frontend()
    options = replace(options or ConvertOptions(), **kwargs)
    path = Path(model_path)
    keras_model = frontend.load_model(path)
    graph = run_structural(frontend.build_graph(keras_model, path.stem))
    grid_options = GridOptions(input_range=options.input_range)
    wanted = tensors_needing_calibration(graph, grid_options) + tensors_improved_by_calibration(graph, grid_options)
    if wanted and options.calibration is not None:
        options.calibration.check_inputs([(t, graph.tensors[t].shape) for t in graph.inputs], "--calibration")
        graph = replace(graph, calibration=_calibrate(graph, keras_model, sorted({t for t, _ in wanted}),
                                                      options.calibration.inputs))
    graph = run_quantize(graph, grid_options)  # raises CalibrationNeededError naming what is missing
    lower_options = LowerOptions(packing=options.packing)
    wide = choose_wide_nodes(graph, options.fidelity)
    int8_program = lower(graph, lower_options) if wide else None
    graph = run_widths(graph, wide, int16_outputs=options.fidelity != "fast")
    program = lower(graph, lower_options)
    return DeployedModel(program, graph, keras_model, int8_program)


def convert_file(model: Path, *, calibration: Path | None, input_range: tuple[float, float] | None,
                 packing: str, fidelity: Fidelity = DEFAULT_FIDELITY) -> DeployedModel:
    """convert() with the calibration data read from its .npz (what every command does)."""
    cal = Dataset.load(calibration, need_labels=False) if calibration else None
    return convert(model, ConvertOptions(input_range=input_range, packing=packing, calibration=cal,
                                         fidelity=fidelity))
