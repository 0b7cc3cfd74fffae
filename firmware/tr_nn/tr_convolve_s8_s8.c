/*
 * tr_convolve_s8_s8.c - 2-D convolution: int8 activations, "s8r4-v1" int8 weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in], filter rows per output channel in order
 * [KH][KW][C_in] (K = KH * KW * C_in weights per row), bias [C_out] (may be NULL = 0),
 * output [1, OH, OW, C_out]. acc = sum(w * x) * 2^bias_shift + bias[o] (bias_shift from
 * conv_params, in [0, 16]; the scaling is per output, after the MACs), padded taps reading
 * pad_value; out = clamp(requantize(acc) + output_offset, activation).
 *
 * Scratch (same size on every build so the arena plan does not depend on the path):
 * 11 * Kp bytes, Kp = K rounded up to 4; an 8-byte aligned buffer is required. The DSP path
 * keeps four interleaved int16 im2col columns (8 * Kp: output pixels go in fours so that one
 * weight decode feeds four MAC chains), one natural-order int16 column (2 * Kp) and an int8
 * staging row (Kp).
 * Fast path: 1x1 kernel, stride 1, no padding reads the input pixel directly (no im2col).
 */
#include "tr_convolve_plain.h"

#if TR_NN_USE_DSP
/* int16 im2col column of output pixel (oy, ox): K values in [KH][KW][C_in] order, zero-filled to
 * k_pad; the 1x1 fast path expands the input pixel directly, skipping the int8 staging copy. */
static void tr_conv_s8_column(const tr_nn_conv_params *conv_params, const tr_nn_dims *input_dims,
                               const int8_t *input_data, const tr_nn_dims *filter_dims, int32_t oy, int32_t ox,
                               int32_t fast_1x1, int32_t k_pad, int8_t *stage, int16_t *col)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t k = filter_dims->h * filter_dims->w * in_c;
    if (fast_1x1) {
        tr_expand_s8_to_s16(input_data + (oy * in_w + ox) * in_c, col, k, k_pad, 1);
        return;
    }
    int8_t *dst = stage;
    for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
        const int32_t iy = oy * conv_params->stride.h - conv_params->padding.h + ky;
        for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t ix = ox * conv_params->stride.w - conv_params->padding.w + kx;
            if (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) {
                memcpy(dst, input_data + (iy * in_w + ix) * in_c, (size_t)in_c);
            } else {
                memset(dst, conv_params->pad_value, (size_t)in_c);
            }
            dst += in_c;
        }
    }
    tr_expand_s8_to_s16(stage, col, k, k_pad, 1);
}
#endif

int32_t tr_convolve_s8_s8_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    return 11 * (((k + 4 - 1) / 4) * 4);
}

tr_nn_status tr_convolve_s8_s8(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
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
    const int32_t out_c = filter_dims->n;
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t stride_h = conv_params->stride.h;
    const int32_t stride_w = conv_params->stride.w;
    const int32_t pad_top = conv_params->padding.h;
    const int32_t pad_left = conv_params->padding.w;
    const int32_t bias_shift = conv_params->bias_shift;
    const int32_t k = k_h * k_w * in_c;
    const int32_t row_bytes = tr_row_bytes_s8(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (filter_dims->c != in_c || output_dims->c != out_c || k <= 0 || out_c <= 0 || stride_h < 1 ||
        stride_w < 1 || pad_top < 0 || pad_left < 0 || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_convolve_s8_s8_get_buffer_size(input_dims, filter_dims)) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t bias_scale = (int32_t)1 << bias_shift;
    const int32_t fast_1x1 = k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
                             pad_left == 0 && out_h <= in_h && out_w <= in_w;

#if TR_NN_USE_DSP
    /* Output pixels go in blocks of four so that one weight decode feeds four columns. */
    const int32_t k_pad = ((k + 4 - 1) / 4) * 4;
    int16_t *blocks = (int16_t *)ctx->buf;     /* 4 interleaved columns: 8 * k_pad bytes */
    int16_t *col = blocks + 4 * k_pad;         /* one natural-order column: 2 * k_pad bytes */
    int8_t *stage = (int8_t *)(col + k_pad);   /* int8 im2col staging: k_pad bytes */
    const int32_t n_pix = out_h * out_w;
    for (int32_t p = 0; p < n_pix; p += 4) {
        const int32_t count = n_pix - p < 4 ? n_pix - p : 4;
        for (int32_t j = 0; j < 4; ++j) {
            if (j < count) {
                tr_conv_s8_column(conv_params, input_dims, input_data, filter_dims, (p + j) / out_w,
                                   (p + j) % out_w, fast_1x1, k_pad, stage, col);
            } else {
                memset(col, 0, (size_t)k_pad * sizeof(int16_t)); /* unused lane: defined, discarded */
            }
            tr_interleave_column(col, blocks, j, k_pad, 4);
        }
        int8_t *out = output_data + p * out_c;
        for (int32_t o = 0; o < out_c; ++o) {
            int32_t acc[4] = {0, 0, 0, 0};
            tr_dot4_s8_dsp(blocks, filter_data + o * row_bytes, k_pad / 4, acc);
            for (int32_t j = 0; j < count; ++j) {
                out[j * out_c + o] = tr_output_stage(tr_add_bias(acc[j], bias_scale, bias_data, o), mult[o], shift[o],
                                                     conv_params->output_offset, &conv_params->activation);
            }
        }
    }
#else
    tr_convolve_plain(TR_FMT_S8, conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes,
                      bias_scale, bias_data, fast_1x1, output_dims, output_data);
#endif
    return TR_NN_SUCCESS;
}
