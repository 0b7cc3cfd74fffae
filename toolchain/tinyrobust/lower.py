"""Lower a legal, quantised Graph to the integer Program.

Every real-valued quantity becomes an int32 bias, a (multiplier, shift) pair or an int8 table
here, once; the reference and the C only ever see integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import packing
from .ir import (
    ActivationNode,
    AddNode,
    BatchNormNode,
    ConcatNode,
    ConvNode,
    Graph,
    Grid,
    InputNode,
    PadNode,
    PoolNode,
    ReshapeNode,
    UnsupportedModelError,
    WeightTensor,
)
from .kernel_abi import scratch_bytes
from .program import InputQuantization, Op, Program, TensorSpec
from .quantmath import INT32_MAX, check_left_shift_headroom, quantize_multiplier, round_half_away

PACKINGS = {"t2": packing.T2, "trit5": packing.TRIT5}
WEIGHT_SUFFIX = {packing.T2: "t2", packing.TRIT5: "t5", packing.S8: "s8"}
ADD_LEFT_SHIFT = 20  # int8 inputs << 20 keep 11 bits of headroom in int32 (TFLite's choice)
INT8_ABS_MAX = 128
MAX_BIAS_SHIFT = 8


@dataclass(frozen=True)
class LowerOptions:
    packing: str = "t2"  # "t2" (2-bit) or "trit5" (1.6-bit) for ternary and binary weights


def _clamp(grid: Grid, relu: bool) -> tuple[int, int]:
    lo = max(grid.qmin, grid.zero_point) if relu else grid.qmin
    return int(lo), int(grid.qmax)


def _multipliers(real: np.ndarray, bound: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    mults, shifts = [], []
    for r, b in zip(real, bound, strict=True):
        m, s = quantize_multiplier(float(r))
        try:
            check_left_shift_headroom(int(b), s)
        except OverflowError as exc:
            raise UnsupportedModelError(f"{where}: {exc}") from exc
        mults.append(m)
        shifts.append(s)
    return np.array(mults, dtype=np.int32), np.array(shifts, dtype=np.int32)


def _fine_bias(bias_units: np.ndarray, zero_point_fold: np.ndarray, sum_bound: np.ndarray,
               where: str) -> tuple[int, np.ndarray]:
    """(bias_shift, int32 bias) with acc = Σ w·x · 2^bias_shift + bias.

    With ternary weights one accumulator step (α·s_in) can be a large fraction of an output step,
    so a bias rounded to whole steps would shift entire channels; 2^bias_shift finer units make
    that error negligible. The largest shift (up to MAX_BIAS_SHIFT) whose int32 accumulator
    cannot overflow is used.
    """
    for bias_shift in range(MAX_BIAS_SHIFT, -1, -1):
        bias = round_half_away(bias_units * (1 << bias_shift)).astype(np.int64) - (zero_point_fold << bias_shift)
        if np.all((sum_bound << bias_shift) + np.abs(bias) <= INT32_MAX):
            return bias_shift, bias
    raise UnsupportedModelError(f"{where}: the int32 accumulator could overflow (bias too large for the scales)")


def _filter_rows(node_kind: str, codes: np.ndarray) -> np.ndarray:
    """Codes in the kernels' row order (see tr_nn.h): conv [Cout][KH·KW·Cin], depthwise
    [KH·KW][Cout], dense [Cout][Cin]."""
    if node_kind == "conv2d":
        return np.ascontiguousarray(codes.transpose(3, 0, 1, 2).reshape(codes.shape[3], -1))
    if node_kind == "depthwise":
        kh, kw, cin, mult = codes.shape
        return np.ascontiguousarray(codes.reshape(kh * kw, cin * mult))
    return np.ascontiguousarray(codes.T)


def _lower_conv(node: ConvNode, g: Graph, opts: LowerOptions) -> Op:
    where = f"layer '{node.name}'"
    gi = g.tensors[node.inputs[0]].grid
    go = g.tensors[node.output].grid
    assert gi is not None and go is not None
    w: WeightTensor = node.weights
    assert w.codes is not None and w.channel_scale is not None
    effective = node.post_scale * w.channel_scale  # per output channel, may be negative (BN)
    sign = np.where(effective < 0, -1, 1).astype(np.int8)
    magnitude = np.abs(effective)
    flat = w.codes.reshape(-1, w.codes.shape[2] * w.codes.shape[3]) if node.kind == "depthwise" else (
        w.codes.reshape(-1, w.codes.shape[-1])
    )
    flipped = flat.astype(np.int16) * sign[None, :]
    if flipped.max(initial=0) > 127:
        channel = int(np.argmax(flipped.max(axis=0)))
        raise UnsupportedModelError(
            f"{where}: channel {channel} has an int8 weight of -128 and a negative folded BatchNorm scale; "
            "its sign flip (+128) does not fit int8. Use symmetric quantized_bits weights for this layer."
        )
    flat = flipped.astype(np.int8)
    dead = magnitude * gi.scale == 0  # channels that output a constant
    flat[:, dead] = 0
    codes = flat.reshape(w.codes.shape)
    unit = np.where(dead, go.scale, magnitude * gi.scale)  # real value of one accumulator step
    code_sum = flat.astype(np.int64).sum(axis=0)
    sum_bound = np.abs(flat).astype(np.int64).sum(axis=0) * INT8_ABS_MAX  # max |Σ w·x|
    bias_shift, bias = _fine_bias(node.post_bias / unit, gi.zero_point * code_sum, sum_bound, where)
    bound = (sum_bound << bias_shift) + np.abs(bias)
    mult, shift = _multipliers(unit / (go.scale * (1 << bias_shift)), bound, where)

    fmt = packing.S8 if w.kind == "int8" else PACKINGS[opts.packing]
    rows = _filter_rows(node.kind, codes)
    packed = packing.pack_rows(rows, fmt)
    in_shape = g.tensors[node.inputs[0]].shape
    out_shape = g.tensors[node.output].shape
    act_min, act_max = _clamp(go, node.activation.kind == "relu")
    suffix = WEIGHT_SUFFIX[fmt]
    arrays = {
        "weights": packed,
        "bias": bias.astype(np.int32),
        "multiplier": mult,
        "shift": shift,
    }
    common = {"output_offset": go.zero_point, "act_min": act_min, "act_max": act_max, "bias_shift": bias_shift,
              "rows": rows.shape[0], "row_length": rows.shape[1]}
    if node.kind == "dense":
        cin, cout = w.codes.shape
        kernel = f"tr_fully_connected_s8_{suffix}"
        params = {**common, "input_channels": cin, "output_channels": cout}
        macs = cin * cout
        filter_dims = (cout, 1, 1, cin)
        in_dims = (1, 1, 1, cin)
    else:
        kh, kw = w.codes.shape[:2]
        oh, ow, cout = out_shape if len(out_shape) == 3 else (1, 1, out_shape[0])  # global pool → (C,)
        h, wd, cin = in_shape
        params = {
            **common,
            "kernel": (kh, kw),
            "stride": node.strides,
            "padding": (node.padding[0], node.padding[1]),
            "pad_value": gi.zero_point,
            "input_shape": (h, wd, cin),
            "output_shape": (oh, ow, cout),
        }
        if node.kind == "depthwise":
            kernel = f"tr_depthwise_conv_s8_{suffix}"
            params["ch_mult"] = cout // cin
            macs = oh * ow * cout * kh * kw
            filter_dims = (1, kh, kw, cout)
        else:
            kernel = f"tr_convolve_s8_{suffix}"
            macs = oh * ow * cout * kh * kw * cin
            filter_dims = (cout, kh, kw, cin)
        in_dims = (1, h, wd, cin)
    return Op(
        kernel=kernel,
        name=node.name,
        inputs=node.inputs,
        output=node.output,
        params=params,
        arrays=arrays,
        weight_format=fmt,
        num_params=int(w.codes.size),
        macs=int(macs),
        scratch_bytes=scratch_bytes(kernel, in_dims, filter_dims),
    )


def _lower_batchnorm(node: BatchNormNode, g: Graph, opts: LowerOptions) -> Op:
    """A BatchNorm that follows no conv is a per-channel affine map: a 1×1 depthwise conv whose
    codes are the signs of the BN scale and whose channel scale is its magnitude."""
    c = len(node.scale)
    codes = np.sign(node.scale).astype(np.int8).reshape(1, 1, c, 1)
    weights = WeightTensor(
        values=node.scale.reshape(1, 1, c, 1), quantizer="batchnorm", kind="ternary",
        codes=codes, channel_scale=np.abs(node.scale),
    )
    conv = ConvNode(
        name=node.name, inputs=node.inputs, output=node.output, kind="depthwise", weights=weights,
        post_scale=np.ones(c), post_bias=node.offset,
    )
    if len(g.tensors[node.inputs[0]].shape) != 3:
        raise UnsupportedModelError(f"layer '{node.name}': standalone BatchNorm on a non-image tensor")
    return _lower_conv(conv, g, opts)


def _requantize_op(name: str, src: str, dst: str, gi: Grid, go: Grid, relu: bool, shape: tuple[int, ...]) -> Op:
    mult, shift = _multipliers(np.array([gi.scale / go.scale]), np.array([2 * INT8_ABS_MAX]), f"layer '{name}'")
    act_min, act_max = _clamp(go, relu)
    params = {
        "input_offset": -gi.zero_point,
        "output_offset": go.zero_point,
        "mult": int(mult[0]),
        "shift": int(shift[0]),
        "act_min": act_min,
        "act_max": act_max,
    }
    return Op("tr_requantize_s8", name, (src,), dst, params, macs=int(np.prod(shape)))


def _lut_table(kind: str, gi: Grid, go: Grid) -> np.ndarray:
    q = np.arange(-128, 128, dtype=np.float64)
    real = gi.scale * (q - gi.zero_point)
    y = 1.0 / (1.0 + np.exp(-real)) if kind == "sigmoid" else np.tanh(real)
    out = round_half_away(y / go.scale) + go.zero_point
    return np.clip(out, go.qmin, go.qmax).astype(np.int8)


def _lower_activation(node: ActivationNode, g: Graph) -> Op:
    gi = g.tensors[node.inputs[0]].grid
    go = g.tensors[node.output].grid
    assert gi is not None and go is not None
    shape = g.tensors[node.output].shape
    kind = node.activation.kind
    if kind in ("sigmoid", "tanh"):
        return Op("tr_lut_s8", node.name, node.inputs, node.output, {"function": kind},
                  {"table": _lut_table(kind, gi, go)}, macs=int(np.prod(shape)))
    if kind in ("relu", "quantized"):
        return _requantize_op(node.name, node.inputs[0], node.output, gi, go, kind == "relu", shape)
    raise UnsupportedModelError(f"layer '{node.name}': activation {kind} cannot be lowered here")


def _lower_add(node: AddNode, g: Graph) -> Op:
    g1, g2 = (g.tensors[t].grid for t in node.inputs)
    go = g.tensors[node.output].grid
    assert g1 is not None and g2 is not None and go is not None
    twice_max = 2.0 * max(g1.scale, g2.scale)
    where = f"layer '{node.name}'"
    bound_in = np.array([(2 * INT8_ABS_MAX) << ADD_LEFT_SHIFT])
    m1, s1 = _multipliers(np.array([g1.scale / twice_max]), bound_in, where)
    m2, s2 = _multipliers(np.array([g2.scale / twice_max]), bound_in, where)
    mo, so = _multipliers(np.array([twice_max / ((1 << ADD_LEFT_SHIFT) * go.scale)]), bound_in, where)
    act_min, act_max = _clamp(go, node.activation.kind == "relu")
    params = {
        "input_1_offset": -g1.zero_point, "input_1_mult": int(m1[0]), "input_1_shift": int(s1[0]),
        "input_2_offset": -g2.zero_point, "input_2_mult": int(m2[0]), "input_2_shift": int(s2[0]),
        "left_shift": ADD_LEFT_SHIFT,
        "output_offset": go.zero_point, "output_mult": int(mo[0]), "output_shift": int(so[0]),
        "act_min": act_min, "act_max": act_max,
    }
    return Op("tr_add_s8", node.name, node.inputs, node.output, params,
              macs=int(np.prod(g.tensors[node.output].shape)))


def _lower_pool(node: PoolNode, g: Graph, opts: LowerOptions) -> Op:
    go = g.tensors[node.output].grid
    gi = g.tensors[node.inputs[0]].grid
    assert go is not None and gi is not None
    if node.kind == "avg" and go != gi:
        return _lower_conv(_average_as_depthwise(node, g), g, opts)
    h, w, c = g.tensors[node.inputs[0]].shape
    out = g.tensors[node.output].shape
    out_hw = (1, 1) if node.global_pool else (out[0], out[1])
    params = {
        "kernel": node.pool, "stride": node.strides, "padding": (node.padding[0], node.padding[1]),
        "act_min": go.qmin, "act_max": go.qmax, "input_shape": (h, w, c), "output_shape": (*out_hw, c),
    }
    kernel = "tr_max_pool_s8" if node.kind == "max" else "tr_avg_pool_s8"
    return Op(kernel, node.name, node.inputs, node.output, params,
              macs=int(out_hw[0] * out_hw[1] * c * node.pool[0] * node.pool[1]))


def _average_as_depthwise(node: PoolNode, g: Graph) -> ConvNode:
    """An unpadded average pool onto a finer output grid is a depthwise conv whose codes are all +1
    and whose channel scale is 1/(kh·kw): the sum stays exact and one requantisation rounds it."""
    c = g.tensors[node.inputs[0]].shape[-1]
    kh, kw = node.pool
    codes = np.ones((kh, kw, c, 1), dtype=np.int8)
    weights = WeightTensor(values=codes / (kh * kw), quantizer="average", kind="ternary", codes=codes,
                           channel_scale=np.full(c, 1.0 / (kh * kw)))
    return ConvNode(name=node.name, inputs=node.inputs, output=node.output, kind="depthwise", weights=weights,
                    post_scale=np.ones(c), post_bias=np.zeros(c), strides=node.strides)


def _lower_pad(node: PadNode, g: Graph) -> Op:
    go = g.tensors[node.output].grid
    assert go is not None
    params = {"top": node.padding[0], "left": node.padding[1], "pad_value": go.zero_point,
              "input_shape": g.tensors[node.inputs[0]].shape, "output_shape": g.tensors[node.output].shape}
    return Op("tr_pad_s8", node.name, node.inputs, node.output, params)


def lower(graph: Graph, opts: LowerOptions) -> Program:
    if opts.packing not in PACKINGS:
        raise UnsupportedModelError(f"packing '{opts.packing}' unknown; choose one of {', '.join(PACKINGS)}")
    tensors: dict[str, TensorSpec] = {}
    ops: list[Op] = []

    def add_tensor(name: str, shape: tuple[int, ...], grid: Grid, source: str, alias_of: str | None = None) -> None:
        tensors[name] = TensorSpec(name, tuple(shape), grid.scale, grid.zero_point, source, alias_of)

    for node in graph.nodes:
        info = graph.tensors[node.output]
        grid = info.grid
        assert grid is not None
        if isinstance(node, ReshapeNode):
            add_tensor(node.output, info.shape, grid, info.source, alias_of=node.inputs[0])
            continue
        add_tensor(node.output, info.shape, grid, info.source)
        if isinstance(node, InputNode):
            continue
        if isinstance(node, ConvNode):
            ops.append(_lower_conv(node, graph, opts))
        elif isinstance(node, BatchNormNode):
            ops.append(_lower_batchnorm(node, graph, opts))
        elif isinstance(node, ActivationNode):
            ops.append(_lower_activation(node, graph))
        elif isinstance(node, AddNode):
            ops.append(_lower_add(node, graph))
        elif isinstance(node, PoolNode):
            ops.append(_lower_pool(node, graph, opts))
        elif isinstance(node, PadNode):
            ops.append(_lower_pad(node, graph))
        elif isinstance(node, ConcatNode):
            ops.extend(_lower_concat(node, graph, add_tensor))
        else:
            raise UnsupportedModelError(f"layer '{node.name}': {type(node).__name__} cannot be lowered")
    in_grid = graph.tensors[graph.input].grid
    assert in_grid is not None
    return Program(
        tensors=tensors,
        ops=tuple(ops),
        input=graph.input,
        output=graph.output,
        input_quantization=InputQuantization(in_grid.scale, in_grid.zero_point, in_grid.qmin, in_grid.qmax,
                                             in_grid.origin),
        packing=PACKINGS[opts.packing],
        model_name=graph.name,
        notes=graph.notes,
    )


def _lower_concat(node: ConcatNode, g: Graph, add_tensor) -> list[Op]:
    """Inputs on another grid are requantised into temporaries first; the concat itself copies."""
    go = g.tensors[node.output].grid
    assert go is not None
    ops: list[Op] = []
    sources: list[str] = []
    offsets: list[int] = []
    offset = 0
    for i, t in enumerate(node.inputs):
        info = g.tensors[t]
        gi = info.grid
        assert gi is not None
        src = t
        if (gi.scale, gi.zero_point) != (go.scale, go.zero_point):
            src = f"{node.output}/requantized_{i}"
            add_tensor(src, info.shape, go, f"{node.name} (input {i} on the output grid)")
            ops.append(_requantize_op(f"{node.name}/requantize_{i}", t, src, gi, go, False, info.shape))
        sources.append(src)
        offsets.append(offset)
        offset += info.shape[-1]
    params = {"channel_offsets": tuple(offsets), "output_shape": g.tensors[node.output].shape}
    ops.append(Op("tr_concat_s8", node.name, tuple(sources), node.output, params))
    return ops
