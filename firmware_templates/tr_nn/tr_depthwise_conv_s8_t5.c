/*
 * tr_depthwise_conv_s8_t5.c - depthwise convolution: int8 activations, "trit5r20-v1" 5-trits-per-byte ternary weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in], filter dims {1, KH, KW, C_out} with
 * C_out = C_in * ch_mult, packed as KH * KW rows (one per tap, order [KH][KW]) of C_out weights,
 * bias [C_out] (may be NULL = 0), output [1, OH, OW, C_out]. Output channel o reads input
 * channel o / ch_mult; padded taps read pad_value. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from dw_conv_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation). No scratch (buffer size 0).
 * DSP path: ch_mult == 1 with at most 16 taps goes through tr_dw_dsp_block (tr_nn_support.h: weights
 * decoded once per block of 16 channels, four channels per LDR + two SXTB16, SMLABB / SMLATT); other
 * shapes and the last C_out % 4 channels pair consecutive taps into one __smlad per channel.
 */
#include "tr_nn_support.h"

int32_t tr_depthwise_conv_s8_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

tr_nn_status tr_depthwise_conv_s8_t5(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
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
    const int32_t row_bytes = tr_row_bytes_t5(out_c);
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
            tr_dw_dsp_block(TR_FMT_T5, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
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
                        const int32_t w = tr_t5_weight(filter_data + (ky * k_w + kx) * row_bytes, o);
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
