"""What a `--quantize` name means in QKeras: the weight quantizer, and the activation quantizers that
give every tensor a grid so the export needs no calibration data.

- `stq`: stochastic_ternary(alpha="auto_po2") weights (the seed paper's STQ);
- `ternary`: ternary(alpha="auto_po2") weights;
- `int8`: quantized_bits(8, 0, alpha=1) weights;
- `none`: float weights and plain activations (export then calibrates).

The quantized modes put quantized_relu(8, 3) (0 … 8 in steps of 1/32) on every ReLU, quantized_bits(8, 3)
(−8 … 8 in steps of 1/16) on tensors with no activation that another layer reads (a BatchNorm before
an Add, an Add's sum), and quantized_bits(8, 4) (−16 … 16 in steps of 1/8) on the logits: 8 bits
because every deployed tensor is int8 anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import qkeras as q
from tf_keras import layers

QUANTIZE = ("stq", "ternary", "int8", "none")
RELU = "quantized_relu(8,3)"
LINEAR = "quantized_bits(8,3,alpha=1)"
LOGITS = "quantized_bits(8,4,alpha=1)"


def _identity(x: Any) -> Any:
    return x


@dataclass(frozen=True)
class Quantization:
    mode: str = "stq"
    activations: bool = True  # False: weights only, the layers' own float activations (published models)
    custom_weights: Callable[[], Any] | None = None  # a weight quantizer factory instead of the mode's

    def __post_init__(self) -> None:
        if self.mode not in QUANTIZE:
            raise ValueError(f"unknown quantization '{self.mode}'; choose from {', '.join(QUANTIZE)}")

    @property
    def quantized(self) -> bool:
        return self.mode != "none"

    def weights(self) -> Any:
        """A fresh weight quantizer (None: float weights)."""
        if self.custom_weights is not None:
            return self.custom_weights()
        return {"stq": lambda: q.stochastic_ternary(alpha="auto_po2"), "ternary": lambda: q.ternary(alpha="auto_po2"),
                "int8": lambda: q.quantized_bits(8, 0, alpha=1), "none": lambda: None}[self.mode]()

    def weights_spec(self) -> str | None:
        """The weight quantizer as QKeras's model_quantize spells it."""
        return {"stq": "stochastic_ternary(alpha='auto_po2')", "ternary": "ternary(alpha='auto_po2')",
                "int8": "quantized_bits(8,0,alpha=1)", "none": None}[self.mode]

    @property
    def gridded(self) -> bool:
        """Activation quantizers on every tensor."""
        return self.quantized and self.activations

    def relu(self, name: str) -> Any:
        return q.QActivation(RELU, name=name) if self.gridded else layers.Activation("relu", name=name)

    def linear(self, name: str) -> Any:
        """A grid for a tensor with no activation (identity when float)."""
        return q.QActivation(LINEAR, name=name) if self.gridded else _identity

    def logits(self, name: str) -> Any:
        return q.QActivation(LOGITS, name=name) if self.gridded else _identity

    def conv(self, filters: int, kernel: Any, name: str, **kwargs: Any) -> Any:
        if not self.quantized:
            return layers.Conv2D(filters, kernel, name=name, **kwargs)
        return q.QConv2D(filters, kernel, kernel_quantizer=self.weights(), name=name, **kwargs)

    def depthwise(self, kernel: Any, name: str, **kwargs: Any) -> Any:
        if not self.quantized:
            return layers.DepthwiseConv2D(kernel, name=name, **kwargs)
        return q.QDepthwiseConv2D(kernel, depthwise_quantizer=self.weights(), name=name, **kwargs)

    def separable(self, filters: int, kernel: Any, name: str, **kwargs: Any) -> Any:
        if not self.quantized:
            return layers.SeparableConv2D(filters, kernel, name=name, **kwargs)
        return q.QSeparableConv2D(filters, kernel, depthwise_quantizer=self.weights(),
                                  pointwise_quantizer=self.weights(), name=name, **kwargs)

    def dense(self, units: int, name: str, **kwargs: Any) -> Any:
        if not self.quantized:
            return layers.Dense(units, name=name, **kwargs)
        return q.QDense(units, kernel_quantizer=self.weights(), name=name, **kwargs)
