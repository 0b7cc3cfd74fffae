/*
 * tr_add_s8.c - elementwise add of two int8 tensors of identical shape (dims), per-input
 * rescaling as documented at tr_nn_add_params (tr_nn_types.h):
 *   a = requantize((q1 + input_1_offset) << left_shift, input_1_mult, input_1_shift)   (same for b)
 *   out = clamp(requantize(a + b, output_mult, output_shift) + output_offset, min, max)
 * The lowering keeps left_shift small enough (20 with |q + offset| <= 255) that nothing overflows.
 *
 * a depends on q1 alone, which takes 256 values (b likewise): from TR_ADD_TABLE_MIN elements on, the
 * kernel first tabulates a and b for every int8 (two 256-entry int32 tables, 2 KB on the stack: no
 * scratch, the signature is unchanged), computed with the very same requantisation, so each element
 * costs two table loads, an add and the output requantisation (about 13 instructions on the DSP
 * path instead of three requantisations). Smaller tensors requantise per element. Both paths give
 * identical results; plain C and DSP builds alike.
 */
#include "tr_nn_support.h"

/* Tables pay once the per-element saving (two requantisations) covers building 512 entries. */
#define TR_ADD_TABLE_MIN 256

static inline int32_t tr_add_input(int32_t q_plus_offset, int32_t left_shift, const tr_rq *rq)
{
    return tr_rq_requantize(rq, (int32_t)((uint32_t)q_plus_offset << (uint32_t)left_shift));
}

static inline int8_t tr_add_out(const tr_rq *rq, int32_t sum, int32_t offset, int32_t lo, int32_t hi)
{
    return (int8_t)tr_clamp(tr_rq_requantize(rq, sum) + offset, lo, hi);
}

/* Table path: ta[u] / tb[u] hold a / b for the int8 whose byte is u. */
__attribute__((noinline)) static void tr_add_tables(const tr_nn_add_params *p, int32_t n, const int8_t *in1,
                                                    const int8_t *in2, int8_t *out, const tr_rq *rq1,
                                                    const tr_rq *rq2, const tr_rq *rqo)
{
    int32_t ta[256];
    int32_t tb[256];
    for (int32_t u = 0; u < 256; ++u) {
        const int32_t q = (int32_t)(int8_t)(uint8_t)u;
        ta[u] = tr_add_input(q + p->input_1_offset, p->left_shift, rq1);
        tb[u] = tr_add_input(q + p->input_2_offset, p->left_shift, rq2);
    }
    const uint8_t *u1 = (const uint8_t *)in1;
    const uint8_t *u2 = (const uint8_t *)in2;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
#if TR_NN_USE_DSP
    if (lo == -128 && hi == 127 && rqo->right >= 1 && rqo->right <= 23) {
        /* The output offset joins the rounding constant's high word (offset * 2^(right-1) fits there for
         * right <= 23, and adds offset * 2^(31+right) to the 64-bit P of tr_rq_rn: exactly + offset after
         * the shift). Per element: two LDRB, two table LDR, ADD, AND / ADDS / ADC / SMLAL / ASR, SSAT,
         * STRB, and CMP / BNE per two: 13 instructions; in2 and out are addressed from in1's pointer. */
        const uint8_t *p1 = u1;
        const int32_t d2 = (int32_t)(u2 - u1) - 1;
        const int32_t dout = (int32_t)((const uint8_t *)(void *)out - u1) - 1;
        const int32_t chi = rqo->chi + (int32_t)((uint32_t)offset << (uint32_t)rqo->rm1);
        uint32_t a, b, plo, phi;
#define TR_ADD_ONE                                         \
        "ldrb   %[a], [%[p1]], #1\n\t"                    \
        "ldrb   %[b], [%[p1], %[d2]]\n\t"                 \
        "ldr    %[a], [%[ta], %[a], lsl #2]\n\t"          \
        "ldr    %[b], [%[tb], %[b], lsl #2]\n\t"          \
        "add    %[a], %[a], %[b]\n\t"                     \
        "and    %[b], %[a], #0x80000000\n\t"              \
        "adds   %[plo], %[clo], %[b]\n\t"                 \
        "adc    %[phi], %[chi], %[b], asr #31\n\t"        \
        "smlal  %[plo], %[phi], %[a], %[m]\n\t"           \
        "asr    %[phi], %[phi], %[rm1]\n\t"               \
        "ssat   %[phi], #8, %[phi]\n\t"                   \
        "strb   %[phi], [%[p1], %[dout]]\n\t"
#define TR_ADD_OPERANDS                                                                                          \
        : [a] "=&r"(a), [b] "=&r"(b), [plo] "=&r"(plo), [phi] "=&r"(phi), [p1] "+r"(p1)                           \
        : [d2] "r"(d2), [dout] "r"(dout), [end] "r"(end), [ta] "r"(ta), [tb] "r"(tb), [clo] "r"(rqo->clo),        \
          [chi] "r"(chi), [m] "r"(rqo->mult), [rm1] "r"(rqo->rm1)                                                \
        : "cc", "memory"
        if (n & 1) {
            const uint8_t *const end = u1 + 1;
            __asm__ volatile(TR_ADD_ONE TR_ADD_OPERANDS);
        }
        const uint8_t *const end = u1 + n; /* n >= TR_ADD_TABLE_MIN: at least one pair */
        __asm__ volatile("1:\n\t" TR_ADD_ONE TR_ADD_ONE
                         "cmp    %[p1], %[end]\n\t"
                         "bne    1b\n\t" TR_ADD_OPERANDS);
#undef TR_ADD_OPERANDS
#undef TR_ADD_ONE
        return;
    }
    if (lo == -128 && hi == 127) {
        if (rqo->right != 0) {
            for (int32_t i = 0; i < n; ++i) {
                out[i] = (int8_t)__ssat(tr_rq_rn(rqo, ta[u1[i]] + tb[u2[i]]) + offset, 8);
            }
        } else {
            for (int32_t i = 0; i < n; ++i) {
                out[i] = (int8_t)__ssat(tr_rq_r0(rqo, ta[u1[i]] + tb[u2[i]]) + offset, 8);
            }
        }
        return;
    }
#endif
    for (int32_t i = 0; i < n; ++i) {
        out[i] = tr_add_out(rqo, ta[u1[i]] + tb[u2[i]], offset, lo, hi);
    }
}

tr_nn_status tr_add_s8(const tr_nn_add_params *add_params, const tr_nn_dims *dims,
                       const int8_t *input_1_data, const int8_t *input_2_data, int8_t *output_data)
{
    const int32_t n = dims->n * dims->h * dims->w * dims->c;
    if (n < 0 || add_params->left_shift < 0 || add_params->left_shift > 31) {
        return TR_NN_ARG_ERROR;
    }
    const tr_rq rq1 = tr_rq_prepare(add_params->input_1_mult, add_params->input_1_shift, NULL, 0);
    const tr_rq rq2 = tr_rq_prepare(add_params->input_2_mult, add_params->input_2_shift, NULL, 0);
    const tr_rq rqo = tr_rq_prepare(add_params->output_mult, add_params->output_shift, NULL, 0);
    if (n >= TR_ADD_TABLE_MIN) {
        tr_add_tables(add_params, n, input_1_data, input_2_data, output_data, &rq1, &rq2, &rqo);
        return TR_NN_SUCCESS;
    }
    for (int32_t i = 0; i < n; ++i) {
        const int32_t a = tr_add_input(input_1_data[i] + add_params->input_1_offset, add_params->left_shift, &rq1);
        const int32_t b = tr_add_input(input_2_data[i] + add_params->input_2_offset, add_params->left_shift, &rq2);
        output_data[i] = tr_add_out(&rqo, a + b, add_params->output_offset, add_params->activation.min,
                                    add_params->activation.max);
    }
    return TR_NN_SUCCESS;
}
