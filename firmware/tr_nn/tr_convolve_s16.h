/*
 * tr_convolve_s16.h - the body shared by tr_convolve_s16_{t2,t5,s8} (int16 activations in and out).
 *
 * The int16 im2col column of an output pixel (K values in [KH][KW][C_in] order, padded taps reading
 * pad_value, zero-filled up to the packed row length Kp) is gathered into the scratch, then every
 * output channel is one dot product of that column with its packed row:
 *  - plain C: one pixel at a time, tr_weight_of per tap over the K real taps;
 *  - DSP: four pixels at a time, their columns interleaved (tr_interleave_column) so that one weight
 *    decode feeds four SMLAD chains over the whole padded row (the zero-filled tail cancels whatever
 *    the padding codes decode to): t2 a table lookup per code byte (tr_conv_s16_dot4_t2, Thumb-2:
 *    ~0.97 instructions per MAC), trit5 per byte pair (tr_conv_s16_dot4_t5, ~1.15), s8 SXTB16 per
 *    word (tr_conv_s16_dot4_s8, ~0.97) on columns stored in SXTB16 order (each group of four as x0,
 *    x2, x1, x3); the requantisation constants of a channel are
 *    prepared once per four pixels (tr_rq_prepare, exactly tr_requantize's result).
 * then the output stage of tr_output_stage_s16(acc * 2^bias_shift + bias[o]). `fmt` is a compile-time
 * constant at each call site, so every variant gets its own specialised copy. Arguments were validated
 * by the caller; `scratch` is 8-byte aligned, 10 * Kp bytes (DSP: four interleaved columns and one
 * natural-order column; plain C uses the first 2 * Kp), the same on every build so that arena plans do
 * not depend on the path.
 *
 * Overflow: |x| <= 32768 and |w| <= 1 (ternary) or 128 (s8), so one product fits 2^22 and every
 * partial sum is bounded by sum |w| * 32768, which the lowering keeps (times 2^bias_shift, plus the
 * bias) below 2^31.
 */
#ifndef TR_CONVOLVE_S16_H
#define TR_CONVOLVE_S16_H

#include "tr_nn_support.h"

#if TR_NN_USE_DSP
/* Four pixels share every weight decode: their columns are interleaved in blocks of B values
 * (tr_interleave_column: block i = [pixel 0: B values][pixel 1][pixel 2][pixel 3]), B = the weights one
 * decode yields (t2: 4 per code byte, trit5: 10 per byte pair, s8: 4 per word). */

/* acc[j] += pixel j's column . one t2 row (nbytes >= 4 code bytes, whole words). Per code byte
 * (4 weights x 4 pixels = 16 MACs): LDRB + ADD + LDRD decode the two int16 weight pairs
 * (tr_t2_pair_lut), then per pixel one LDRD of its four activations and two SMLAD: 15 instructions,
 * plus 2 of loop control per code word. */
#define TR_S16_T2_PIXEL(acc, off)                      \
    "ldrd   %[x0], %[x1], [%[blk], #" #off "]\n\t"     \
    "smlad  %[" #acc "], %[x0], %[w01], %[" #acc "]\n\t" \
    "smlad  %[" #acc "], %[x1], %[w23], %[" #acc "]\n\t"
#define TR_S16_T2_BYTE                                 \
    "ldrb   %[e], [%[row]], #1\n\t"                    \
    "add    %[e], %[lut], %[e], lsl #3\n\t"            \
    "ldrd   %[w01], %[w23], [%[e]]\n\t"                \
    "ldrd   %[x0], %[x1], [%[blk]], #32\n\t"           \
    "smlad  %[a0], %[x0], %[w01], %[a0]\n\t"           \
    "smlad  %[a0], %[x1], %[w23], %[a0]\n\t"           \
    TR_S16_T2_PIXEL(a1, -24) TR_S16_T2_PIXEL(a2, -16) TR_S16_T2_PIXEL(a3, -8)
static inline void tr_conv_s16_dot4_t2(const int16_t *blk, const uint8_t *row, int32_t nbytes, int32_t acc[4])
{
    const uint8_t *const row_end = row + nbytes;
    const uint32_t *const lut = &tr_t2_pair_lut[0][0];
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    uint32_t e, w01, w23, x0, x1;
    __asm__ volatile(
        "1:\n\t"
        TR_S16_T2_BYTE TR_S16_T2_BYTE TR_S16_T2_BYTE TR_S16_T2_BYTE
        "cmp    %[row], %[row_end]\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [blk] "+r"(blk), [row] "+r"(row),
          [e] "=&r"(e), [w01] "=&r"(w01), [w23] "=&r"(w23), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [row_end] "r"(row_end), [lut] "r"(lut)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef TR_S16_T2_BYTE
#undef TR_S16_T2_PIXEL

/* acc[j] += pixel j's column . one trit5 row (npairs >= 1 byte pairs). Per byte pair (10 weights x 4
 * pixels = 40 MACs): TR_T5_ASM_DECODE (10 instructions: five int16 weight pairs from tr_t5_lut), then
 * per pixel (its 10 activations 20 bytes apart) LDRD, LDRD, LDR and five SMLAD, and 4 of loop control:
 * 46 instructions. All 14 registers are taken, so the end of the row is read from the stack. */
#define TR_S16_T5_PIXEL(acc, o0, o1, o2)                   \
    "ldrd   %[e], %[xb], [%[blk], #" #o0 "]\n\t"           \
    "smlad  %[" #acc "], %[e], %[w0], %[" #acc "]\n\t"     \
    "smlad  %[" #acc "], %[xb], %[w1], %[" #acc "]\n\t"    \
    "ldrd   %[e], %[xb], [%[blk], #" #o1 "]\n\t"           \
    "smlad  %[" #acc "], %[e], %[w2], %[" #acc "]\n\t"     \
    "smlad  %[" #acc "], %[xb], %[w3], %[" #acc "]\n\t"    \
    "ldr    %[e], [%[blk], #" #o2 "]\n\t"                  \
    "smlad  %[" #acc "], %[e], %[w4], %[" #acc "]\n\t"
static inline void tr_conv_s16_dot4_t5(const int16_t *blk, const uint8_t *row, int32_t npairs, int32_t acc[4])
{
    const uint8_t *const row_end = row + 2 * npairs;
    const uint32_t *const lut = &tr_t5_lut[0][0][0];
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    uint32_t e, w0, w1, w2, w3, w4, xb;
    __asm__ volatile(
        "1:\n\t"
        TR_T5_ASM_DECODE
        TR_S16_T5_PIXEL(a0, 0, 8, 16) TR_S16_T5_PIXEL(a1, 20, 28, 36)
        TR_S16_T5_PIXEL(a2, 40, 48, 56) TR_S16_T5_PIXEL(a3, 60, 68, 76)
        "add    %[blk], %[blk], #80\n\t"
        "ldr    %[e], %[row_end]\n\t"
        "cmp    %[row], %[e]\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [blk] "+r"(blk), [row] "+r"(row),
          [e] "=&r"(e), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [w4] "=&r"(w4),
          [xb] "=&r"(xb)
        : [row_end] "m"(row_end), [lut] "r"(lut)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef TR_S16_T5_PIXEL

/* acc[j] += pixel j's column (SXTB16 order) . one s8 row (nwords >= 1 words). Per word (4 weights x
 * 4 pixels = 16 MACs): LDR and two SXTB16 give (w0, w2), (w1, w3), then per pixel one LDRD and two
 * SMLAD: 15 instructions, plus 2 of loop control. */
#define TR_S16_S8_PIXEL(acc, off)                      \
    "ldrd   %[x0], %[x1], [%[blk], #" #off "]\n\t"     \
    "smlad  %[" #acc "], %[x0], %[w02], %[" #acc "]\n\t" \
    "smlad  %[" #acc "], %[x1], %[w13], %[" #acc "]\n\t"
static inline void tr_conv_s16_dot4_s8(const int16_t *blk, const uint8_t *row, int32_t nwords, int32_t acc[4])
{
    const uint8_t *const row_end = row + 4 * nwords;
    int32_t a0 = acc[0];
    int32_t a1 = acc[1];
    int32_t a2 = acc[2];
    int32_t a3 = acc[3];
    uint32_t w02, w13, x0, x1;
    __asm__ volatile(
        "1:\n\t"
        "ldr    %[w13], [%[row]], #4\n\t"
        "sxtb16 %[w02], %[w13]\n\t"
        "sxtb16 %[w13], %[w13], ror #8\n\t"
        TR_S16_S8_PIXEL(a0, 0) TR_S16_S8_PIXEL(a1, 8) TR_S16_S8_PIXEL(a2, 16) TR_S16_S8_PIXEL(a3, 24)
        "adds   %[blk], %[blk], #32\n\t"
        "cmp    %[row], %[row_end]\n\t"
        "bne    1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [blk] "+r"(blk), [row] "+r"(row),
          [w02] "=&r"(w02), [w13] "=&r"(w13), [x0] "=&r"(x0), [x1] "=&r"(x1)
        : [row_end] "r"(row_end)
        : "cc", "memory");
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#undef TR_S16_S8_PIXEL

/* s8 columns in SXTB16 order: (x0, x1, x2, x3) -> (x0, x2, x1, x3), one group of four per weight word. */
static inline void tr_conv_s16_sxtb16_order(int16_t *col, int32_t k_pad)
{
    for (int32_t i = 0; i < k_pad; i += 4) {
        const uint32_t x01 = tr_load_u32(col + i);
        const uint32_t x23 = tr_load_u32(col + i + 2);
        tr_store_u32(col + i, tr_pack_lo(x01, x23));
        tr_store_u32(col + i + 2, (x01 >> 16) | (x23 & 0xFFFF0000u));
    }
}
#endif

/* Weights per padded row (Kp): whole 32-bit words of codes. */
static inline int32_t tr_conv_s16_k_pad(int32_t fmt, int32_t k)
{
    const int32_t per_word = fmt == TR_FMT_T2 ? 16 : (fmt == TR_FMT_T5 ? 20 : 4);
    return ((k + per_word - 1) / per_word) * per_word;
}

/* The im2col column of output pixel (oy, ox) into col[0..k_pad), natural order. */
static inline void tr_conv_s16_column(const tr_nn_conv_params *p, const tr_nn_dims *input_dims, const int16_t *input,
                                      int32_t k_h, int32_t k_w, int32_t oy, int32_t ox, int32_t k, int32_t k_pad,
                                      int16_t *col)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int16_t pad = (int16_t)p->pad_value;
    int16_t *dst = col;
    for (int32_t ky = 0; ky < k_h; ++ky) {
        const int32_t iy = oy * p->stride.h - p->padding.h + ky;
        for (int32_t kx = 0; kx < k_w; ++kx) {
            const int32_t ix = ox * p->stride.w - p->padding.w + kx;
            if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                memcpy(dst, input + (iy * in_w + ix) * in_c, (size_t)in_c * sizeof(int16_t));
            } else {
                for (int32_t ci = 0; ci < in_c; ++ci) {
                    dst[ci] = pad;
                }
            }
            dst += in_c;
        }
    }
    for (int32_t i = k; i < k_pad; ++i) {
        col[i] = 0;
    }
}

__attribute__((always_inline)) static inline void
tr_convolve_s16_body(int32_t fmt, const tr_nn_conv_params *p, const tr_nn_per_channel_quant_params *q,
                     const tr_nn_dims *input_dims, const int16_t *input, const tr_nn_dims *filter_dims,
                     const uint8_t *filter, const int32_t *bias, const tr_nn_dims *output_dims, int16_t *output,
                     void *scratch)
{
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_c = filter_dims->n;
    const int32_t out_w = output_dims->w;
    const int32_t n_pix = output_dims->h * out_w;
    const int32_t k = k_h * k_w * input_dims->c;
    const int32_t k_pad = tr_conv_s16_k_pad(fmt, k);
    const int32_t row_bytes = tr_row_bytes_of(fmt, k);
    const int32_t bias_scale = (int32_t)1 << p->bias_shift;
    const int32_t *mult = q->multiplier;
    const int32_t *shift = q->shift;
#if TR_NN_USE_DSP
    int16_t *blocks = (int16_t *)scratch; /* four interleaved columns: 8 * Kp bytes */
    int16_t *col = blocks + 4 * k_pad;    /* one natural-order column: 2 * Kp bytes */
    const int32_t block = fmt == TR_FMT_T5 ? 10 : 4;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    for (int32_t pix = 0; pix < n_pix; pix += 4) {
        const int32_t count = n_pix - pix < 4 ? n_pix - pix : 4;
        for (int32_t j = 0; j < 4; ++j) {
            if (j < count) {
                tr_conv_s16_column(p, input_dims, input, k_h, k_w, (pix + j) / out_w, (pix + j) % out_w, k, k_pad,
                                   col);
                if (fmt == TR_FMT_S8) {
                    tr_conv_s16_sxtb16_order(col, k_pad);
                }
            } else {
                memset(col, 0, (size_t)k_pad * sizeof(int16_t)); /* unused lane: defined, discarded */
            }
            tr_interleave_column(col, blocks, j, k_pad, block);
        }
        int16_t *out = output + pix * out_c;
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter + o * row_bytes;
            int32_t acc[4] = {0, 0, 0, 0};
            if (fmt == TR_FMT_T2) {
                tr_conv_s16_dot4_t2(blocks, row, row_bytes, acc);
            } else if (fmt == TR_FMT_T5) {
                tr_conv_s16_dot4_t5(blocks, row, row_bytes / 2, acc);
            } else {
                tr_conv_s16_dot4_s8(blocks, row, k_pad / 4, acc);
            }
            const tr_rq rq = tr_rq_prepare(mult[o], shift[o], bias, o); /* once for the four pixels */
            for (int32_t j = 0; j < count; ++j) {
                out[j * out_c + o] =
                    (int16_t)tr_clamp(tr_rq_requantize(&rq, acc[j] * bias_scale + rq.bias) + offset, lo, hi);
            }
        }
    }
#else
    int16_t *col = (int16_t *)scratch;
    for (int32_t pix = 0; pix < n_pix; ++pix) {
        tr_conv_s16_column(p, input_dims, input, k_h, k_w, pix / out_w, pix % out_w, k, k_pad, col);
        int16_t *out = output + pix * out_c;
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_weight_of(fmt, row, i) * col[i];
            }
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias, o), mult[o], shift[o], p->output_offset,
                                         &p->activation);
        }
    }
#endif
}

#endif /* TR_CONVOLVE_S16_H */
