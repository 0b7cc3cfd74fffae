/*
 * tr_fully_connected_s16_s8.c - fully connected: int16 activations (any zero point: 0 on a symmetric grid
 * as CMSIS-NN s16, -32768 on a non-negative one), "s8r4-v1" int8 weights.
 *
 * Layouts (tr_nn.h): input {N, 1, 1, C_in} int16 (N rows processed one after another; normally 1),
 * filter dims {C_out, 1, 1, C_in}, one row of C_in weights per output channel, bias [C_out]
 * (may be NULL = 0), output {N, 1, 1, C_out} int16. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from fc_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation), activation within int16.
 * Overflow: |sum(w * x)| <= 32768 * sum|w| of a row; the caller guarantees that this bound times
 * 2^bias_shift plus |bias[o]| fits int32 (the lowering's bias_shift choice does), so no partial sum
 * overflows either.
 * Scratch: 2 * Kp bytes, Kp = C_in rounded up to 4 (the DSP path's copy of the input row, each group
 * of four stored as x0, x2, x1, x3 and zero past C_in); a 4-byte aligned buffer is required. Same size
 * on every build.
 * DSP path: output rows in pairs sharing every activation load: per weight word LDR of each row, two
 * SXTB16 per row and two SMLAD per row against the two activation pairs (the order SXTB16 yields, so
 * the weights need no repacking); a last odd row through tr_dot_s8_dsp.
 */
#include "tr_nn_support.h"

#if TR_NN_USE_DSP
/* The input row in the order tr_dot_s8_dsp reads: per group of four (x0, x2), (x1, x3); zero past n. */
static inline void tr_fc16_permute(const int16_t *src, int16_t *dst, int32_t n, int32_t n_padded)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t a = tr_load_u32(src + i);     /* (x0, x1) */
        const uint32_t b = tr_load_u32(src + i + 2); /* (x2, x3) */
        tr_store_u32(dst + i, tr_pack_lo(a, b));                   /* (x0, x2) */
        tr_store_u32(dst + i + 2, (a >> 16) | (b & 0xFFFF0000u)); /* (x1, x3) */
    }
    for (int32_t j = i; j < n_padded; ++j) {
        dst[j] = 0;
    }
    for (; i < n; ++i) {
        static const uint8_t perm[4] = {0u, 2u, 1u, 3u};
        dst[(i & ~3) | perm[i & 3]] = src[i];
    }
}

/* Two s8 rows (row and row + row_bytes) against one permuted int16 column of nwords * 4 values. */
static inline void tr_fc16_dot2_s8(const int16_t *col, const uint8_t *row, int32_t row_bytes, int32_t nwords,
                                   int32_t *acc_a, int32_t *acc_b)
{
    int32_t a = 0;
    int32_t b = 0;
    for (int32_t w = 0; w < nwords; ++w) {
        const int32_t x02 = (int32_t)tr_load_u32(col);
        const int32_t x13 = (int32_t)tr_load_u32(col + 2);
        const uint32_t wa = tr_load_u32(row);
        const uint32_t wb = tr_load_u32(row + row_bytes);
        row += 4;
        col += 4;
        a = __smlad(x02, __sxtb16(wa), a);
        a = __smlad(x13, (int32_t)tr_sxtb16_ror8(wa), a);
        b = __smlad(x02, __sxtb16(wb), b);
        b = __smlad(x13, (int32_t)tr_sxtb16_ror8(wb), b);
    }
    *acc_a = a;
    *acc_b = b;
}
#endif

int32_t tr_fully_connected_s16_s8_get_buffer_size(const tr_nn_dims *filter_dims)
{
    return 2 * (((filter_dims->c + 4 - 1) / 4) * 4);
}

tr_nn_status tr_fully_connected_s16_s8(const tr_nn_context *ctx, const tr_nn_fc_params *fc_params,
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
    const int32_t row_bytes = tr_row_bytes_s8(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (k <= 0 || out_c <= 0 || batches < 1 || input_dims->h * input_dims->w * input_dims->c != k ||
        output_dims->c != out_c || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_fully_connected_s16_s8_get_buffer_size(filter_dims)) {
        return TR_NN_ARG_ERROR;
    }

    const int32_t bias_scale = (int32_t)1 << bias_shift;
    for (int32_t b = 0; b < batches; ++b) {
        const int16_t *in = input_data + b * k;
        int16_t *out = output_data + b * out_c;
#if TR_NN_USE_DSP
        const int32_t k_pad = ((k + 4 - 1) / 4) * 4;
        int16_t *col = (int16_t *)ctx->buf;
        tr_fc16_permute(in, col, k, k_pad);
        int32_t o = 0;
        for (; o + 2 <= out_c; o += 2) { /* two rows share every activation load */
            int32_t acc0;
            int32_t acc1;
            tr_fc16_dot2_s8(col, filter_data + o * row_bytes, row_bytes, k_pad / 4, &acc0, &acc1);
            out[o] = tr_output_stage_s16(tr_add_bias(acc0, bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
            out[o + 1] = tr_output_stage_s16(tr_add_bias(acc1, bias_scale, bias_data, o + 1), mult[o + 1],
                                             shift[o + 1], fc_params->output_offset, &fc_params->activation);
        }
        if (o < out_c) {
            const int32_t acc = tr_dot_s8_dsp(col, filter_data + o * row_bytes, k_pad / 4, 0);
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
        }
#else
        for (int32_t o = 0; o < out_c; ++o) {
            const uint8_t *row = filter_data + o * row_bytes;
            int32_t acc = 0;
            for (int32_t i = 0; i < k; ++i) {
                acc += tr_s8_weight(row, i) * in[i];
            }
            out[o] = tr_output_stage_s16(tr_add_bias(acc, bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
        }
#endif
    }
    return TR_NN_SUCCESS;
}
