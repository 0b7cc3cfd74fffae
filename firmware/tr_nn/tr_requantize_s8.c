/*
 * tr_requantize_s8.c - per-tensor elementwise requantisation of an int8 tensor (dims, any shape):
 *   out = clamp(requantize(q + input_offset, mult, shift) + output_offset, min, max)
 * DSP path: the input offset is added to four lanes at a time with SXTAB16.
 */
#include "tr_nn_support.h"

tr_nn_status tr_requantize_s8(const tr_nn_requantize_params *params, const tr_nn_dims *dims,
                              const int8_t *input_data, int8_t *output_data)
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
    const uint32_t in_off = ((uint32_t)params->input_offset & 0xFFFFu) | ((uint32_t)params->input_offset << 16);
    for (; i + 4 <= n; i += 4) {
        const uint32_t w = tr_load_u32(input_data + i);
        const uint32_t v02 = (uint32_t)__sxtab16((int32_t)in_off, (int32_t)w);
        const uint32_t v13 = (uint32_t)__sxtab16((int32_t)in_off, (int32_t)tr_ror(w, 8u));
        const uint32_t r0 = (uint8_t)tr_output_stage((int16_t)v02, mult, shift, off, &params->activation);
        const uint32_t r1 = (uint8_t)tr_output_stage((int16_t)v13, mult, shift, off, &params->activation);
        const uint32_t r2 = (uint8_t)tr_output_stage((int16_t)(v02 >> 16), mult, shift, off, &params->activation);
        const uint32_t r3 = (uint8_t)tr_output_stage((int16_t)(v13 >> 16), mult, shift, off, &params->activation);
        tr_store_u32(output_data + i, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
    }
#endif
    for (; i < n; ++i) {
        output_data[i] = tr_output_stage(input_data[i] + params->input_offset, mult, shift, off, &params->activation);
    }
    return TR_NN_SUCCESS;
}
