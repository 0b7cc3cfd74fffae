/*
 * tr_nn_support.h - internal helpers shared by the tr_nn kernels (not part of the public API).
 *
 * - tr_requantize_inline(): the static inline body of tr_requantize (tr_nn.h declares the external
 *   function, so the inline copy needs its own name; tr_requantize.c forwards to it);
 * - weight decoders for the three packed formats (see tr_nn_types.h for the layouts);
 * - decode tables for the DSP paths: each table word holds two int16 weights (low half first)
 *   ready for __smlad against two int16 activations.
 *
 * All arithmetic is integer; shifts of negative values rely on arithmetic right shift, which
 * GCC and Clang guarantee (implementation-defined in ISO C).
 */
#ifndef TR_NN_SUPPORT_H
#define TR_NN_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "tr_nn.h"

#if defined(__ARM_FEATURE_DSP) && !defined(TR_NN_FORCE_REFERENCE)
#include <arm_acle.h>
#define TR_NN_USE_DSP 1
#else
#define TR_NN_USE_DSP 0
#endif

/* ---------------- fixed-point arithmetic ---------------- */

/* (a * b + 2^30) >> 31 in 64 bits; fits int32 whenever b != INT32_MIN (multipliers are >= 0). */
static inline int32_t tr_doubling_high_mult(int32_t a, int32_t b)
{
    const int64_t prod = (int64_t)a * (int64_t)b + ((int64_t)1 << 30);
    return (int32_t)(prod >> 31);
}

/* Rounding right shift by exponent in [0, 31], ties away from zero. */
static inline int32_t tr_rounding_divide_by_pow2(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << (uint32_t)exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t result = x >> exponent;
    const int32_t threshold = (mask >> 1) + (result < 0 ? 1 : 0);
    return result + (remainder > threshold ? 1 : 0);
}

/* arm_nn_requantize semantics: shift > 0 is a left shift applied before the multiply
 * (the lowering guarantees it does not overflow; done in uint32 to keep C defined). */
static inline int32_t tr_requantize_inline(int32_t val, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)val << (uint32_t)left);
    return tr_rounding_divide_by_pow2(tr_doubling_high_mult(shifted, multiplier), right);
}

static inline int32_t tr_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}


/* tr_output_stage(tr_add_bias(...)) split in two for kernels that requantise many outputs of one
 * channel: tr_rq_prepare does the per-channel part (bias, shift split, rounding constants) once, and
 * tr_rq_requantize / tr_rq_apply the per-output part; the result is exactly tr_requantize_inline's.
 *
 * DSP path (about 5 instructions instead of ~20), derived from arm_nn_requantize's definition:
 *  - right == 0: x = (a * m + 2^30) >> 31 with a = acc << left: SMULL, then LSRS (carry = bit 30 of
 *    the low word) and ADC of the high word shifted left by one;
 *  - right = r >= 1 (then left == 0): the rounding shift of x, ties away from zero, is
 *    (x + 2^(r-1) - [x < 0]) >> r, and with x = floor((a*m + 2^30) / 2^31) nested floors merge into
 *    one: result = floor(P / 2^(31+r)) with P = a*m + 2^30 + 2^(30+r) - [x < 0] * 2^31, a 64-bit
 *    value whose high word shifted right by r - 1 is the result (no intermediate can overflow).
 *    [x < 0] may be replaced by [a < 0] (m >= 0): they differ only when x = 0, where both give 0.
 *    So: AND (sign bit of a), ADDS / ADC (the constant minus the sign term), SMLAL, ASR. */
typedef struct {
    int32_t mult;
    int32_t left;  /* left shift before the multiply (shift > 0) */
    int32_t right; /* rounding right shift after it (shift < 0) */
    int32_t mask;  /* (1 << right) - 1 */
    int32_t half;  /* mask >> 1: the rounding threshold of a non-negative result */
    int32_t bias;
    uint32_t clo;  /* low / high word of 2^30 + 2^(30 + right) (right >= 1) */
    int32_t chi;
    int32_t rm1;   /* right - 1 */
} tr_rq;

static inline tr_rq tr_rq_prepare(int32_t mult, int32_t shift, const int32_t *bias, int32_t o)
{
    tr_rq rq;
    rq.mult = mult;
    rq.left = shift > 0 ? shift : 0;
    rq.right = shift > 0 ? 0 : -shift;
    rq.mask = (int32_t)((1u << (uint32_t)rq.right) - 1u);
    rq.half = rq.mask >> 1;
    rq.bias = bias != NULL ? bias[o] : 0;
    /* 2^30 + 2^(30 + right): right == 1 adds 2^31 to the low word, right >= 2 puts 2^(right - 2) in the high word */
    rq.clo = rq.right == 1 ? 0xC0000000u : 0x40000000u;
    rq.chi = rq.right >= 2 ? (int32_t)(1u << (uint32_t)(rq.right - 2)) : 0;
    rq.rm1 = rq.right > 0 ? rq.right - 1 : 0;
    return rq;
}

#if TR_NN_USE_DSP
/* requantize(acc) for right == 0 (see above). */
static inline int32_t tr_rq_r0(const tr_rq *rq, int32_t acc)
{
    const int32_t a = (int32_t)((uint32_t)acc << (uint32_t)rq->left);
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

/* requantize(acc) for right >= 1 (see above). */
static inline int32_t tr_rq_rn(const tr_rq *rq, int32_t acc)
{
    uint32_t lo;
    int32_t hi;
    uint32_t t;
    __asm__("and    %[t], %[a], #0x80000000\n\t"
            "adds   %[lo], %[clo], %[t]\n\t"
            "adc    %[hi], %[chi], %[t], asr #31\n\t"
            "smlal  %[lo], %[hi], %[a], %[m]"
            : [lo] "=&r"(lo), [hi] "=&r"(hi), [t] "=&r"(t)
            : [a] "r"(acc), [m] "r"(rq->mult), [clo] "r"(rq->clo), [chi] "r"(rq->chi)
            : "cc");
    return hi >> rq->rm1;
}
#endif

/* requantize(acc, mult, shift) with rq prepared from (mult, shift). */
static inline int32_t tr_rq_requantize(const tr_rq *rq, int32_t acc)
{
#if TR_NN_USE_DSP
    return rq->right == 0 ? tr_rq_r0(rq, acc) : tr_rq_rn(rq, acc);
#else
    const int32_t x = tr_doubling_high_mult((int32_t)((uint32_t)acc << (uint32_t)rq->left), rq->mult);
    const int32_t res = x >> rq->right;
    const int32_t threshold = rq->half + (int32_t)((uint32_t)res >> 31); /* +1 when res < 0 */
    return res + ((x & rq->mask) > threshold ? 1 : 0);
#endif
}

static inline int8_t tr_rq_apply(const tr_rq *rq, int32_t sum, int32_t bias_scale, int32_t offset, int32_t lo,
                                 int32_t hi)
{
    return (int8_t)tr_clamp(tr_rq_requantize(rq, sum * bias_scale + rq->bias) + offset, lo, hi);
}

/* Final output stage shared by every MAC kernel. */
static inline int8_t tr_output_stage(int32_t acc, int32_t mult, int32_t shift, int32_t offset,
                                     const tr_nn_activation *act)
{
#if TR_NN_USE_DSP
    const tr_rq rq = tr_rq_prepare(mult, shift, NULL, 0);
    return (int8_t)tr_clamp(tr_rq_requantize(&rq, acc) + offset, act->min, act->max);
#else
    return (int8_t)tr_clamp(tr_requantize_inline(acc, mult, shift) + offset, act->min, act->max);
#endif
}

/* The same output stage for int16 outputs (the _s16 kernels): the clamp range is within int16. */
static inline int16_t tr_output_stage_s16(int32_t acc, int32_t mult, int32_t shift, int32_t offset,
                                          const tr_nn_activation *act)
{
#if TR_NN_USE_DSP
    const tr_rq rq = tr_rq_prepare(mult, shift, NULL, 0);
    return (int16_t)tr_clamp(tr_rq_requantize(&rq, acc) + offset, act->min, act->max);
#else
    return (int16_t)tr_clamp(tr_requantize_inline(acc, mult, shift) + offset, act->min, act->max);
#endif
}

/* Largest bias_shift the weighted kernels accept (see tr_nn_conv_params in tr_nn_types.h). */
#define TR_NN_MAX_BIAS_SHIFT 16

/* The accumulator of output channel o: sum * 2^bias_shift + bias[o] (a NULL bias reads 0), with
 * bias_scale = 1 << bias_shift. A multiply, not a left shift: shifting a negative int left is
 * undefined in C. The caller guarantees the int32 result cannot overflow. Applied once per output,
 * never per MAC, so the inner loops are unchanged. */
static inline int32_t tr_add_bias(int32_t sum, int32_t bias_scale, const int32_t *bias, int32_t o)
{
    return sum * bias_scale + (bias != NULL ? bias[o] : 0);
}

/* ---------------- packed row sizes (bytes; every row is whole 32-bit words) ---------------- */

static inline int32_t tr_row_bytes_t2(int32_t k) { return ((k + 15) / 16) * 4; }
static inline int32_t tr_row_bytes_t5(int32_t k) { return ((k + 19) / 20) * 4; }
static inline int32_t tr_row_bytes_s8(int32_t k) { return ((k + 3) / 4) * 4; }

/* ---------------- scalar weight decoders (reference paths) ---------------- */

/* t2r16-v1: 2 bits per trit, lowest bits first; 01 -> +1, 11 -> -1, 00 -> 0 (10 never emitted,
 * decoded as 0). */
static inline int32_t tr_t2_weight(const uint8_t *row, int32_t k)
{
    const uint32_t code = ((uint32_t)row[k >> 2] >> (((uint32_t)k & 3u) * 2u)) & 3u;
    return code == 1u ? 1 : (code == 3u ? -1 : 0);
}

/* trit5r20-v1: byte j holds trits 5j..5j+4 as base-3 digits (digit = trit + 1), lowest first. */
static inline int32_t tr_t5_weight(const uint8_t *row, int32_t k)
{
    static const uint8_t pow3[5] = {1u, 3u, 9u, 27u, 81u};
    const uint32_t byte = row[k / 5];
    return (int32_t)((byte / pow3[k % 5]) % 3u) - 1;
}

static inline int32_t tr_s8_weight(const uint8_t *row, int32_t k)
{
    return (int32_t)(int8_t)row[k];
}

/* ---------------- DSP decode tables (tr_nn_luts.c) ---------------- */

/* Hot tables go to .tr_fast_data.<name>: the linker scripts place .tr_fast_data* in fast RAM (DTCM on
 * the NUCLEO: t2 table 2 KB, trit5 table 7.6 KB), one subsection per table so --gc-sections drops the
 * tables a firmware does not use. -DTR_NN_LUTS_IN_FLASH keeps them in .rodata instead. */
#if defined(__ELF__) && !defined(TR_NN_LUTS_IN_FLASH)
#define TR_NN_FAST_DATA(name) __attribute__((section(".tr_fast_data." name)))
#else
#define TR_NN_FAST_DATA(name)
#endif

/* t2: byte -> {(w0, w1), (w2, w3)} as int16 pairs; 8-byte aligned so one LDRD fetches an entry. */
extern const uint32_t tr_t2_pair_lut[256][2] __attribute__((aligned(8)));
/* trit5, 16-byte entries (one shift indexes them), [0] = even, [1] = odd:
 * [0][b]: byte at an even position in its word -> {(w0, w1), (w2, w3), (w4, 0), 0};
 * [1][b]: byte at an odd position in its word -> {(0, w0), (w1, w2), (w3, w4), 0}. */
extern const uint32_t tr_t5_lut[2][243][4] __attribute__((aligned(16)));
#define TR_T5_ODD_OFFSET (243 * 16) /* bytes from tr_t5_lut[0][b] to tr_t5_lut[1][b] */

static inline uint32_t tr_load_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v); /* one LDR on Cortex-M7 (unaligned access allowed) */
    return v;
}

/* 8-byte load of two pairs; with an 8-byte aligned pointer this is a single LDRD. */
static inline uint64_t tr_load_u64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void tr_store_u32(void *p, uint32_t v)
{
    memcpy(p, &v, sizeof v);
}

/* Weight formats, for code shared between the _t2/_t5/_s8 variants (a compile-time constant at
 * every call site, so each variant is specialised). */
enum { TR_FMT_T2 = 0, TR_FMT_T5 = 1, TR_FMT_S8 = 2 };

static inline int32_t tr_weight_of(int32_t fmt, const uint8_t *row, int32_t k)
{
    return fmt == TR_FMT_T2 ? tr_t2_weight(row, k) : (fmt == TR_FMT_T5 ? tr_t5_weight(row, k) : tr_s8_weight(row, k));
}

static inline int32_t tr_row_bytes_of(int32_t fmt, int32_t k)
{
    return fmt == TR_FMT_T2 ? tr_row_bytes_t2(k) : (fmt == TR_FMT_T5 ? tr_row_bytes_t5(k) : tr_row_bytes_s8(k));
}

#if TR_NN_USE_DSP
static inline uint32_t tr_ror(uint32_t x, uint32_t n)
{
    return (x >> n) | (x << (32u - n));
}

/* Single instructions GCC does not form from the C idioms (it emits MOV ROR + SXTB16, and
 * UXTH + ORR instead of PKHBT). */
static inline uint32_t tr_sxtb16_ror8(uint32_t x) /* (x1, x3) sign-extended to int16 */
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline uint32_t tr_pack_lo(uint32_t a, uint32_t b) /* (a.lo, b.lo) */
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}


/* Sign-extend n int8 values to int16 and zero-fill up to n_padded (a multiple of 4).
 * permuted != 0 stores each group of four as x0, x2, x1, x3: the order tr_dot_s8_dsp wants,
 * so that SXTB16 on the weights needs no repacking. */
static inline void tr_expand_s8_to_s16(const int8_t *src, int16_t *dst, int32_t n, int32_t n_padded,
                                       int32_t permuted)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t w = tr_load_u32(src + i);
        const uint32_t even = (uint32_t)__sxtb16(w);            /* (x0, x2) */
        const uint32_t odd = (uint32_t)__sxtb16(tr_ror(w, 8u)); /* (x1, x3) */
        if (permuted) {
            tr_store_u32(dst + i, even);
            tr_store_u32(dst + i + 2, odd);
        } else {
            tr_store_u32(dst + i, (even & 0xFFFFu) | (odd << 16));         /* (x0, x1) */
            tr_store_u32(dst + i + 2, (even >> 16) | (odd & 0xFFFF0000u)); /* (x2, x3) */
        }
    }
    for (int32_t j = i; j < n_padded; ++j) {
        dst[j] = 0;
    }
    for (; i < n; ++i) {
        static const uint8_t perm[4] = {0u, 2u, 1u, 3u};
        const int32_t pos = permuted ? ((i & ~3) | perm[i & 3]) : i;
        dst[pos] = src[i];
    }
}

/* Dot product of an int16 column (length nwords * 16) with one t2 row. */
static inline int32_t tr_dot_t2_dsp(const int16_t *col, const uint8_t *row, int32_t nwords, int32_t acc)
{
#define TR_T2_BYTE1(n)                                                                   \
    do {                                                                                 \
        const uint32_t *e = tr_t2_pair_lut[(codes >> (8u * (n))) & 0xFFu];              \
        acc = __smlad((int32_t)tr_load_u32(col + 4 * (n)), (int32_t)e[0], acc);          \
        acc = __smlad((int32_t)tr_load_u32(col + 4 * (n) + 2), (int32_t)e[1], acc);      \
    } while (0)
    for (int32_t w = 0; w < nwords; ++w) {
        const uint32_t codes = tr_load_u32(row);
        row += 4;
        TR_T2_BYTE1(0);
        TR_T2_BYTE1(1);
        TR_T2_BYTE1(2);
        TR_T2_BYTE1(3);
        col += 16;
    }
#undef TR_T2_BYTE1
    return acc;
}

/* Two t2 rows (row and row + row_bytes) against one int16 column (nwords >= 1 code words): the
 * activations are loaded once for both rows. Hand-scheduled Thumb-2, per code byte (4 weights x 2
 * rows = 8 MACs): one LDRD of four activations, then per row LDRB + ADD + LDRD (decode) and two
 * SMLAD: 11 instructions per 8 MACs. */
static inline void tr_dot2_t2_dsp(const int16_t *col, const uint8_t *row, int32_t row_bytes, int32_t nwords,
                                  int32_t *acc_a, int32_t *acc_b)
{
    const uint8_t *const row_end = row + 4 * nwords;
    const uint32_t *const lut = &tr_t2_pair_lut[0][0];
    int32_t a = *acc_a;
    int32_t b = *acc_b;
    uint32_t e;
    uint32_t w01;
    uint32_t w23;
    uint32_t x01;
    uint32_t x23;
#define TR_T2_ASM_ROW2                                 \
    "ldrd   %[x01], %[x23], [%[col]], #8\n\t"          \
    "ldrb   %[e], [%[row], %[rb]]\n\t"                 \
    "add    %[e], %[lut], %[e], lsl #3\n\t"            \
    "ldrd   %[w01], %[w23], [%[e]]\n\t"                \
    "smlad  %[b], %[x01], %[w01], %[b]\n\t"            \
    "smlad  %[b], %[x23], %[w23], %[b]\n\t"            \
    "ldrb   %[e], [%[row]], #1\n\t"                    \
    "add    %[e], %[lut], %[e], lsl #3\n\t"            \
    "ldrd   %[w01], %[w23], [%[e]]\n\t"                \
    "smlad  %[a], %[x01], %[w01], %[a]\n\t"            \
    "smlad  %[a], %[x23], %[w23], %[a]\n\t"
    __asm__ volatile(
        "1:\n\t"
        TR_T2_ASM_ROW2
        TR_T2_ASM_ROW2
        TR_T2_ASM_ROW2
        TR_T2_ASM_ROW2
        "cmp    %[row], %[row_end]\n\t"
        "bne    1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [col] "+r"(col), [row] "+r"(row), [e] "=&r"(e), [w01] "=&r"(w01),
          [w23] "=&r"(w23), [x01] "=&r"(x01), [x23] "=&r"(x23)
        : [row_end] "r"(row_end), [lut] "r"(lut), [rb] "r"(row_bytes)
        : "cc", "memory");
#undef TR_T2_ASM_ROW2
    *acc_a = a;
    *acc_b = b;
}

/* Dot product of an int16 column in s8 order (each group of 4 stored as x0, x2, x1, x3) with
 * one s8 row (nwords * 4 weights). */
static inline int32_t tr_dot_s8_dsp(const int16_t *col, const uint8_t *row, int32_t nwords, int32_t acc)
{
    for (int32_t w = 0; w < nwords; ++w) {
        const uint32_t wt = tr_load_u32(row);
        row += 4;
        acc = __smlad((int32_t)tr_load_u32(col), __sxtb16(wt), acc);                 /* w0, w2 */
        acc = __smlad((int32_t)tr_load_u32(col + 2), __sxtb16(tr_ror(wt, 8u)), acc); /* w1, w3 */
        col += 4;
    }
    return acc;
}
/* ---- four-column kernels for the s8 convolution (t2 / trit5: tr_conv_pairs.h) ----
 * Four output pixels share every weight decode. Their int16 im2col columns are interleaved in
 * blocks of B = 4 values (one word of s8 weights):
 * block i = [pixel 0: B values][pixel 1: B values][pixel 2][pixel 3], so one pointer with
 * constant offsets reaches all four pixels and the loads pair up into LDRD. */

/* Copy one pixel's natural-order column (k_pad values) into its slot of the blocked layout. */
static inline void tr_interleave_column(const int16_t *col, int16_t *blocks, int32_t pixel, int32_t k_pad,
                                        int32_t block)
{
    int16_t *dst = blocks + pixel * block;
    for (int32_t i = 0; i < k_pad; i += block) {
        memcpy(dst, col + i, (size_t)block * sizeof(int16_t));
        dst += 4 * block;
    }
}

/* Decode of one trit5 byte pair (10 weights) into five int16 pairs w0..w4, for the fully connected
 * kernel below (tr_dot_t5_asm): LDRB + ADD + LDRD + LDR for the even byte, LDRB + ADD + three LDR + ORR for the odd one (its
 * entries sit TR_T5_ODD_OFFSET = 3888 bytes further in tr_t5_lut; the even entry's third pair holds
 * w4 low, the odd entry's first pair w5 high, so one ORR joins them). */
#define TR_T5_ASM_DECODE                               \
    "ldrb   %[e], [%[row]], #1\n\t"                    \
    "add    %[e], %[lut], %[e], lsl #4\n\t"            \
    "ldrd   %[w0], %[w1], [%[e]]\n\t"                  \
    "ldr    %[w2], [%[e], #8]\n\t"                     \
    "ldrb   %[e], [%[row]], #1\n\t"                    \
    "add    %[e], %[lut], %[e], lsl #4\n\t"            \
    "ldr    %[w4], [%[e], #3888]\n\t"                  \
    "orr    %[w2], %[w2], %[w4]\n\t"                   \
    "ldr    %[w3], [%[e], #3892]\n\t"                  \
    "ldr    %[w4], [%[e], #3896]\n\t"

/* One trit5 row (its first npairs >= 1 byte pairs) against a natural-order int16 column: 20
 * instructions per 10 MACs (10 decode, two LDRD + one LDR, five SMLAD, loop). */
static inline int32_t tr_dot_t5_asm(const int16_t *col, const uint8_t *row, int32_t npairs, int32_t acc)
{
    const uint8_t *const row_end = row + 2 * npairs;
    const uint32_t *const lut = &tr_t5_lut[0][0][0];
    uint32_t e, w0, w1, w2, w3, w4, xa, xb;
    __asm__ volatile(
        "1:\n\t"
        TR_T5_ASM_DECODE
        "ldrd   %[xa], %[xb], [%[col]], #8\n\t"
        "smlad  %[acc], %[xa], %[w0], %[acc]\n\t"
        "smlad  %[acc], %[xb], %[w1], %[acc]\n\t"
        "ldrd   %[xa], %[xb], [%[col]], #8\n\t"
        "smlad  %[acc], %[xa], %[w2], %[acc]\n\t"
        "smlad  %[acc], %[xb], %[w3], %[acc]\n\t"
        "ldr    %[xa], [%[col]], #4\n\t"
        "smlad  %[acc], %[xa], %[w4], %[acc]\n\t"
        "cmp    %[row], %[row_end]\n\t"
        "bne    1b\n\t"
        : [acc] "+r"(acc), [col] "+r"(col), [row] "+r"(row), [e] "=&r"(e), [w0] "=&r"(w0), [w1] "=&r"(w1),
          [w2] "=&r"(w2), [w3] "=&r"(w3), [w4] "=&r"(w4), [xa] "=&r"(xa), [xb] "=&r"(xb)
        : [row_end] "r"(row_end), [lut] "r"(lut)
        : "cc", "memory");
    return acc;
}

static inline void tr_dot4_s8_dsp(const int16_t *blk_in, const uint8_t *row, int32_t nwords, int32_t acc[4])
{
    const int16_t *blk = (const int16_t *)__builtin_assume_aligned(blk_in, 8);
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    for (int32_t w = 0; w < nwords; ++w) {
        const uint32_t wt = tr_load_u32(row);
        row += 4;
        const int32_t w02 = __sxtb16(wt);
        const int32_t w13 = __sxtb16(tr_ror(wt, 8u));
        a0 = __smlad((int32_t)tr_load_u32(blk + 0), w02, a0);
        a0 = __smlad((int32_t)tr_load_u32(blk + 2), w13, a0);
        a1 = __smlad((int32_t)tr_load_u32(blk + 4), w02, a1);
        a1 = __smlad((int32_t)tr_load_u32(blk + 6), w13, a1);
        a2 = __smlad((int32_t)tr_load_u32(blk + 8), w02, a2);
        a2 = __smlad((int32_t)tr_load_u32(blk + 10), w13, a2);
        a3 = __smlad((int32_t)tr_load_u32(blk + 12), w02, a3);
        a3 = __smlad((int32_t)tr_load_u32(blk + 14), w13, a3);
        blk += 16;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* ---- depthwise fast path (ch_mult == 1, at most TR_DW_MAX_TAPS taps) ----
 * A block of up to TR_DW_BLOCK channels has its weights decoded once (on the stack), scaled by
 * 2^bias_shift, into int16 pairs in SXTB16 order: per tap and group of four channels, (w0, w2) and
 * (w1, w3). Every output pixel then reads four channels of a tap with one LDR (at a byte offset from the
 * pixel's window corner, a padded tap pointing into a pad_value block), widens them with two SXTB16
 * into (x0, x2), (x1, x3) and does four single MACs (SMLABB / SMLATT) into four accumulators that start
 * at the bias: 9 instructions per 4 MACs (LDR offset, LDR, LDRD weights, 2 SXTB16, 4 MACs; 9 taps
 * unrolled). The caller guarantees |w| * 2^bias_shift < 2^15. */
#define TR_DW_BLOCK 16
#define TR_DW_MAX_TAPS 16

static inline uint32_t tr_pair16(int32_t lo, int32_t hi)
{
    return (uint32_t)(uint16_t)(int16_t)lo | ((uint32_t)(uint16_t)(int16_t)hi << 16);
}

#define TR_DW_TAP                                      \
    "ldr    %[x], [%[off]], #4\n\t"                   \
    "ldr    %[x], [%[base], %[x]]\n\t"                \
    "ldrd   %[w02], %[w13], [%[wq]], #32\n\t"         \
    "sxtb16 %[e], %[x]\n\t"                           \
    "sxtb16 %[x], %[x], ror #8\n\t"                   \
    "smlabb %[a0], %[e], %[w02], %[a0]\n\t"           \
    "smlatt %[a2], %[e], %[w02], %[a2]\n\t"           \
    "smlabb %[a1], %[x], %[w13], %[a1]\n\t"           \
    "smlatt %[a3], %[x], %[w13], %[a3]\n\t"

/* acc[0..3] += the four channels at base over `taps` taps: tap t reads the word at base + off[t]
 * against the weight pairs at wq + 8 t words (TR_DW_BLOCK / 2 words per tap). */
__attribute__((always_inline)) static inline void tr_dw_group(const uint8_t *base, const int32_t *off,
                                                              const uint32_t *wq, int32_t taps, int32_t acc[4])
{
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    uint32_t x, e, w02, w13;
    if (taps == 9) {
        __asm__ volatile(TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP TR_DW_TAP
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "=&r"(x), [e] "=&r"(e),
                           [w02] "=&r"(w02), [w13] "=&r"(w13), [off] "+r"(off), [wq] "+r"(wq)
                         : [base] "r"(base)
                         : "memory");
    } else {
        const int32_t *const end = off + taps;
        __asm__ volatile("1:\n\t" TR_DW_TAP
                         "cmp    %[off], %[end]\n\t"
                         "bne    1b\n\t"
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "=&r"(x), [e] "=&r"(e),
                           [w02] "=&r"(w02), [w13] "=&r"(w13), [off] "+r"(off), [wq] "+r"(wq)
                         : [base] "r"(base), [end] "r"(end)
                         : "cc", "memory");
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef TR_DW_TAP

/* The output stage of one channel of the block: fast (output range the whole int8 range, right >= 2)
 * folds the output offset into the rounding constant's high word, as tr_p3_out_prepare does:
 * AND, ADDS, ADC, SMLAL, ASR, SSAT per output. */
typedef struct {
    int32_t chi; /* 2^(right - 2) + offset * 2^(right - 1) */
    int32_t mult;
    int32_t rm1;
    int32_t bias;
    tr_rq rq;
} tr_dw_out;

static inline int8_t tr_dw_requant_fast(const tr_dw_out *d, int32_t a)
{
    uint32_t t, lo;
    int32_t hi;
    __asm__("and    %[t], %[a], #0x80000000\n\t"
            "adds   %[lo], %[t], #0x40000000\n\t"
            "adc    %[hi], %[chi], %[t], asr #31\n\t"
            "smlal  %[lo], %[hi], %[a], %[m]"
            : [t] "=&r"(t), [lo] "=&r"(lo), [hi] "=&r"(hi)
            : [a] "r"(a), [chi] "r"(d->chi), [m] "r"(d->mult)
            : "cc");
    return (int8_t)__ssat(hi >> d->rm1, 8);
}

/* Output channels [c0, c0 + nc) of a ch_mult == 1 depthwise convolution; nc a multiple of 4, <= 16;
 * |w| * 2^bias_shift < 2^15. */
static inline void tr_dw_dsp_block(int32_t fmt, const tr_nn_dw_conv_params *p,
                                   const tr_nn_per_channel_quant_params *q, const tr_nn_dims *input_dims,
                                   const int8_t *input, const tr_nn_dims *filter_dims, const uint8_t *filter,
                                   int32_t row_bytes, const int32_t *bias, const tr_nn_dims *output_dims,
                                   int8_t *output, int32_t c0, int32_t nc)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t taps = k_h * k_w;
    const int32_t scale = (int32_t)1 << p->bias_shift;
    uint32_t wq[TR_DW_MAX_TAPS][TR_DW_BLOCK / 2] __attribute__((aligned(8))); /* [tap][group * 2 + {0: (w0, w2), 1: (w1, w3)}] */
    int8_t pad[TR_DW_BLOCK];
    int32_t tap_y[TR_DW_MAX_TAPS];
    int32_t tap_x[TR_DW_MAX_TAPS];
    int32_t tap_off[TR_DW_MAX_TAPS]; /* byte offsets of the taps from the window corner, inside the input */
    int32_t edge_off[TR_DW_MAX_TAPS]; /* the same for a window that crosses the border */
    tr_dw_out d[TR_DW_BLOCK];
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    memset(pad, p->pad_value, sizeof pad);
    for (int32_t t = 0; t < taps; ++t) {
        tap_y[t] = t / k_w;
        tap_x[t] = t % k_w;
        tap_off[t] = (tap_y[t] * in_w + tap_x[t]) * ch;
        const uint8_t *row = filter + t * row_bytes;
        for (int32_t g = 0; g < nc; g += 4) {
            const int32_t o = c0 + g;
            wq[t][g / 2] = tr_pair16(tr_weight_of(fmt, row, o) * scale, tr_weight_of(fmt, row, o + 2) * scale);
            wq[t][g / 2 + 1] =
                tr_pair16(tr_weight_of(fmt, row, o + 1) * scale, tr_weight_of(fmt, row, o + 3) * scale);
        }
    }
    int32_t fast = lo == -128 && hi == 127;
    for (int32_t c = 0; c < nc; ++c) {
        d[c].rq = tr_rq_prepare(q->multiplier[c0 + c], q->shift[c0 + c], NULL, 0);
        d[c].bias = bias != NULL ? bias[c0 + c] : 0;
        d[c].mult = d[c].rq.mult;
        d[c].rm1 = d[c].rq.rm1;
        /* offset * 2^(right - 1) must fit the high word: right <= 23 (as in tr_p3_out_prepare) */
        fast = fast && d[c].rq.right >= 2 && d[c].rq.right <= 23;
        d[c].chi = d[c].rq.chi + (int32_t)((uint32_t)offset << (uint32_t)(d[c].rq.right > 0 ? d[c].rq.rm1 : 0));
    }
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
        const int32_t y0 = oy * p->stride.h - p->padding.h;
        for (int32_t ox = 0; ox < output_dims->w; ++ox) {
            const int32_t x0 = ox * p->stride.w - p->padding.w;
            /* the window corner's address, possibly outside the input: kept as an integer, the taps
             * add their offsets to it in the assembly */
            const uintptr_t base = (uintptr_t)input + (uintptr_t)(intptr_t)((y0 * in_w + x0) * ch + c0);
            const int32_t *off = tap_off;
            if (!(y0 >= 0 && y0 + k_h <= in_h && x0 >= 0 && x0 + k_w <= in_w)) {
                for (int32_t t = 0; t < taps; ++t) {
                    const int32_t iy = y0 + tap_y[t];
                    const int32_t ix = x0 + tap_x[t];
                    edge_off[t] = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                      ? tap_off[t]
                                      : (int32_t)((uintptr_t)pad - base); /* pad[g..g+3] for group g */
                }
                off = edge_off;
            }
            int8_t *out = output + (oy * output_dims->w + ox) * ch + c0;
            for (int32_t g = 0; g < nc; g += 4) {
                int32_t acc[4] = {d[g].bias, d[g + 1].bias, d[g + 2].bias, d[g + 3].bias};
                tr_dw_group((const uint8_t *)(base + (uintptr_t)g), off, &wq[0][g / 2], taps, acc);
                if (fast) {
                    out[g + 0] = tr_dw_requant_fast(&d[g + 0], acc[0]);
                    out[g + 1] = tr_dw_requant_fast(&d[g + 1], acc[1]);
                    out[g + 2] = tr_dw_requant_fast(&d[g + 2], acc[2]);
                    out[g + 3] = tr_dw_requant_fast(&d[g + 3], acc[3]);
                } else {
                    for (int32_t i = 0; i < 4; ++i) {
                        out[g + i] = (int8_t)tr_clamp(tr_rq_requantize(&d[g + i].rq, acc[i]) + offset, lo, hi);
                    }
                }
            }
        }
    }
}
#endif /* TR_NN_USE_DSP */

#endif /* TR_NN_SUPPORT_H */
