/*
 * tr_depthwise_conv_s16_t5.c - depthwise convolution: int16 activations in and out (any zero point: 0 on a
 * symmetric grid as CMSIS-NN s16, -32768 on a non-negative one), "trit5r20-v1" 5-trits-per-byte ternary
 * weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in] int16, filter dims {1, KH, KW, C_out} with
 * C_out = C_in * ch_mult, packed as KH * KW rows (one per tap, order [KH][KW]) of C_out weights (as the
 * s8 kernels read them), bias [C_out] (may be NULL = 0), output [1, OH, OW, C_out] int16. Output channel
 * o reads input channel o / ch_mult; padded taps read pad_value (in int16 range; the lowering passes 0).
 * acc = sum(w * x) * 2^bias_shift + bias[o] (bias_shift in [0, 16], applied per output after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation) with the activation range within int16.
 * Overflow bound: |sum(w * x)| <= KH * KW * 32768 * max|w| (2^15 per tap for ternary weights, 2^22 for
 * int8 ones); the caller guarantees that acc fits int32 (the lowering's sum bound). No scratch.
 * DSP path: ch_mult == 1 and at most 49 taps: blocks of up to 16 channels have their weights decoded
 * once into int16 pairs of adjacent channels (3 KB of stack); per output pixel, tap and group of four
 * channels two word loads of activations, one LDRD of weights and four SMLABB / SMLATT (3 x 3
 * unrolled), then per output SSAT (whole int16 range) or USAT (relu) after a rounding right shift, or
 * the general output stage (tr_dw16_block, tr_depthwise_conv_s16_core.h). Other shapes and the last
 * C_out % 4 channels: the plain-C loop (channel by channel, its weights decoded once up to 64 taps).
 */
#include "tr_depthwise_conv_s16_core.h"

int32_t tr_depthwise_conv_s16_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

tr_nn_status tr_depthwise_conv_s16_t5(const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int16_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int16_t *output_data)
{
    return tr_depthwise_conv_s16_core(TR_FMT_T5, ctx, dw_conv_params, quant_params, input_dims, input_data,
                                      filter_dims, filter_data, bias_dims, bias_data, output_dims, output_data);
}
