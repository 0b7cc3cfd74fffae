/*
 * tr_requantize_s16_s8.c - per-tensor elementwise requantisation of an int16 tensor onto an int8 grid
 * (narrowing: where an int16 tensor feeds an int8-only op or a model output). dims: any shape,
 * n * h * w * c elements, input int16, output int8, both contiguous; they must not overlap.
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max)
 * Ranges: q + input_offset fits int32 (the lowering passes -z_in = 0 for a symmetric int16 grid, 32768 for a
 * non-negative one), and (q + input_offset) << max(shift, 0) fits int32 (the lowering checks this headroom);
 * output_offset within int32 without overflowing the sum, activation within int8 (min <= max).
 * DSP path: two int16 inputs per word load, four per step stored as one word of int8, the requantisation
 * constants prepared once and its rounding variant chosen outside the loop.
 */
#include "tr_nn_support.h"

tr_nn_status tr_requantize_s16_s8(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                                  const int16_t *input_data, int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t mult = params->mult;
    const int32_t shift = params->shift;
    const int32_t in_off = params->input_offset;
    const int32_t off = params->output_offset;
    int32_t i = 0;
#if TR_NN_USE_DSP
    const tr_rq rq = tr_rq_prepare(mult, shift, NULL, 0);
    const int32_t lo = params->activation.min;
    const int32_t hi = params->activation.max;
    /* Two words (four int16 lanes) in, one word of four int8 out per step; the rounding variant
     * (tr_rq_r0 for shift >= 0, tr_rq_rn below) is chosen once, outside the loop. */
#define TR_RQ_S16_S8_LANE(requantize, v) ((uint32_t)(uint8_t)tr_clamp(requantize(&rq, (v) + in_off) + off, lo, hi))
#define TR_RQ_S16_S8_LOOP(requantize)                                                                \
    for (; i + 4 <= n; i += 4) {                                                                     \
        const uint32_t w01 = tr_load_u32(input_data + i);                                            \
        const uint32_t w23 = tr_load_u32(input_data + i + 2);                                        \
        const uint32_t b01 = TR_RQ_S16_S8_LANE(requantize, (int16_t)w01) |                           \
                             (TR_RQ_S16_S8_LANE(requantize, (int16_t)(w01 >> 16)) << 8);             \
        const uint32_t b23 = TR_RQ_S16_S8_LANE(requantize, (int16_t)w23) |                           \
                             (TR_RQ_S16_S8_LANE(requantize, (int16_t)(w23 >> 16)) << 8);             \
        tr_store_u32(output_data + i, b01 | (b23 << 16));                                            \
    }
    if (rq.right == 0) {
        TR_RQ_S16_S8_LOOP(tr_rq_r0)
    } else {
        TR_RQ_S16_S8_LOOP(tr_rq_rn)
    }
#undef TR_RQ_S16_S8_LOOP
#undef TR_RQ_S16_S8_LANE
#endif
    for (; i < n; ++i) {
        output_data[i] = tr_output_stage(input_data[i] + in_off, mult, shift, off, &params->activation);
    }
    return TR_NN_SUCCESS;
}
