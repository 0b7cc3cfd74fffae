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
    if (ch_mult == 1 && k_h * k_w <= TR_DW_MAX_TAPS) {
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
