/*
 * tr_mul_s8.c - elementwise multiply of two int8 tensors of identical shape (dims, any shape):
 *   out = clamp(requantize((q1 + input_1_offset) * (q2 + input_2_offset), output_mult, output_shift)
 *               + output_offset, activation)
 * The offsets are the negated zero points (in [-127, 128]), so each factor lies in [-255, 255] and
 * the product in [-65025, 65025]: no int32 overflow, no pre-scaling; the lowering keeps
 * output_shift's left shift within int32 for that bound.
 * DSP path: the offsets are added to four lanes at a time with SXTAB16 and the 16-bit lanes
 * multiplied bottom by bottom and top by top (SMLABB / SMLATT with a zero accumulator).
 */
#include "tr_nn_support.h"

tr_nn_status tr_mul_s8(const tr_nn_mul_params *mul_params, const tr_nn_dims *dims, const int8_t *input_1_data,
                       const int8_t *input_2_data, int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t off1 = mul_params->input_1_offset;
    const int32_t off2 = mul_params->input_2_offset;
    const int32_t mult = mul_params->output_mult;
    const int32_t shift = mul_params->output_shift;
    const int32_t out_off = mul_params->output_offset;
    const tr_nn_activation *act = &mul_params->activation;
    int32_t i = 0;
#if TR_NN_USE_DSP
    const uint32_t pair1 = ((uint32_t)off1 & 0xFFFFu) | ((uint32_t)off1 << 16);
    const uint32_t pair2 = ((uint32_t)off2 & 0xFFFFu) | ((uint32_t)off2 << 16);
    for (; i + 4 <= n; i += 4) {
        const uint32_t w1 = tr_load_u32(input_1_data + i);
        const uint32_t w2 = tr_load_u32(input_2_data + i);
        const int32_t a02 = __sxtab16((int32_t)pair1, (int32_t)w1);
        const int32_t a13 = __sxtab16((int32_t)pair1, (int32_t)tr_ror(w1, 8u));
        const int32_t b02 = __sxtab16((int32_t)pair2, (int32_t)w2);
        const int32_t b13 = __sxtab16((int32_t)pair2, (int32_t)tr_ror(w2, 8u));
        const uint32_t r0 = (uint8_t)tr_output_stage(__smlabb(a02, b02, 0), mult, shift, out_off, act);
        const uint32_t r1 = (uint8_t)tr_output_stage(__smlabb(a13, b13, 0), mult, shift, out_off, act);
        const uint32_t r2 = (uint8_t)tr_output_stage(__smlatt(a02, b02, 0), mult, shift, out_off, act);
        const uint32_t r3 = (uint8_t)tr_output_stage(__smlatt(a13, b13, 0), mult, shift, out_off, act);
        tr_store_u32(output_data + i, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
    }
#endif
    for (; i < n; ++i) {
        const int32_t prod = ((int32_t)input_1_data[i] + off1) * ((int32_t)input_2_data[i] + off2);
        output_data[i] = tr_output_stage(prod, mult, shift, out_off, act);
    }
    return TR_NN_SUCCESS;
}
