/*
 * tr_nn_types.h - types shared by every tr_nn kernel.
 *
 * Numerics contract (see DESIGN.md "Numerics contract"):
 *  - activations are int8, real = scale * (q - zero_point), tensors laid out NHWC (batch N = 1);
 *  - accumulators are int32: acc = sum(w * q_in) * 2^bias_shift + bias_eff, where bias_shift
 *    (in [0, 16], a field of the conv / depthwise / fully connected params) lets the bias live in
 *    units 2^bias_shift times finer than one w * q_in step (with ternary weights that step can be
 *    a large fraction of an output step), and bias_eff already holds -z_in * sum(w) * 2^bias_shift
 *    (the input zero point is folded offline), so padded taps must read the value `pad_value`
 *    (= the input zero point) for the fold to cancel. The scaling is a multiply (no shift of a
 *    negative int), once per output; the caller guarantees acc fits int32
 *    (|sum| * 2^bias_shift + |bias_eff| < 2^31). requantize's shift absorbs the 2^bias_shift;
 *  - requantisation is tr_requantize(), identical to CMSIS-NN's arm_nn_requantize
 *    (doubling high multiply with rounding, then rounding right shift);
 *    multiplier in [2^30, 2^31) or 0, shift in [-31, 30]; shift > 0 is a left shift.
 *  - output = clamp(requantize(acc, mult, shift) + output_offset, activation.min, activation.max).
 *
 * Packed weight formats (one row per output channel for conv / fully connected, one row per
 * kernel tap for depthwise; every row starts on a 32-bit word):
 *  - "t2r16-v1":   2 bits per trit, 0 -> 00, +1 -> 01, -1 -> 11 (10 never emitted), lowest bits
 *                  first; a row holds ceil(K / 16) * 4 bytes.
 *  - "trit5r20-v1": 5 trits per byte, byte = sum_k (t_k + 1) * 3^k for k = 0..4 (values 0..242);
 *                  a row holds ceil(K / 20) * 4 bytes; padding trits are 0 (byte digit 1).
 *  - "s8r4-v1":    int8 weights; a row holds ceil(K / 4) * 4 bytes, padding bytes are 0.
 */
#ifndef TR_NN_TYPES_H
#define TR_NN_TYPES_H

#include <stdint.h>

typedef enum {
    TR_NN_SUCCESS = 0,
    TR_NN_ARG_ERROR = -1,
} tr_nn_status;

/* Scratch memory handed to a kernel; size from the kernel's _get_buffer_size twin. */
typedef struct {
    void *buf;
    int32_t size;
} tr_nn_context;

/* Tensor dimensions. Activations: NHWC. Filters: see each kernel's header comment. */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} tr_nn_dims;

typedef struct {
    int32_t w;
    int32_t h;
} tr_nn_tile;

/* Inclusive int8 clamp applied after adding the output offset. */
typedef struct {
    int32_t min;
    int32_t max;
} tr_nn_activation;

/* Convolution. padding = number of implicit pad rows/columns before the first input row/column
 * (top/left); the bottom/right padding follows from the output size. */
typedef struct {
    int32_t pad_value;     /* value read at padded taps: the input zero point, in [-128, 127] */
    int32_t output_offset; /* the output zero point, in [-128, 127] */
    tr_nn_tile stride;
    tr_nn_tile padding;
    tr_nn_activation activation;
    int32_t bias_shift; /* acc = sum(w * x) * 2^bias_shift + bias, in [0, 16] (else TR_NN_ARG_ERROR) */
} tr_nn_conv_params;

/* Depthwise convolution: output channel o reads input channel o / ch_mult. */
typedef struct {
    int32_t ch_mult;
    int32_t pad_value;
    int32_t output_offset;
    tr_nn_tile stride;
    tr_nn_tile padding;
    tr_nn_activation activation;
    int32_t bias_shift; /* as in tr_nn_conv_params, in [0, 16] */
} tr_nn_dw_conv_params;

typedef struct {
    int32_t output_offset;
    tr_nn_activation activation;
    int32_t bias_shift; /* as in tr_nn_conv_params, in [0, 16] */
} tr_nn_fc_params;

/* Per-output-channel requantisation; arrays of length C_out. */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} tr_nn_per_channel_quant_params;

/* Elementwise add with per-input rescaling (TFLite / CMSIS-NN scheme):
 *   a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)
 *   b = requantize((q2 + input_2_offset) << left_shift, input_2_mult, input_2_shift)
 *   out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, min, max) */
typedef struct {
    int32_t input_1_offset; /* -z1 */
    int32_t input_1_mult;
    int32_t input_1_shift;
    int32_t input_2_offset; /* -z2 */
    int32_t input_2_mult;
    int32_t input_2_shift;
    int32_t left_shift; /* 20 (tr_add_s8), 15 (tr_add_s16) */
    int32_t output_offset;
    int32_t output_mult;
    int32_t output_shift;
    tr_nn_activation activation;
} tr_nn_add_params;

/* Elementwise multiply (TFLite / CMSIS-NN scheme, one requantisation of the product):
 *   out = clamp(requantize((q1 + input_1_offset) * (q2 + input_2_offset), output_mult, output_shift)
 *               + output_offset, min, max) */
typedef struct {
    int32_t input_1_offset; /* -z1 */
    int32_t input_2_offset; /* -z2 */
    int32_t output_offset;
    int32_t output_mult;
    int32_t output_shift;
    tr_nn_activation activation;
} tr_nn_mul_params;

/* Per-tensor elementwise requantisation:
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max) */
typedef struct {
    int32_t input_offset; /* -z_in */
    int32_t output_offset;
    int32_t mult;
    int32_t shift;
    tr_nn_activation activation;
} tr_nn_requantize_params;

/* Pooling over valid (non-padded) taps only; same grid in and out. */
typedef struct {
    tr_nn_tile stride;
    tr_nn_tile padding;
    tr_nn_activation activation;
} tr_nn_pool_params;

/* Explicit zero padding: fill value is the tensor zero point. */
typedef struct {
    int32_t pad_value;
    int32_t top;
    int32_t left;
} tr_nn_pad_params;

#endif /* TR_NN_TYPES_H */
