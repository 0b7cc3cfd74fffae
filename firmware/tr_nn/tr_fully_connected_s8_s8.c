/*
 * tr_fully_connected_s8_s8.c - fully connected: int8 activations, "s8r4-v1" int8 weights.
 *
 * Layouts (tr_nn.h): input {N, 1, 1, C_in} (N rows processed one after another; normally 1),
 * filter dims {C_out, 1, 1, C_in}, one row of C_in weights per output channel, bias [C_out]
 * (may be NULL = 0), output {N, 1, 1, C_out}. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from fc_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation).
 * Scratch: 2 * Kp bytes, Kp = C_in rounded up to 4 (the DSP path's int16 copy of the input);
 * a 4-byte aligned buffer is required. Same size on every build.
 */
#include "tr_nn_support.h"

int32_t tr_fully_connected_s8_s8_get_buffer_size(const tr_nn_dims *filter_dims)
{
    return 2 * (((filter_dims->c + 4 - 1) / 4) * 4);
}

tr_nn_status tr_fully_connected_s8_s8(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                      const tr_nn_per_channel_quant_params *quant_params,
                                      const tr_nn_dims *input_dims, const int8_t *input_data,
                                      const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                      const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                      const tr_nn_dims *output_dims, int8_t *output_data)
{
    const int32_t k = filter_dims->c;
    const int32_t out_c = filter_dims->n;
    const int32_t batches = input_dims->n;
    const int32_t bias_shift = fc_params->bias_shift;
    const int32_t row_bytes = tr_row_bytes_s8(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (k <= 0 || out_c <= 0 || batches < 1 || input_dims->h * input_dims->w * input_dims->c != k ||
        output_dims->c != out_c || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_fully_connected_s8_s8_get_buffer_size(filter_dims)) {
        return TR_NN_ARG_ERROR;
    }

    const int32_t bias_scale = (int32_t)1 << bias_shift;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input_data + b * k;
        int8_t *out = output_data + b * out_c;
#if TR_NN_USE_DSP
        const int32_t k_pad = ((k + 4 - 1) / 4) * 4;
        int16_t *col = (int16_t *)ctx->buf;
        tr_expand_s8_to_s16(in, col, k, k_pad, 1);
        for (int32_t o = 0; o < out_c; ++o) {
            const int32_t acc = tr_dot_s8_dsp(col, filter_data + o * row_bytes, k_pad / 4, 0);
            out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                     fc_params->output_offset, &fc_params->activation);
        }
#else
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter_data + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_s8_weight(row, i) * in[i];
            }
            out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                     fc_params->output_offset, &fc_params->activation);
        }
#endif
    }
    return TR_NN_SUCCESS;
}
