/*
 * tr_convolve_plain.h - the plain-C path shared by tr_convolve_s8_{t2,t5,s8} (their DSP paths differ).
 *
 * One output at a time: acc = sum over taps of w * x (padded taps read pad_value), then
 * tr_output_stage(acc * 2^bias_shift + bias[o]). `fmt` is a compile-time constant at every call
 * site, so each variant gets its own specialised copy. Arguments were validated by the caller;
 * layouts as in tr_nn.h (filter rows per output channel in order [KH][KW][C_in], row_bytes apart).
 */
#ifndef TR_CONVOLVE_PLAIN_H
#define TR_CONVOLVE_PLAIN_H

#include "tr_nn_support.h"

/* always_inline: gcc otherwise keeps one generic copy and re-tests fmt per weight (measured +16 %). */
__attribute__((always_inline)) static inline void
tr_convolve_plain(int32_t fmt, const tr_nn_conv_params *conv_params, const int32_t *mult, const int32_t *shift,
                  const tr_nn_dims *input_dims, const int8_t *input_data, const tr_nn_dims *filter_dims,
                  const uint8_t *filter_data, int32_t row_bytes, int32_t bias_scale, const int32_t *bias_data,
                  int32_t fast_1x1, const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t out_c = filter_dims->n;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t stride_h = conv_params->stride.h;
    const int32_t stride_w = conv_params->stride.w;
    const int32_t pad_top = conv_params->padding.h;
    const int32_t pad_left = conv_params->padding.w;
    for (int32_t oy = 0; oy < out_h; ++oy) {
        for (int32_t ox = 0; ox < out_w; ++ox) {
            int8_t *out = output_data + (oy * out_w + ox) * out_c;
            for (int32_t o = 0; o < out_c; ++o) {
                const uint8_t *row = filter_data + o * row_bytes;
                int32_t acc = 0;
                if (fast_1x1) {
                    const int8_t *src = input_data + (oy * in_w + ox) * in_c;
                    for (int32_t ci = 0; ci < in_c; ++ci) {
                        acc += tr_weight_of(fmt, row, ci) * src[ci];
                    }
                } else {
                    for (int32_t ky = 0; ky < k_h; ++ky) {
                        const int32_t iy = oy * stride_h - pad_top + ky;
                        for (int32_t kx = 0; kx < k_w; ++kx) {
                            const int32_t ix = ox * stride_w - pad_left + kx;
                            const int32_t valid = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                            const int8_t *src = valid ? input_data + (iy * in_w + ix) * in_c : NULL;
                            const int32_t base = (ky * k_w + kx) * in_c;
                            for (int32_t ci = 0; ci < in_c; ++ci) {
                                const int32_t x = valid ? src[ci] : conv_params->pad_value;
                                acc += tr_weight_of(fmt, row, base + ci) * x;
                            }
                        }
                    }
                }
                out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         conv_params->output_offset, &conv_params->activation);
            }
        }
    }
}

#endif /* TR_CONVOLVE_PLAIN_H */
