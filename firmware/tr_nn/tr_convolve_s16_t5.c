/*
 * tr_convolve_s16_t5.c - 2-D convolution: int16 activations in and out, "trit5r20-v1" 1.6-bit ternary weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in] int16, filter rows per output channel in order
 * [KH][KW][C_in] (K = KH * KW * C_in weights per row, packed exactly as tr_convolve_s8_t5 reads them),
 * bias [C_out] (may be NULL = 0), output [1, OH, OW, C_out] int16. acc = sum(w * x) * 2^bias_shift
 * + bias[o] (bias_shift from conv_params, in [0, 16]), padded taps reading pad_value (0 for the
 * zero-point-0 int16 grids the lowering emits, honoured anyway); out = clamp(requantize(acc) +
 * output_offset, activation), the clamp range within int16.
 * Ranges: |x| <= 32768, so |sum(w * x)| <= 32768 * sum|w| per channel; the caller guarantees that
 * bound * 2^bias_shift + |bias| < 2^31 (then no partial sum overflows int32 either).
 *
 * Scratch: 10 * Kp bytes, Kp = K rounded up to 20 (the packed row length); an 8-byte aligned buffer is
 * required (the same on every build). Both paths gather int16 im2col columns zero-filled past K
 * (tr_convolve_s16.h): plain C one column (2 * Kp) and tr_weight_of per tap; DSP four pixels'
 * columns interleaved (8 * Kp) plus a staging column (2 * Kp), one weight decode feeding four SMLAD chains.
 */
#include "tr_convolve_s16.h"

int32_t tr_convolve_s16_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    return 10 * (((k + 20 - 1) / 20) * 20);
}

tr_nn_status tr_convolve_s16_t5(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
                                const tr_nn_per_channel_quant_params *quant_params,
                                const tr_nn_dims *input_dims, const int16_t *input_data,
                                const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                const tr_nn_dims *output_dims, int16_t *output_data)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    const int32_t bias_shift = conv_params->bias_shift;
    (void)bias_dims;

    if (filter_dims->c != input_dims->c || output_dims->c != filter_dims->n || k <= 0 || filter_dims->n <= 0 ||
        conv_params->stride.h < 1 || conv_params->stride.w < 1 || conv_params->padding.h < 0 ||
        conv_params->padding.w < 0 || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_convolve_s16_t5_get_buffer_size(input_dims, filter_dims)) {
        return TR_NN_ARG_ERROR;
    }
    tr_convolve_s16_body(TR_FMT_T5, conv_params, quant_params, input_dims, input_data, filter_dims, filter_data, bias_data,
                         output_dims, output_data, ctx->buf);
    return TR_NN_SUCCESS;
}
