/*
 * tr_depthwise_conv_core.h - the body shared by tr_depthwise_conv_s8_{t2,t5,s8}.
 *
 * The three public functions differ only in how a weight is read from a packed row; each calls
 * this static inline core with its format as a compile-time constant, so the compiler emits one
 * specialised copy per file, exactly as if the body were written out three times. Layouts and
 * ranges: see the public functions' header comments and tr_nn.h.
 */
#ifndef TR_DEPTHWISE_CONV_CORE_H
#define TR_DEPTHWISE_CONV_CORE_H

#include "tr_nn_support.h"
#include "tr_plane3x3.h"

#if TR_NN_USE_DSP
#define TR_DW_PLANE_MIN_OUTPUTS 24 /* 3x3 stride-1 maps this small go through the channel blocks */
/* 3x3 stride-2 maps of fewer outputs go through the channel blocks (MobileNetV1's 12 x 12 x 64 -> 6 x 6:
 * 6.8 instructions per MAC on the plane path, 5.5 in blocks; 24 x 24 -> 12 x 12: 4.6 against 5.0) */
#define TR_DW_S2_PLANE_MIN_OUTPUTS 64

/* Instructions of the plane passes over an out_h x out_w map, up to a common factor: per output row
 * ceil(out_w / 4) passes of about 43 and about 25 of row overhead (tr_p3_band); the stores cost the
 * same either way. */
static inline int32_t tr_dw_plane_cost(int32_t out_h, int32_t out_w)
{
    return out_h * (((out_w + 3) >> 2) * 43 + 25);
}

/* 3x3, stride 1, ch_mult 1: each channel through the int16-plane passes of tr_plane3x3.h (bands of
 * TR_P3_ROWS output rows by tiles of TR_P3_TILE columns, two channels gathered together; 3 KB of
 * stack, in its own frame: not inlined). A map cheaper with rows and columns swapped (a narrow, tall
 * one: 25 x 5 runs as 5 rows of 25 instead of 25 rows of 5 rounded up to 8) runs transposed: the
 * planes are gathered column by column, the weights transposed, and the outputs stored down columns. */
__attribute__((noinline)) static void
tr_dw_plane3x3(int32_t fmt, const tr_nn_dw_conv_params *p, const tr_nn_per_channel_quant_params *q,
               const tr_nn_dims *input_dims, const int8_t *input, const uint8_t *filter, int32_t row_bytes,
               const int32_t *bias, const tr_nn_dims *output_dims, int8_t *output)
{
    const int32_t ch = input_dims->c;
    const int32_t tr = tr_dw_plane_cost(output_dims->w, output_dims->h) <
                       tr_dw_plane_cost(output_dims->h, output_dims->w);
    /* plane geometry: (rows, columns) of the output and input, padding, and steps in bytes */
    const int32_t out_h = tr ? output_dims->w : output_dims->h;
    const int32_t out_w = tr ? output_dims->h : output_dims->w;
    const int32_t pad_y = tr ? p->padding.w : p->padding.h;
    const int32_t pad_x = tr ? p->padding.h : p->padding.w;
    const int32_t out_col = tr ? output_dims->w * ch : ch; /* bytes between outputs of a plane row */
    const int32_t out_row = tr ? ch : output_dims->w * ch; /* bytes between plane rows of the output */
    const int32_t scale = (int32_t)1 << p->bias_shift;
    const uint8_t *tap_row[9]; /* the packed row of plane tap t: (ky, kx) -> (kx, ky) when transposed */
    for (int32_t t = 0; t < 9; ++t) {
        tap_row[t] = filter + (tr ? (t % 3) * 3 + t / 3 : t) * row_bytes;
    }
    tr_p3_src src = {input, tr ? input_dims->w : input_dims->h, tr ? input_dims->h : input_dims->w,
                     tr ? ch : input_dims->w * ch, tr ? input_dims->w * ch : ch};
    tr_p3_buf buf;
    for (int32_t c = 0; c < ch; c += 2) {
        const int32_t nc = c + 1 < ch ? 2 : 1; /* channels gathered together */
        src.base = input + c;
        tr_p3_weights pw[2];
        tr_p3_out po[2];
        for (int32_t i = 0; i < nc; ++i) {
            int32_t w[9];
            for (int32_t t = 0; t < 9; ++t) {
                w[t] = tr_weight_of(fmt, tap_row[t], c + i);
            }
            pw[i] = tr_p3_pack(w, scale, bias != NULL ? bias[c + i] : 0);
            po[i] = tr_p3_out_prepare(q->multiplier[c + i], q->shift[c + i], p->output_offset, p->activation.min,
                                      p->activation.max);
        }
        for (int32_t oy0 = 0; oy0 < out_h; oy0 += TR_P3_ROWS) {
            const int32_t rows = out_h - oy0 < TR_P3_ROWS ? out_h - oy0 : TR_P3_ROWS;
            for (int32_t ox0 = 0; ox0 < out_w; ox0 += TR_P3_TILE) {
                const int32_t tw = out_w - ox0 < TR_P3_TILE ? out_w - ox0 : TR_P3_TILE;
                const int32_t twr = (tw + 3) & ~3;
                if (nc == 2) {
                    tr_p3_gather2(&buf, &src, oy0 - pad_y, ox0 - pad_x, rows + 2, twr + 2, p->pad_value);
                } else {
                    tr_p3_gather(&buf, &src, oy0 - pad_y, ox0 - pad_x, rows + 2, twr + 2, p->pad_value);
                }
                int32_t *acc = tr_p3_acc(&buf, twr / 4);
                for (int32_t i = 0; i < nc; ++i) {
                    int8_t *dst = output + oy0 * out_row + ox0 * out_col + c + i;
                    if (po[i].fast && po[i].rq.right >= 2) {
                        tr_p3_band(buf.g[i][0], acc, tw, rows, &pw[i], &po[i], dst, out_col, out_row, 0);
                        continue;
                    }
                    for (int32_t r = 0; r < rows; ++r) {
                        tr_p3_row(buf.g[i][r], acc, &pw[i]);
                        tr_p3_store(acc, tw, &po[i], dst, out_col);
                        dst += out_row;
                    }
                }
            }
        }
    }
}

/* Bands and tiles of the stride-2 plane path: 2 rows + 1 plane rows and 2 tile + 2 columns must fit. */
#define TR_P3_S2_ROWS ((TR_P3_ROWS + 1) / 2)
#define TR_P3_S2_TILE ((TR_P3_GW - 2) / 8 * 4)

/* 1 when every channel's output stage takes tr_p3_band's fast path (the stride-2 plane path has no other). */
static inline int32_t tr_dw_all_fast(const tr_nn_dw_conv_params *p, const tr_nn_per_channel_quant_params *q,
                                     int32_t ch)
{
    if (p->activation.min != -128 || p->activation.max != 127) {
        return 0;
    }
    for (int32_t c = 0; c < ch; ++c) {
        if (q->shift[c] > -2 || q->shift[c] < -23) {
            return 0;
        }
    }
    return 1;
}

/* 3x3, stride 2, ch_mult 1, every channel fast (tr_dw_all_fast): as tr_dw_plane3x3, with the stride-2
 * passes of tr_p3_band (bands of TR_P3_S2_ROWS output rows from 2 rows + 1 plane rows, tiles of
 * TR_P3_S2_TILE columns from 2 tile + 1 plane columns). */
__attribute__((noinline)) static void
tr_dw_plane3x3_s2(int32_t fmt, const tr_nn_dw_conv_params *p, const tr_nn_per_channel_quant_params *q,
                  const tr_nn_dims *input_dims, const int8_t *input, const uint8_t *filter, int32_t row_bytes,
                  const int32_t *bias, const tr_nn_dims *output_dims, int8_t *output)
{
    const int32_t ch = input_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t scale = (int32_t)1 << p->bias_shift;
    tr_p3_src src = {input, input_dims->h, input_dims->w, input_dims->w * ch, ch};
    tr_p3_buf buf;
    for (int32_t c = 0; c < ch; c += 2) {
        const int32_t nc = c + 1 < ch ? 2 : 1; /* channels gathered together */
        src.base = input + c;
        tr_p3_weights pw[2];
        tr_p3_out po[2];
        for (int32_t i = 0; i < nc; ++i) {
            int32_t w[9];
            for (int32_t t = 0; t < 9; ++t) {
                w[t] = tr_weight_of(fmt, filter + t * row_bytes, c + i);
            }
            pw[i] = tr_p3_pack(w, scale, bias != NULL ? bias[c + i] : 0);
            po[i] = tr_p3_out_prepare(q->multiplier[c + i], q->shift[c + i], p->output_offset, p->activation.min,
                                      p->activation.max);
        }
        for (int32_t oy0 = 0; oy0 < out_h; oy0 += TR_P3_S2_ROWS) {
            const int32_t rows = out_h - oy0 < TR_P3_S2_ROWS ? out_h - oy0 : TR_P3_S2_ROWS;
            for (int32_t ox0 = 0; ox0 < out_w; ox0 += TR_P3_S2_TILE) {
                const int32_t tw = out_w - ox0 < TR_P3_S2_TILE ? out_w - ox0 : TR_P3_S2_TILE;
                const int32_t twr = (tw + 3) & ~3;
                const int32_t iy0 = 2 * oy0 - p->padding.h;
                const int32_t ix0 = 2 * ox0 - p->padding.w;
                if (nc == 2) {
                    tr_p3_gather2(&buf, &src, iy0, ix0, 2 * rows + 1, 2 * twr + 2, p->pad_value);
                } else {
                    tr_p3_gather(&buf, &src, iy0, ix0, 2 * rows + 1, 2 * twr + 2, p->pad_value);
                }
                int32_t *acc = tr_p3_acc(&buf, twr / 4);
                for (int32_t i = 0; i < nc; ++i) {
                    tr_p3_band(buf.g[i][0], acc, tw, rows, &pw[i], &po[i], output + (oy0 * out_w + ox0) * ch + c + i,
                               ch, out_w * ch, 1);
                }
            }
        }
    }
}
#endif

/* always_inline: one specialised copy per format (a generic copy measured 6 % slower). */
__attribute__((always_inline)) static inline tr_nn_status tr_depthwise_conv_core(int32_t fmt, const tr_nn_context *ctx,
                                                  const tr_nn_dw_conv_params *dw_conv_params,
                                                  const tr_nn_per_channel_quant_params *quant_params,
                                                  const tr_nn_dims *input_dims, const int8_t *input_data,
                                                  const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                                  const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                                  const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_c = filter_dims->c;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t ch_mult = dw_conv_params->ch_mult;
    const int32_t stride_h = dw_conv_params->stride.h;
    const int32_t stride_w = dw_conv_params->stride.w;
    const int32_t pad_top = dw_conv_params->padding.h;
    const int32_t pad_left = dw_conv_params->padding.w;
    const int32_t pad_value = dw_conv_params->pad_value;
    const int32_t bias_shift = dw_conv_params->bias_shift;
    const int32_t row_bytes = tr_row_bytes_of(fmt, out_c);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)ctx;
    (void)bias_dims;

    if (ch_mult < 1 || out_c != in_c * ch_mult || output_dims->c != out_c || k_h < 1 || k_w < 1 ||
        stride_h < 1 || stride_w < 1 || pad_top < 0 || pad_left < 0 || bias_shift < 0 ||
        bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t bias_scale = (int32_t)1 << bias_shift;
    int32_t o_begin = 0; /* channels below o_begin are done by the DSP fast path */
#if TR_NN_USE_DSP
    /* |w| * 2^bias_shift must fit an int16 weight lane: ternary up to 14, int8 (|w| <= 128) up to 7 */
    const int32_t fits16 = bias_shift <= (fmt == TR_FMT_S8 ? 7 : 14);
    /* A map of at most TR_DW_PLANE_MIN_OUTPUTS outputs (3 x 3, 4 x 4) costs the plane path more in its
     * per-channel set-up than the channel blocks cost in their per-pixel work (measured on MobileNetV1's
     * 3 x 3 x 256: 10.2 against 7.8 instructions per MAC; on 6 x 6 x 128: 5.3 against 5.8). */
    if (ch_mult == 1 && k_h == 3 && k_w == 3 && stride_h == 1 && stride_w == 1 && fits16 &&
        !(out_h * out_w <= TR_DW_PLANE_MIN_OUTPUTS && (out_c & 3) == 0)) {
        tr_dw_plane3x3(fmt, dw_conv_params, quant_params, input_dims, input_data, filter_data, row_bytes, bias_data,
                       output_dims, output_data);
        return TR_NN_SUCCESS;
    }
    if (ch_mult == 1 && k_h == 3 && k_w == 3 && stride_h == 2 && stride_w == 2 && fits16 &&
        out_h * out_w >= TR_DW_S2_PLANE_MIN_OUTPUTS && tr_dw_all_fast(dw_conv_params, quant_params, out_c)) {
        tr_dw_plane3x3_s2(fmt, dw_conv_params, quant_params, input_dims, input_data, filter_data, row_bytes,
                          bias_data, output_dims, output_data);
        return TR_NN_SUCCESS;
    }
    if (ch_mult == 1 && k_h * k_w <= TR_DW_MAX_TAPS && fits16) {
        o_begin = out_c & ~3;
        for (int32_t c0 = 0; c0 < o_begin; c0 += TR_DW_BLOCK) {
            const int32_t nc = o_begin - c0 < TR_DW_BLOCK ? o_begin - c0 : TR_DW_BLOCK;
            tr_dw_dsp_block(fmt, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                            row_bytes, bias_data, output_dims, output_data, c0, nc);
        }
    }
#endif

    for (int32_t oy = 0; oy < out_h; ++oy) {
        const int32_t y0 = oy * stride_h - pad_top;
        for (int32_t ox = 0; ox < out_w; ++ox) {
            const int32_t x0 = ox * stride_w - pad_left;
            int8_t *out = output_data + (oy * out_w + ox) * out_c;
            for (int32_t o = o_begin; o < out_c; ++o) {
                const int32_t ci = o / ch_mult;
                int32_t acc = 0;
#if TR_NN_USE_DSP
                /* Pair consecutive taps (row-major over the window) into one __smlad. */
                int32_t pending = 0;
                uint32_t x_pair = 0u;
                uint32_t w_pair = 0u;
#endif
                for (int32_t ky = 0; ky < k_h; ++ky) {
                    const int32_t iy = y0 + ky;
                    for (int32_t kx = 0; kx < k_w; ++kx) {
                        const int32_t ix = x0 + kx;
                        const int32_t x = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                              ? input_data[(iy * in_w + ix) * in_c + ci]
                                              : pad_value;
                        const int32_t w = tr_weight_of(fmt, filter_data + (ky * k_w + kx) * row_bytes, o);
#if TR_NN_USE_DSP
                        if (pending) {
                            x_pair |= (uint32_t)x << 16;
                            w_pair |= (uint32_t)w << 16;
                            acc = __smlad((int32_t)x_pair, (int32_t)w_pair, acc);
                            pending = 0;
                        } else {
                            x_pair = (uint32_t)x & 0xFFFFu;
                            w_pair = (uint32_t)w & 0xFFFFu;
                            pending = 1;
                        }
#else
                        acc += w * x;
#endif
                    }
                }
#if TR_NN_USE_DSP
                if (pending) {
                    acc = __smlad((int32_t)x_pair, (int32_t)w_pair, acc); /* high halves are 0 */
                }
#endif
                out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         dw_conv_params->output_offset,
                                         &dw_conv_params->activation);
            }
        }
    }
    return TR_NN_SUCCESS;
}

#endif /* TR_DEPTHWISE_CONV_CORE_H */
