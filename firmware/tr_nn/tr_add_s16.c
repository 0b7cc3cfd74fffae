/*
 * tr_add_s16.c - elementwise add of two int16 tensors of identical shape (dims), the s16 twin of
 * tr_add_s8 with the same params and arithmetic (tr_nn_add_params, tr_nn_types.h):
 *   a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (same for b)
 *   out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, min, max)
 * with int16 codes (the lowering gives zero points 0, so offsets 0) and an int16 activation range.
 * Overflow bound: the caller keeps |q + offset| << left_shift and |a + b| within int32. The lowering
 * uses left_shift 15 (|q| <= 32768, so |q << 15| <= 2^30; 16 would reach 2^31) and input
 * multipliers <= 1/2 (|a|, |b| <= 2^29), as CMSIS-NN's arm_elementwise_add_s16 does.
 *
 * An int16 input takes 65536 values, too many for tr_add_s8's per-input tables: every element is
 * requantised three times. DSP path: two elements per 32-bit load and store of each tensor (the
 * halves sign-extended with SXTH / ASR), the requantisations on SMULL / SMLAL (tr_rq_r0 / tr_rq_rn),
 * the clamp a SSAT when the activation is the whole int16 range. Plain C and DSP give identical results.
 */
#include "tr_nn_support.h"

static inline int32_t tr_add_s16_input(int32_t q_plus_offset, int32_t left_shift, const tr_rq *rq)
{
    return tr_rq_requantize(rq, (int32_t)((uint32_t)q_plus_offset << (uint32_t)left_shift));
}

static inline int32_t tr_add_s16_sum(const tr_nn_add_params *p, int32_t q1, int32_t q2, const tr_rq *rq1,
                                     const tr_rq *rq2, const tr_rq *rqo)
{
    const int32_t a = tr_add_s16_input(q1 + p->input_1_offset, p->left_shift, rq1);
    const int32_t b = tr_add_s16_input(q2 + p->input_2_offset, p->left_shift, rq2);
    return tr_rq_requantize(rqo, a + b) + p->output_offset;
}

tr_nn_status tr_add_s16(const tr_nn_add_params *add_params, const tr_nn_dims *dims,
                        const int16_t *input_1_data, const int16_t *input_2_data, int16_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0 || add_params->left_shift < 0 || add_params->left_shift > 31) {
        return TR_NN_ARG_ERROR;
    }
    const tr_rq rq1 = tr_rq_prepare(add_params->input_1_mult, add_params->input_1_shift, NULL, 0);
    const tr_rq rq2 = tr_rq_prepare(add_params->input_2_mult, add_params->input_2_shift, NULL, 0);
    const tr_rq rqo = tr_rq_prepare(add_params->output_mult, add_params->output_shift, NULL, 0);
    const int32_t lo = add_params->activation.min;
    const int32_t hi = add_params->activation.max;
    int32_t i = 0;
#if TR_NN_USE_DSP
    if (lo == -32768 && hi == 32767) {
        for (; i + 2 <= n; i += 2) {
            const uint32_t v1 = tr_load_u32(input_1_data + i);
            const uint32_t v2 = tr_load_u32(input_2_data + i);
            const int32_t o0 = __ssat(tr_add_s16_sum(add_params, (int16_t)v1, (int16_t)v2, &rq1, &rq2, &rqo), 16);
            const int32_t o1 = __ssat(
                tr_add_s16_sum(add_params, (int32_t)v1 >> 16, (int32_t)v2 >> 16, &rq1, &rq2, &rqo), 16);
            tr_store_u32(output_data + i, ((uint32_t)o0 & 0xFFFFu) | ((uint32_t)o1 << 16));
        }
    } else {
        for (; i + 2 <= n; i += 2) {
            const uint32_t v1 = tr_load_u32(input_1_data + i);
            const uint32_t v2 = tr_load_u32(input_2_data + i);
            const int32_t o0 = tr_clamp(tr_add_s16_sum(add_params, (int16_t)v1, (int16_t)v2, &rq1, &rq2, &rqo),
                                        lo, hi);
            const int32_t o1 = tr_clamp(
                tr_add_s16_sum(add_params, (int32_t)v1 >> 16, (int32_t)v2 >> 16, &rq1, &rq2, &rqo), lo, hi);
            tr_store_u32(output_data + i, ((uint32_t)o0 & 0xFFFFu) | ((uint32_t)o1 << 16));
        }
    }
#endif
    for (; i < n; ++i) {
        output_data[i] = (int16_t)tr_clamp(
            tr_add_s16_sum(add_params, input_1_data[i], input_2_data[i], &rq1, &rq2, &rqo), lo, hi);
    }
    return TR_NN_SUCCESS;
}
