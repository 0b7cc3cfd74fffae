/*
 * tr_add_s16.c - elementwise add of two int16 tensors of identical shape (dims), the s16 twin of
 * tr_add_s8 with the same params and arithmetic (tr_nn_add_params, tr_nn_types.h):
 *   a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (same for b)
 *   out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, min, max)
 * with int16 codes (offsets 0 on symmetric grids, 32768 / -32768 on non-negative ones) and an int16
 * activation range.
 * Overflow bound: the caller keeps |q + offset| << left_shift and |a + b| within int32. The lowering
 * uses left_shift 15 (|q| <= 32768, so |q << 15| <= 2^30; 16 would reach 2^31), 14 when an input is on
 * a non-negative grid (|q + 32768| <= 65535), and input multipliers <= 1/2 (|a|, |b| <= 2^29), as
 * CMSIS-NN's arm_elementwise_add_s16 does.
 *
 * An int16 input takes 65536 values, too many for tr_add_s8's per-input tables: every element is
 * requantised three times. DSP path, for the lowering's case (activation the whole int16 range, input
 * shifts <= 0 or small, output shift < 0): two elements per 32-bit load and store of each tensor (the
 * halves sign-extended with SXTH / ASR), the requantisations on SMULL / SMLAL in a loop specialised on
 * each input's rounding kind (shift 0 or < 0), the clamp a SSAT: about 31 instructions per element
 * (tr_add_s8's table path: about 21); other parameters take the plain-C loop. Plain C and DSP give
 * identical results.
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

#if TR_NN_USE_DSP
/* The DSP loop's constants, in locals: the output stores (memcpy) could alias the params otherwise. */
typedef struct {
    int32_t off1, off2, offo;
    int32_t sh1, sh2; /* left_shift plus the input requantisation's own left shift */
    tr_rq rq1, rq2, rqo;
} tr_add_s16_k;

/* One input's term: requantize((q + offset) << left_shift) with right == 0 (r0 = 1) or right >= 1, r0 a
 * constant at each call site so that every loop below is specialised (right >= 1 implies left == 0). */
static inline __attribute__((always_inline)) int32_t tr_add_s16_term(int32_t q, int32_t sh, const tr_rq *rq,
                                                                    const int r0)
{
    const int32_t a = (int32_t)((uint32_t)q << (uint32_t)sh);
    if (r0) {
        uint32_t lo;
        int32_t hi;
        int32_t x;
        __asm__("smull  %[lo], %[hi], %[a], %[m]\n\t"
                "lsrs   %[lo], %[lo], #31\n\t"
                "adc    %[x], %[lo], %[hi], lsl #1"
                : [lo] "=&r"(lo), [hi] "=&r"(hi), [x] "=r"(x)
                : [a] "r"(a), [m] "r"(rq->mult)
                : "cc");
        return x;
    }
    return tr_rq_rn(rq, a);
}

static inline __attribute__((always_inline)) int32_t tr_add_s16_one(const tr_add_s16_k *k, int32_t q1, int32_t q2,
                                                                   const int r1, const int r2)
{
    const int32_t a = tr_add_s16_term(q1 + k->off1, k->sh1, &k->rq1, r1);
    const int32_t b = tr_add_s16_term(q2 + k->off2, k->sh2, &k->rq2, r2);
    return __ssat(tr_rq_rn(&k->rqo, a + b) + k->offo, 16);
}

/* Pairs of elements, the whole int16 range as activation and an output right shift >= 1. */
static inline __attribute__((always_inline)) void tr_add_s16_pairs(const tr_add_s16_k *k, const int16_t *in1,
                                                                  const int16_t *in2, int16_t *out,
                                                                  int32_t pairs, const int r1, const int r2)
{
    const tr_add_s16_k c = *k;
    for (int32_t j = 0; j < pairs; ++j) {
        const uint32_t v1 = tr_load_u32(in1 + 2 * j);
        const uint32_t v2 = tr_load_u32(in2 + 2 * j);
        const int32_t o0 = tr_add_s16_one(&c, (int16_t)v1, (int16_t)v2, r1, r2);
        const int32_t o1 = tr_add_s16_one(&c, (int32_t)v1 >> 16, (int32_t)v2 >> 16, r1, r2);
        tr_store_u32(out + 2 * j, tr_pack_lo((uint32_t)o0, (uint32_t)o1));
    }
}
#endif

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
    /* The lowering's case (input shifts <= 0, output shift < 0, no clamp inside int16): specialised
     * loops on the two inputs' rounding kinds. (q << a) << b equals q << (a + b) for a + b <= 31. */
    if (lo == -32768 && hi == 32767 && rqo.right >= 1 && add_params->left_shift + rq1.left <= 31 &&
        add_params->left_shift + rq2.left <= 31) {
        const tr_add_s16_k k = {add_params->input_1_offset, add_params->input_2_offset, add_params->output_offset,
                                add_params->left_shift + rq1.left, add_params->left_shift + rq2.left, rq1, rq2, rqo};
        const int32_t pairs = n / 2;
        if (rq1.right == 0) {
            if (rq2.right == 0) {
                tr_add_s16_pairs(&k, input_1_data, input_2_data, output_data, pairs, 1, 1);
            } else {
                tr_add_s16_pairs(&k, input_1_data, input_2_data, output_data, pairs, 1, 0);
            }
        } else if (rq2.right == 0) {
            tr_add_s16_pairs(&k, input_1_data, input_2_data, output_data, pairs, 0, 1);
        } else {
            tr_add_s16_pairs(&k, input_1_data, input_2_data, output_data, pairs, 0, 0);
        }
        i = 2 * pairs;
    }
#endif
    for (; i < n; ++i) {
        output_data[i] = (int16_t)tr_clamp(
            tr_add_s16_sum(add_params, input_1_data[i], input_2_data[i], &rq1, &rq2, &rqo), lo, hi);
    }
    return TR_NN_SUCCESS;
}
