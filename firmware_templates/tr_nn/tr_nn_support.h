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

/* Final output stage shared by every MAC kernel. */
static inline int8_t tr_output_stage(int32_t acc, int32_t mult, int32_t shift, int32_t offset,
                                     const tr_nn_activation *act)
{
    return (int8_t)tr_clamp(tr_requantize_inline(acc, mult, shift) + offset, act->min, act->max);
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

/* t2: byte -> {(w0, w1), (w2, w3)} as int16 pairs; 8-byte aligned so one LDRD fetches an entry. */
extern const uint32_t tr_t2_pair_lut[256][2] __attribute__((aligned(8)));
/* trit5 byte at an even position in its word -> {(w0, w1), (w2, w3), (w4, 0)}. */
extern const uint32_t tr_t5_even_lut[243][3];
/* trit5 byte at an odd position in its word -> {(0, w0), (w1, w2), (w3, w4)}. */
extern const uint32_t tr_t5_odd_lut[243][3];

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

#if TR_NN_USE_DSP
static inline uint32_t tr_ror(uint32_t x, uint32_t n)
{
    return (x >> n) | (x << (32u - n));
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

/* Dot product of an int16 column (length nwords * 20) with one trit5 row. */
static inline int32_t tr_dot_t5_dsp(const int16_t *col, const uint8_t *row, int32_t nwords, int32_t acc)
{
    for (int32_t w = 0; w < nwords; ++w) {
        for (int32_t half = 0; half < 2; ++half) {
            const uint32_t *a = tr_t5_even_lut[row[0]];
            const uint32_t *b = tr_t5_odd_lut[row[1]];
            row += 2;
            acc = __smlad((int32_t)tr_load_u32(col), (int32_t)a[0], acc);
            acc = __smlad((int32_t)tr_load_u32(col + 2), (int32_t)a[1], acc);
            acc = __smlad((int32_t)tr_load_u32(col + 4), (int32_t)(a[2] | b[0]), acc);
            acc = __smlad((int32_t)tr_load_u32(col + 6), (int32_t)b[1], acc);
            acc = __smlad((int32_t)tr_load_u32(col + 8), (int32_t)b[2], acc);
            col += 10;
        }
    }
    return acc;
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
/* ---- four-column kernels for convolution ----
 * Four output pixels share every weight decode. Their int16 im2col columns are interleaved in
 * blocks of B values (B = 4 for t2 / s8, 10 for trit5: one code byte, one pair of trit5 bytes):
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

static inline void tr_dot4_t2_dsp(const int16_t *blk_in, const uint8_t *row, int32_t nwords, int32_t acc[4])
{
    const int16_t *blk = (const int16_t *)__builtin_assume_aligned(blk_in, 8); /* lets loads pair into LDRD */
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
#define TR_T2_BYTE4(n)                                                                  \
    do {                                                                                \
        const uint64_t e = tr_load_u64(tr_t2_pair_lut[(codes >> (8u * (n))) & 0xFFu]); \
        const int32_t w01 = (int32_t)(uint32_t)e;                                       \
        const int32_t w23 = (int32_t)(uint32_t)(e >> 32);                               \
        const int16_t *x = blk + 16 * (n);                                              \
        const uint64_t x0 = tr_load_u64(x + 0);                                         \
        const uint64_t x1 = tr_load_u64(x + 4);                                         \
        const uint64_t x2 = tr_load_u64(x + 8);                                         \
        const uint64_t x3 = tr_load_u64(x + 12);                                        \
        a0 = __smlad((int32_t)(uint32_t)x0, w01, a0);                                   \
        a0 = __smlad((int32_t)(uint32_t)(x0 >> 32), w23, a0);                           \
        a1 = __smlad((int32_t)(uint32_t)x1, w01, a1);                                   \
        a1 = __smlad((int32_t)(uint32_t)(x1 >> 32), w23, a1);                           \
        a2 = __smlad((int32_t)(uint32_t)x2, w01, a2);                                   \
        a2 = __smlad((int32_t)(uint32_t)(x2 >> 32), w23, a2);                           \
        a3 = __smlad((int32_t)(uint32_t)x3, w01, a3);                                   \
        a3 = __smlad((int32_t)(uint32_t)(x3 >> 32), w23, a3);                           \
    } while (0)
    for (int32_t w = 0; w < nwords; ++w) {
        const uint32_t codes = tr_load_u32(row);
        row += 4;
        TR_T2_BYTE4(0);
        TR_T2_BYTE4(1);
        TR_T2_BYTE4(2);
        TR_T2_BYTE4(3);
        blk += 64;
    }
#undef TR_T2_BYTE4
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

static inline void tr_dot4_t5_dsp(const int16_t *blk_in, const uint8_t *row, int32_t nwords, int32_t acc[4])
{
    const int16_t *blk = (const int16_t *)__builtin_assume_aligned(blk_in, 8);
    for (int32_t h = 0; h < 2 * nwords; ++h) {
        const uint32_t *ev = tr_t5_even_lut[row[0]];
        const uint32_t *od = tr_t5_odd_lut[row[1]];
        row += 2;
        const int32_t w0 = (int32_t)ev[0];
        const int32_t w1 = (int32_t)ev[1];
        const int32_t w2 = (int32_t)(ev[2] | od[0]);
        const int32_t w3 = (int32_t)od[1];
        const int32_t w4 = (int32_t)od[2];
        for (int32_t p = 0; p < 4; ++p) {
            const int16_t *x = blk + 10 * p;
            int32_t a = acc[p];
            a = __smlad((int32_t)tr_load_u32(x + 0), w0, a);
            a = __smlad((int32_t)tr_load_u32(x + 2), w1, a);
            a = __smlad((int32_t)tr_load_u32(x + 4), w2, a);
            a = __smlad((int32_t)tr_load_u32(x + 6), w3, a);
            a = __smlad((int32_t)tr_load_u32(x + 8), w4, a);
            acc[p] = a;
        }
        blk += 40;
    }
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
#endif /* TR_NN_USE_DSP */

#endif /* TR_NN_SUPPORT_H */
