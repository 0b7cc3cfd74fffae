/*
 * tr_requantize_s8_s16.c - per-tensor elementwise requantisation of an int8 tensor onto an int16 grid
 * (widening: where an int8 tensor enters an int16 region). dims: any shape, n * h * w * c elements,
 * input int8, output int16, both contiguous; they must not overlap.
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max)
 * Ranges: q + input_offset fits int16 for the DSP path's 16-bit lanes, i.e. |input_offset| <= 32639 (the
 * lowering passes -z_in of an int8 grid, within [-127, 128], so |q + input_offset| <= 256);
 * (q + input_offset) << max(shift, 0) fits int32 (the lowering checks this headroom); output_offset within
 * int32 without overflowing the sum, activation within int16 (min <= max).
 * DSP path: four inputs per word, the input offset added to two int16 lanes at a time with SXTAB16,
 * two outputs stored per word, the requantisation constants prepared once and its rounding variant
 * chosen outside the loop.
 */
#include "tr_nn_support.h"

tr_nn_status tr_requantize_s8_s16(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                                  const int8_t *input_data, int16_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t mult = params->mult;
    const int32_t shift = params->shift;
    const int32_t off = params->output_offset;
    int32_t i = 0;
#if TR_NN_USE_DSP
    const tr_rq rq = tr_rq_prepare(mult, shift, NULL, 0);
    const int32_t lo = params->activation.min;
    const int32_t hi = params->activation.max;
    const uint32_t in_off = ((uint32_t)params->input_offset & 0xFFFFu) | ((uint32_t)params->input_offset << 16);
    /* One word of four int8 in, two words of int16 out per step; the rounding variant (tr_rq_r0 for
     * shift >= 0, the usual case when widening, tr_rq_rn below) is chosen once, outside the loop. */
#define TR_RQ_S8_S16_LANE(requantize, v) tr_clamp(requantize(&rq, (int16_t)(v)) + off, lo, hi)
#define TR_RQ_S8_S16_LOOP(requantize)                                                                \
    for (; i + 4 <= n; i += 4) {                                                                     \
        const uint32_t w = tr_load_u32(input_data + i);                                              \
        const uint32_t v02 = (uint32_t)__sxtab16((int32_t)in_off, (int32_t)w); /* lanes 0, 2 */      \
        const uint32_t v13 = (uint32_t)__sxtab16((int32_t)in_off, (int32_t)tr_ror(w, 8u));           \
        tr_store_u32(output_data + i, (uint32_t)(uint16_t)TR_RQ_S8_S16_LANE(requantize, v02) |       \
                                          ((uint32_t)TR_RQ_S8_S16_LANE(requantize, v13) << 16));     \
        tr_store_u32(output_data + i + 2, (uint32_t)(uint16_t)TR_RQ_S8_S16_LANE(requantize, v02 >> 16) | \
                                              ((uint32_t)TR_RQ_S8_S16_LANE(requantize, v13 >> 16) << 16)); \
    }
    if (rq.right == 0) {
        TR_RQ_S8_S16_LOOP(tr_rq_r0)
    } else {
        TR_RQ_S8_S16_LOOP(tr_rq_rn)
    }
#undef TR_RQ_S8_S16_LOOP
#undef TR_RQ_S8_S16_LANE
#endif
    for (; i < n; ++i) {
        output_data[i] =
            tr_output_stage_s16(input_data[i] + params->input_offset, mult, shift, off, &params->activation);
    }
    return TR_NN_SUCCESS;
}
