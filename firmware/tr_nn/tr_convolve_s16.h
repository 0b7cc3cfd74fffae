/*
 * tr_convolve_s16.h - the body shared by tr_convolve_s16_{t2,t5,s8} (int16 activations in and out).
 *
 * Per output pixel the int16 im2col column (K values in [KH][KW][C_in] order, padded taps reading
 * pad_value, zero-filled up to the packed row length Kp) is gathered into the scratch, then every
 * output channel is one dot product of that column with its packed row:
 *  - plain C: tr_weight_of per tap, over the K real taps;
 *  - DSP: SMLAD on int16 pairs over the whole padded row (the zero-filled tail cancels whatever the
 *    padding codes decode to): t2 two rows per column pass (tr_dot2_t2_dsp, 11 instructions per 8
 *    MACs), trit5 tr_dot_t5_asm (20 per 10), s8 two rows per pass (tr_conv_s16_dot2_s8) on a column
 *    stored in SXTB16 order (each group of four as x0, x2, x1, x3); an odd last channel takes the
 *    one-row helpers (tr_dot_t2_dsp, tr_dot_s8_dsp).
 * then tr_output_stage_s16(acc * 2^bias_shift + bias[o]). `fmt` is a compile-time constant at each
 * call site, so every variant gets its own specialised copy. Arguments were validated by the caller;
 * `col` is the 8-byte aligned scratch, 2 * Kp bytes.
 *
 * Overflow: |x| <= 32768 and |w| <= 1 (ternary) or 128 (s8), so one product fits 2^22 and every
 * partial sum is bounded by sum |w| * 32768, which the lowering keeps (times 2^bias_shift, plus the
 * bias) below 2^31.
 */
#ifndef TR_CONVOLVE_S16_H
#define TR_CONVOLVE_S16_H

#include "tr_nn_support.h"

#if TR_NN_USE_DSP
/* Two s8 rows (row and row + row_bytes, nwords >= 1 words each) against one int16 column in SXTB16
 * order: the four activations of a word are loaded once (LDRD) for both rows; per word and row one LDR,
 * two SXTB16 and two SMLAD (about 13 instructions per 8 MACs with the loop). */
static inline void tr_conv_s16_dot2_s8(const int16_t *col, const uint8_t *row, int32_t row_bytes, int32_t nwords,
                                       int32_t *acc_a, int32_t *acc_b)
{
    const int16_t *x = (const int16_t *)__builtin_assume_aligned(col, 8);
    const uint8_t *row_b = row + row_bytes;
    int32_t a = *acc_a;
    int32_t b = *acc_b;
    for (int32_t w = 0; w < nwords; ++w) {
        const uint64_t xx = tr_load_u64(x + 4 * w);
        const int32_t x02 = (int32_t)(uint32_t)xx;
        const int32_t x13 = (int32_t)(uint32_t)(xx >> 32);
        const uint32_t wa = tr_load_u32(row + 4 * w);
        const uint32_t wb = tr_load_u32(row_b + 4 * w);
        a = __smlad(x02, __sxtb16(wa), a);
        a = __smlad(x13, (int32_t)tr_sxtb16_ror8(wa), a);
        b = __smlad(x02, __sxtb16(wb), b);
        b = __smlad(x13, (int32_t)tr_sxtb16_ror8(wb), b);
    }
    *acc_a = a;
    *acc_b = b;
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
                     int16_t *col)
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
    for (int32_t pix = 0; pix < n_pix; ++pix) {
        tr_conv_s16_column(p, input_dims, input, k_h, k_w, pix / out_w, pix % out_w, k, k_pad, col);
        int16_t *out = output + pix * out_c;
#if TR_NN_USE_DSP
        int32_t o = 0;
        if (fmt == TR_FMT_S8) {
            /* SXTB16 order: (x0, x1, x2, x3) -> (x0, x2, x1, x3), one group of four per weight word */
            for (int32_t i = 0; i < k_pad; i += 4) {
                const uint32_t x01 = tr_load_u32(col + i);
                const uint32_t x23 = tr_load_u32(col + i + 2);
                tr_store_u32(col + i, tr_pack_lo(x01, x23));
                tr_store_u32(col + i + 2, (x01 >> 16) | (x23 & 0xFFFF0000u));
            }
        }
        if (fmt != TR_FMT_T5) { /* two rows per pass over the column */
            for (; o + 2 <= out_c; o += 2) {
                int32_t acc[2] = {0, 0};
                if (fmt == TR_FMT_T2) {
                    tr_dot2_t2_dsp(col, filter + o * row_bytes, row_bytes, k_pad / 16, &acc[0], &acc[1]);
                } else {
                    tr_conv_s16_dot2_s8(col, filter + o * row_bytes, row_bytes, k_pad / 4, &acc[0], &acc[1]);
                }
                for (int32_t j = 0; j < 2; ++j) {
                    out[o + j] = tr_output_stage_s16(tr_add_bias(acc[j], bias_scale, bias, o + j), mult[o + j],
                                                     shift[o + j], p->output_offset, &p->activation);
                }
            }
        }
        for (; o < out_c; ++o) {
            const uint8_t *row = filter + o * row_bytes;
            const int32_t acc = fmt == TR_FMT_T2   ? tr_dot_t2_dsp(col, row, k_pad / 16, 0)
                                : fmt == TR_FMT_T5 ? tr_dot_t5_asm(col, row, row_bytes / 2, 0)
                                                   : tr_dot_s8_dsp(col, row, k_pad / 4, 0);
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias, o), mult[o], shift[o], p->output_offset,
                                         &p->activation);
        }
#else
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_weight_of(fmt, row, i) * col[i];
            }
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias, o), mult[o], shift[o], p->output_offset,
                                         &p->activation);
        }
#endif
    }
}

#endif /* TR_CONVOLVE_S16_H */
