/*
 * tr_requantize_s16.c - per-tensor elementwise requantisation of an int16 tensor onto another int16 grid
 * (a relu or quantizer activation inside an int16 region). dims: any shape, n * h * w * c elements,
 * input and output int16, both contiguous; they may be the same buffer (each element is read before
 * it is written), but must not overlap otherwise.
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max)
 * Ranges: q + input_offset fits int32 (the lowering passes -z_in = 0 for a symmetric int16 grid, 32768 for a
 * non-negative one), and (q + input_offset) << max(shift, 0) fits int32 (the lowering checks this headroom);
 * output_offset within int32 without overflowing the sum, activation within int16 (min <= max).
 * DSP path: two int16 lanes per word load and store, the requantisation constants prepared once and its
 * rounding variant chosen outside the loop (5 instructions per element instead of ~20).
 */
#include "tr_nn_support.h"

tr_nn_status tr_requantize_s16(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                               const int16_t *input_data, int16_t *output_data)
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
    /* One word (two int16 lanes) in and out per step; the rounding variant (tr_rq_r0 for shift >= 0,
     * tr_rq_rn below) is chosen once, outside the loop, so the loop body has no branch. */
#define TR_RQ_S16_LOOP(requantize)                                                                   \
    for (; i + 2 <= n; i += 2) {                                                                     \
        const uint32_t w = tr_load_u32(input_data + i);                                              \
        const int32_t r0 = tr_clamp(requantize(&rq, (int16_t)w + in_off) + off, lo, hi);             \
        const int32_t r1 = tr_clamp(requantize(&rq, (int16_t)(w >> 16) + in_off) + off, lo, hi);     \
        tr_store_u32(output_data + i, (uint32_t)(uint16_t)r0 | ((uint32_t)r1 << 16));                \
    }
    if (rq.right == 0) {
        TR_RQ_S16_LOOP(tr_rq_r0)
    } else {
        TR_RQ_S16_LOOP(tr_rq_rn)
    }
#undef TR_RQ_S16_LOOP
#endif
    for (; i < n; ++i) {
        output_data[i] =
            tr_output_stage_s16(input_data[i] + in_off, mult, shift, off, &params->activation);
    }
    return TR_NN_SUCCESS;
}
