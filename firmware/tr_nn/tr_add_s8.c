/*
 * tr_add_s8.c - elementwise add of two int8 tensors of identical shape (dims), per-input
 * rescaling as documented at tr_nn_add_params (tr_nn_types.h):
 *   a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (same for b)
 *   out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, min, max)
 * The lowering keeps left_shift small enough (20 with |q + offset| <= 255) that nothing overflows.
 * DSP path: offsets are added to four lanes at a time with SXTAB16.
 */
#include "tr_nn_support.h"

static inline int8_t tr_add_one(const tr_nn_add_params *p, int32_t in1, int32_t in2)
{
    /* in1 / in2 already include the input offsets. */
    const int32_t a = tr_requantize_inline((int32_t)((uint32_t)in1 << (uint32_t)p->left_shift), p->input_1_mult,
                                           p->input_1_shift);
    const int32_t b = tr_requantize_inline((int32_t)((uint32_t)in2 << (uint32_t)p->left_shift), p->input_2_mult,
                                           p->input_2_shift);
    return tr_output_stage(a + b, p->output_mult, p->output_shift, p->output_offset, &p->activation);
}

tr_nn_status tr_add_s8(const tr_nn_add_params *add_params, const tr_nn_dims *dims,
                       const int8_t *input_1_data, const int8_t *input_2_data, int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0 || add_params->left_shift < 0 || add_params->left_shift > 31) {
        return TR_NN_ARG_ERROR;
    }
    int32_t i = 0;
#if TR_NN_USE_DSP
    const uint32_t off1 = ((uint32_t)add_params->input_1_offset & 0xFFFFu) | ((uint32_t)add_params->input_1_offset << 16);
    const uint32_t off2 = ((uint32_t)add_params->input_2_offset & 0xFFFFu) | ((uint32_t)add_params->input_2_offset << 16);
    for (; i + 4 <= n; i += 4) {
        const uint32_t w1 = tr_load_u32(input_1_data + i);
        const uint32_t w2 = tr_load_u32(input_2_data + i);
        const uint32_t a02 = (uint32_t)__sxtab16((int32_t)off1, (int32_t)w1);
        const uint32_t a13 = (uint32_t)__sxtab16((int32_t)off1, (int32_t)tr_ror(w1, 8u));
        const uint32_t b02 = (uint32_t)__sxtab16((int32_t)off2, (int32_t)w2);
        const uint32_t b13 = (uint32_t)__sxtab16((int32_t)off2, (int32_t)tr_ror(w2, 8u));
        const uint32_t r0 = (uint8_t)tr_add_one(add_params, (int16_t)a02, (int16_t)b02);
        const uint32_t r1 = (uint8_t)tr_add_one(add_params, (int16_t)a13, (int16_t)b13);
        const uint32_t r2 = (uint8_t)tr_add_one(add_params, (int16_t)(a02 >> 16), (int16_t)(b02 >> 16));
        const uint32_t r3 = (uint8_t)tr_add_one(add_params, (int16_t)(a13 >> 16), (int16_t)(b13 >> 16));
        tr_store_u32(output_data + i, r0 | (r1 << 8) | (r2 << 16) | (r3 << 24));
    }
#endif
    for (; i < n; ++i) {
        output_data[i] = tr_add_one(add_params, input_1_data[i] + add_params->input_1_offset,
                                    input_2_data[i] + add_params->input_2_offset);
    }
    return TR_NN_SUCCESS;
}
