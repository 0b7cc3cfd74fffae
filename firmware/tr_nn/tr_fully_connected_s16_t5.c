/*
 * tr_fully_connected_s16_t5.c - fully connected: int16 activations (any zero point: 0 on a symmetric grid
 * as CMSIS-NN s16, -32768 on a non-negative one), "trit5r20-v1" 5-trits-per-byte ternary weights.
 *
 * Layouts (tr_nn.h): input {N, 1, 1, C_in} int16 (N rows processed one after another; normally 1),
 * filter dims {C_out, 1, 1, C_in}, one row of C_in weights per output channel, bias [C_out]
 * (may be NULL = 0), output {N, 1, 1, C_out} int16. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from fc_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation), activation within int16.
 * Overflow: |sum(w * x)| <= 32768 * sum|w| of a row; the caller guarantees that this bound times
 * 2^bias_shift plus |bias[o]| fits int32 (the lowering's bias_shift choice does), so no partial sum
 * overflows either.
 * Scratch: 2 * Kp bytes, Kp = C_in rounded up to 20 (the DSP path's zero-padded copy of the input
 * row); a 4-byte aligned buffer is required. Same size on every build.
 * DSP path: tr_dot_t5_asm (hand-scheduled: 20 instructions per 10 MACs) straight on the copy: the int16
 * input is the column the s8 kernel builds by sign extension.
 */
#include "tr_nn_support.h"

int32_t tr_fully_connected_s16_t5_get_buffer_size(const tr_nn_dims *filter_dims)
{
    return 2 * (((filter_dims->c + 20 - 1) / 20) * 20);
}

tr_nn_status tr_fully_connected_s16_t5(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
                                       const tr_nn_per_channel_quant_params *quant_params,
                                       const tr_nn_dims *input_dims, const int16_t *input_data,
                                       const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                                       const tr_nn_dims *bias_dims, const int32_t *bias_data,
                                       const tr_nn_dims *output_dims, int16_t *output_data)
{
    const int32_t k = filter_dims->c;
    const int32_t out_c = filter_dims->n;
    const int32_t batches = input_dims->n;
    const int32_t bias_shift = fc_params->bias_shift;
    const int32_t row_bytes = tr_row_bytes_t5(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (k <= 0 || out_c <= 0 || batches < 1 || input_dims->h * input_dims->w * input_dims->c != k ||
        output_dims->c != out_c || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_fully_connected_s16_t5_get_buffer_size(filter_dims)) {
        return TR_NN_ARG_ERROR;
    }

    const int32_t bias_scale = (int32_t)1 << bias_shift;
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *in = input_data + b * k;
        int16_t *out = output_data + b * out_c;
#if TR_NN_USE_DSP
        /* copied: word aligned for LDRD, and zero where the last byte pair's padding trits read */
        const int32_t k_pad = ((k + 20 - 1) / 20) * 20;
        int16_t *col = (int16_t *)ctx->buf;
        memcpy(col, in, (size_t)k * sizeof(int16_t));
        memset(col + k, 0, (size_t)(k_pad - k) * sizeof(int16_t));
        for (int32_t o = 0; o < out_c; ++o) {
            const int32_t acc = tr_dot_t5_asm(col, filter_data + o * row_bytes, (k + 9) / 10, 0);
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
        }
#else
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter_data + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_t5_weight(row, i) * in[i];
            }
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
        }
#endif
    }
    return TR_NN_SUCCESS;
}
