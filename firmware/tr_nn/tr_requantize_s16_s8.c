/*
 * tr_requantize_s16_s8.c - per-tensor elementwise requantisation of an int16 tensor onto an int8 grid
 * (narrowing: where an int16 tensor feeds an int8-only op or a model output). dims: any shape,
 * n * h * w * c elements, input int16, output int8, both contiguous; they must not overlap.
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max)
 * Ranges: q + input_offset fits int32 (the lowering passes -z_in = 0 for an int16 grid: the CMSIS-NN s16
 * convention), and (q + input_offset) << max(shift, 0) fits int32 (the lowering checks this headroom);
 * output_offset within int32 without overflowing the sum, activation within int8 (min <= max).
 * DSP path: two int16 inputs per word load, four inputs per iteration, the requantisation constants
 * prepared once, and the four int8 outputs stored as one word.
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
    for (; i + 4 <= n; i += 4) {
        const uint32_t w01 = tr_load_u32(input_data + i);
        const uint32_t w23 = tr_load_u32(input_data + i + 2);
        /* each lane sign-extended and offset in one SXTAH */
        const int32_t r0 = tr_clamp(tr_rq_requantize(&rq, (int16_t)w01 + in_off) + off, lo, hi);
        const int32_t r1 = tr_clamp(tr_rq_requantize(&rq, (int16_t)(w01 >> 16) + in_off) + off, lo, hi);
        const int32_t r2 = tr_clamp(tr_rq_requantize(&rq, (int16_t)w23 + in_off) + off, lo, hi);
        const int32_t r3 = tr_clamp(tr_rq_requantize(&rq, (int16_t)(w23 >> 16) + in_off) + off, lo, hi);
        tr_store_u32(output_data + i, (uint32_t)(uint8_t)r0 | ((uint32_t)(uint8_t)r1 << 8) |
                                          ((uint32_t)(uint8_t)r2 << 16) | ((uint32_t)(uint8_t)r3 << 24));
    }
#endif
    for (; i < n; ++i) {
        output_data[i] = tr_output_stage(input_data[i] + in_off, mult, shift, off, &params->activation);
    }
    return TR_NN_SUCCESS;
}
