"""Per-layer fidelity: the deployed integer model against the trained float model, tensor by tensor.

Keras and the reference run on the same inputs; every deployed tensor that has a Keras counterpart (a
layer's output, a layer's pre-activation, a separable layer's depthwise half, the model input) is
compared in units of its own grid's step: a perfect int8 rounding of the Keras value is at most half a
step away, and the first tensor more than one step away is where the two implementations part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import lazy
from ..converter.passes.widths import counterpart
from ..converter.pipeline import DeployedModel

WORST_SHOWN = 3


@dataclass(frozen=True)
class LayerFidelity:
    index: int  # the op that writes the tensor (-1: the model input)
    tensor: str
    kernel: str
    scale: float
    max_steps: float  # max |deployed − Keras| in steps of the tensor's grid
    mean_steps: float
    beyond_one_step: float  # fraction of values more than one step from Keras
    snr_db: float | None  # 10·log10(Σ keras² / Σ error²); None when the error is exactly 0
    cosine: float
    clipped: float  # fraction of Keras values outside the grid's range (saturation), by more than ½ step

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _compare(keras: np.ndarray, deployed: np.ndarray, scale: float, lo: float, hi: float) -> dict[str, Any]:
    k = keras.reshape(len(keras), -1).astype(np.float64)
    d = deployed.reshape(len(deployed), -1).astype(np.float64)
    err = np.abs(d - k) / scale
    noise = float(np.sum((d - k) ** 2))
    signal = float(np.sum(k * k))
    norm = float(np.linalg.norm(k) * np.linalg.norm(d))
    return {
        "max_steps": float(err.max(initial=0.0)),
        "mean_steps": float(err.mean()) if err.size else 0.0,
        "beyond_one_step": float(np.mean(err > 1.0 + 1e-9)) if err.size else 0.0,
        "snr_db": None if noise == 0 else float(10 * np.log10(max(signal, 1e-300) / noise)),
        "cosine": float(np.sum(k * d) / norm) if norm > 0 else 1.0,
        "clipped": float(np.mean((k < lo - scale / 2) | (k > hi + scale / 2))) if k.size else 0.0,
    }


def layer_fidelity(deployed: DeployedModel, x: np.ndarray) -> list[LayerFidelity]:
    """Every deployed tensor with a Keras counterpart, in program order, measured on the samples `x`."""
    if deployed.keras_model is None:
        raise ValueError("per-layer fidelity needs the Keras model")
    program, graph = deployed.program, deployed.graph
    produced = [(i, op) for i, op in enumerate(program.ops) if op.output in graph.tensors]
    names = list(dict.fromkeys(counterpart(op.output) for _, op in produced))
    keras_values = lazy.frontend().tensor_values(deployed.keras_model, names, x) if names else {}
    q = deployed.quantize_input(x)
    layers = [deployed.reference.run_layers(row) for row in q]
    rows: list[LayerFidelity] = []

    def add(index: int, tensor: str, kernel: str, keras: np.ndarray, ours: np.ndarray) -> None:
        spec = program.tensor(tensor)
        grid = graph.tensors[tensor].grid
        assert grid is not None
        real = spec.scale * (ours.astype(np.float64) - spec.zero_point)
        rows.append(LayerFidelity(index, tensor, kernel, spec.scale,
                                  **_compare(keras, real, spec.scale, grid.real_min, grid.real_max)))

    add(-1, program.input, "input quantisation", np.asarray(x, np.float64), q)
    for i, op in produced:
        ours = np.stack([per_sample[i] for per_sample in layers])
        add(i, op.output, op.kernel, keras_values[counterpart(op.output)], ours)
    return rows


def fidelity_report(rows: list[LayerFidelity], samples: int) -> dict[str, Any]:
    first = next((r for r in rows if r.max_steps > 1.0 + 1e-9), None)
    worst = sorted(rows, key=lambda r: (r.beyond_one_step, r.mean_steps), reverse=True)[:WORST_SHOWN]
    return {
        "samples": samples,
        "layers": [r.to_json() for r in rows],
        "first_beyond_one_step": None if first is None else {"index": first.index, "tensor": first.tensor,
                                                              "max_steps": first.max_steps},
        "worst": [r.tensor for r in worst],
    }


def _db(v: float | None) -> str:
    return "exact" if v is None else f"{v:.1f}"


def fidelity_lines(report: dict[str, Any]) -> list[str]:
    """The terminal summary: where Keras and the deployed model part, and the worst three tensors."""
    by_name = {r["tensor"]: r for r in report["layers"]}
    first = report["first_beyond_one_step"]
    lines = [f"per-layer fidelity vs Keras ({report['samples']} samples): "
             + ("every tensor within one step of Keras" if first is None else
                f"first tensor more than one step from Keras: '{first['tensor']}' (op {first['index']}, "
                f"max {first['max_steps']:.2f} steps)")]
    for name in report["worst"]:
        r = by_name[name]
        lines.append(f"  {name:<28} mean {r['mean_steps']:.2f} max {r['max_steps']:.1f} steps, "
                     f"{100 * r['beyond_one_step']:.1f} % > 1 step, SNR {_db(r['snr_db'])} dB, "
                     f"clipped {100 * r['clipped']:.1f} %")
    return lines


def fidelity_markdown(report: dict[str, Any]) -> str:
    lines = [f"## Per-layer fidelity vs Keras ({report['samples']} samples)", "",
             "Errors in steps of each tensor's own grid (ideal rounding: at most 0.5); clipped = Keras values "
             "outside the grid's range.", "",
             "| op | tensor | kernel | mean steps | max steps | > 1 step | SNR dB | cosine | clipped |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["layers"]:
        lines.append(f"| {r['index']} | {r['tensor']} | `{r['kernel']}` | {r['mean_steps']:.3f} | "
                     f"{r['max_steps']:.2f} | {100 * r['beyond_one_step']:.2f} % | {_db(r['snr_db'])} | "
                     f"{r['cosine']:.5f} | {100 * r['clipped']:.2f} % |")
    return "\n".join(lines) + "\n"
