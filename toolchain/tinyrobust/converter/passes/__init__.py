"""Ordered pure passes Graph → Graph, with an invariant check after each.

STRUCTURAL passes need nothing but the graph; QUANTIZE passes need the grid options (and the
calibration ranges stored on the graph). `convert` in pipeline.py runs them in this order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..ir import Graph
from .factor_alpha import factor_alpha
from .fold_batchnorm import fold_batchnorm
from .fuse_activations import fuse_activations
from .grids import (
    CalibrationNeededError,
    GridOptions,
    absorb_input_quantizer,
    assign_grids,
    table_inputs,
    tensors_improved_by_calibration,
    tensors_needing_calibration,
)
from .invariants import check_graph
from .structure import drop_final_softmax, fold_zero_padding, remove_identities
from .widths import widen, widenable_nodes

Pass = Callable[[Graph], Graph]

STRUCTURAL: tuple[tuple[str, Pass], ...] = (
    ("remove_identities", remove_identities),
    ("drop_final_softmax", drop_final_softmax),
    ("absorb_input_quantizer", absorb_input_quantizer),
    ("fold_zero_padding", fold_zero_padding),
    ("fold_batchnorm", fold_batchnorm),
    ("fuse_activations", fuse_activations),
    ("factor_alpha", factor_alpha),
)


def run_structural(graph: Graph) -> Graph:
    check_graph(graph, "frontend")
    for name, fn in STRUCTURAL:
        graph = fn(graph)
        check_graph(graph, name)
    return graph


def run_quantize(graph: Graph, options: GridOptions) -> Graph:
    passes: tuple[tuple[str, Pass], ...] = (("assign_grids", partial(assign_grids, options=options)),)
    for name, fn in passes:
        graph = fn(graph)
        check_graph(graph, name, quantized=True)
    return graph


def run_widths(graph: Graph, wide_nodes: frozenset[str], int16_outputs: bool) -> Graph:
    """int16 activations for `wide_nodes`, conversions where widths meet (after assign_grids)."""
    graph = widen(graph, wide_nodes, int16_outputs)
    check_graph(graph, "widen", quantized=True)
    return graph


__all__ = [
    "run_widths",
    "widenable_nodes",
    "CalibrationNeededError",
    "GridOptions",
    "run_structural",
    "run_quantize",
    "tensors_needing_calibration",
    "tensors_improved_by_calibration",
    "table_inputs",
]
