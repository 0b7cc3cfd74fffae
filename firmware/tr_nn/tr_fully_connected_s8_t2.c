/*
 * tr_fully_connected_s8_t2.c - fully connected: int8 activations, "t2r16-v1" 2-bit ternary weights.
 *
 * Layouts (tr_nn.h): input {N, 1, 1, C_in} (N rows processed one after another; normally 1),
 * filter dims {C_out, 1, 1, C_in}, one row of C_in weights per output channel, bias [C_out]
 * (may be NULL = 0), output {N, 1, 1, C_out}. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from fc_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation).
 * Scratch: 2 * Kp bytes, Kp = C_in rounded up to 16 (the DSP path's int16 copy of the input);
 * a 4-byte aligned buffer is required. Same size on every build.
 * DSP path: output rows in pairs sharing every activation load (tr_dot2_t2_dsp, hand-scheduled:
 * 11 instructions per 8 MACs); an odd last row goes alone.
 */
#include "tr_nn_support.h"

int32_t tr_fully_connected_s8_t2_get_buffer_size(const tr_nn_dims *filter_dims)
{
    return 2 * (((filter_dims->c + 16 - 1) / 16) * 16);
}

tr_nn_status tr_fully_connected_s8_t2(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
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
    const int32_t row_bytes = tr_row_bytes_t2(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (k <= 0 || out_c <= 0 || batches < 1 || input_dims->h * input_dims->w * input_dims->c != k ||
        output_dims->c != out_c || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_fully_connected_s8_t2_get_buffer_size(filter_dims)) {
        return TR_NN_ARG_ERROR;
    }

    const int32_t bias_scale = (int32_t)1 << bias_shift;
    for (int32_t b = 0; b < batches; ++b) {
        const int8_t *in = input_data + b * k;
        int8_t *out = output_data + b * out_c;
#if TR_NN_USE_DSP
        const int32_t k_pad = ((k + 16 - 1) / 16) * 16;
        int16_t *col = (int16_t *)ctx->buf;
        tr_expand_s8_to_s16(in, col, k, k_pad, 0);
        int32_t o = 0;
        for (; o + 2 <= out_c; o += 2) { /* two rows share every activation load */
            int32_t acc0 = 0;
            int32_t acc1 = 0;
            tr_dot2_t2_dsp(col, filter_data + o * row_bytes, row_bytes, k_pad / 16, &acc0, &acc1);
            out[o] = tr_output_stage(tr_add_bias(acc0, bias_scale, bias_data, o), mult[o], shift[o],
                                     fc_params->output_offset, &fc_params->activation);
            out[o + 1] = tr_output_stage(tr_add_bias(acc1, bias_scale, bias_data, o + 1), mult[o + 1],
                                         shift[o + 1], fc_params->output_offset, &fc_params->activation);
        }
        for (; o < out_c; ++o) {
            const int32_t acc = tr_dot_t2_dsp(col, filter_data + o * row_bytes, k_pad / 16, 0);
            out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                     fc_params->output_offset, &fc_params->activation);
        }
#else
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter_data + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_t2_weight(row, i) * in[i];
            }
            out[o] = tr_output_stage(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                     fc_params->output_offset, &fc_params->activation);
        }
#endif
    }
    return TR_NN_SUCCESS;
}
