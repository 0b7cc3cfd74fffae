/*
 * tr_depthwise_conv_s8_t5.c - depthwise convolution: int8 activations, "trit5r20-v1" 5-trits-per-byte ternary weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in], filter dims {1, KH, KW, C_out} with
 * C_out = C_in * ch_mult, packed as KH * KW rows (one per tap, order [KH][KW]) of C_out weights,
 * bias [C_out] (may be NULL = 0), output [1, OH, OW, C_out]. Output channel o reads input
 * channel o / ch_mult; padded taps read pad_value. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from dw_conv_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation). No scratch (buffer size 0).
 * DSP path: 3x3, stride 1, ch_mult == 1 (bias_shift <= 14, or 7 for int8 weights) goes through the int16-plane
 * passes of tr_plane3x3.h (two channels gathered at a time, four outputs per pass, 3 KB of stack; a
 * narrow, tall map such as 25 x 5 runs transposed, column by column); 3x3, stride 2, ch_mult == 1 with
 * at least 64 outputs a channel, the whole int8 output range and every shift in [-23, -2] through the
 * stride-2 passes of the same planes (tr_p3_band, s2);
 * other shapes with ch_mult == 1, at most 16 taps and the same bias_shift bound (other stride-2 layers, and
 * 3x3 stride-1 maps of at most 24 outputs when C_out % 4 == 0) through tr_dw_dsp_block (tr_nn_support.h:
 * weights decoded and scaled once per block of 16 channels, four channels per LDR + two SXTB16,
 * SMLABB / SMLATT into accumulators that start at the bias); other shapes and the last C_out % 4
 * channels pair consecutive taps into one __smlad per channel.
 */
#include "tr_depthwise_conv_core.h"

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
    return tr_depthwise_conv_core(TR_FMT_T5, ctx, dw_conv_params, quant_params, input_dims, input_data, filter_dims,
                                  filter_data, bias_dims, bias_data, output_dims, output_data);
}
