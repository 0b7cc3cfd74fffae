/*
 * tr_convolve_s8_t2.c - 2-D convolution: int8 activations, "t2r16-v1" 2-bit ternary weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in], filter rows per output channel in order
 * [KH][KW][C_in] (K = KH * KW * C_in weights per row), bias [C_out] (may be NULL = 0),
 * output [1, OH, OW, C_out]. acc = sum(w * x) * 2^bias_shift + bias[o] (bias_shift from
 * conv_params, in [0, 16]; the scaling is per output, after the MACs), padded taps reading
 * pad_value; out = clamp(requantize(acc) + output_offset, activation).
 *
 * Scratch (same size on every build so the arena plan does not depend on the path):
 * 12 * Kp bytes, Kp = K rounded up to 16; an 8-byte aligned buffer is required. The DSP path
 * keeps six interleaved int16 im2col columns (output pixels go in sixes so that one weight decode
 * feeds six MAC chains): per group of four k, 6 pixels x 4 int16. Each column is written straight
 * into its slot (four channels per LDR + two SXTB16 + two PKH when C_in % 4 == 0, one value at a time
 * otherwise), each output channel's requantisation constants are prepared once for its six pixels,
 * and the inner loop (tr_dot6_t2_dsp) is hand-scheduled: 21 instructions per 24 MACs.
 */
#include "tr_convolve_plain.h"

#if TR_NN_USE_DSP
#define TR_T2_PIX 6              /* output pixels per block */
#define TR_T2_GROUP (4 * TR_T2_PIX) /* int16 per group of four k: 6 pixels x 4 values */

/* Four int8 values -> their slot in the blocked layout: (x0, x1), (x2, x3) as int16 pairs, stored
 * with one STRD (slots are 8-byte aligned). */
static inline void tr_put4(int16_t *dst, uint32_t w)
{
    const uint32_t even = (uint32_t)__sxtb16(w); /* (x0, x2) */
    const uint32_t odd = tr_sxtb16_ror8(w);      /* (x1, x3) */
    const uint64_t pairs = (uint64_t)tr_pack_lo(even, odd) | ((uint64_t)tr_pack_hi(even, odd) << 32);
    memcpy(__builtin_assume_aligned(dst, 8), &pairs, sizeof pairs);
}

/* in_c (a multiple of 4) channels of one input pixel into consecutive groups of a slot; two groups
 * per iteration from one 8-byte load. */
static inline void tr_put_pixel(int16_t *dst, const int8_t *src, int32_t in_c)
{
    int32_t c = 0;
    for (; c + 8 <= in_c; c += 8) {
        const uint64_t v = tr_load_u64(src + c);
        tr_put4(dst, (uint32_t)v);
        tr_put4(dst + TR_T2_GROUP, (uint32_t)(v >> 32));
        dst += 2 * TR_T2_GROUP;
    }
    if (c < in_c) {
        tr_put4(dst, tr_load_u32(src + c));
    }
}

static inline void tr_put_pad(int16_t *dst, int32_t pad_value, int32_t in_c)
{
    const uint32_t pair = (uint32_t)(uint16_t)(int16_t)pad_value * 0x00010001u;
    const uint64_t pairs = (uint64_t)pair | ((uint64_t)pair << 32);
    for (int32_t c = 0; c < in_c; c += 4) {
        memcpy(__builtin_assume_aligned(dst, 8), &pairs, sizeof pairs);
        dst += TR_T2_GROUP;
    }
}

/* Pixel (oy, ox)'s int16 im2col column (K values in [KH][KW][C_in] order, zero up to k_pad) into
 * slot j of the blocked layout. */
static void tr_conv_t2_fill_slot(const tr_nn_conv_params *conv_params, const tr_nn_dims *input_dims,
                                 const int8_t *input_data, const tr_nn_dims *filter_dims, int32_t oy, int32_t ox,
                                 int32_t k_pad, int16_t *blocks, int32_t j)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    const int32_t pad_value = conv_params->pad_value;
    int16_t *slot = blocks + 4 * j;
    int32_t i = 0; /* k index */
    for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
        const int32_t iy = oy * conv_params->stride.h - conv_params->padding.h + ky;
        for (int32_t kx = 0; kx < filter_dims->w; ++kx) {
            const int32_t ix = ox * conv_params->stride.w - conv_params->padding.w + kx;
            const int32_t valid = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            const int8_t *src = valid ? input_data + (iy * in_w + ix) * in_c : NULL;
            if (in_c % 4 == 0) { /* then i % 4 == 0 here: whole groups */
                int16_t *dst = slot + (i / 4) * TR_T2_GROUP;
                if (valid) {
                    tr_put_pixel(dst, src, in_c);
                } else {
                    tr_put_pad(dst, pad_value, in_c);
                }
                i += in_c;
            } else {
                for (int32_t c = 0; c < in_c; ++c, ++i) {
                    slot[(i / 4) * TR_T2_GROUP + i % 4] = (int16_t)(valid ? src[c] : pad_value);
                }
            }
        }
    }
    for (; i < k_pad; ++i) {
        slot[(i / 4) * TR_T2_GROUP + i % 4] = 0;
    }
}

#endif

int32_t tr_convolve_s8_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    return 12 * (((k + 16 - 1) / 16) * 16);
}

tr_nn_status tr_convolve_s8_t2(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
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
    const int32_t row_bytes = tr_row_bytes_t2(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (filter_dims->c != in_c || output_dims->c != out_c || k <= 0 || out_c <= 0 || stride_h < 1 ||
        stride_w < 1 || pad_top < 0 || pad_left < 0 || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_convolve_s8_t2_get_buffer_size(input_dims, filter_dims)) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t bias_scale = (int32_t)1 << bias_shift;
    const int32_t fast_1x1 = k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
                             pad_left == 0 && out_h <= in_h && out_w <= in_w;

#if TR_NN_USE_DSP
    /* Output pixels go in blocks of six so that one weight decode feeds six columns. */
    const int32_t k_pad = ((k + 16 - 1) / 16) * 16;
    int16_t *blocks = (int16_t *)ctx->buf; /* 6 interleaved columns: 12 * k_pad bytes */
    const int32_t n_pix = out_h * out_w;
    const int32_t offset = conv_params->output_offset;
    const int32_t lo = conv_params->activation.min;
    const int32_t hi = conv_params->activation.max;
    (void)fast_1x1; /* the slot fill reads a 1x1 window directly already */
    for (int32_t p = 0; p < n_pix; p += TR_T2_PIX) {
        const int32_t count = n_pix - p < TR_T2_PIX ? n_pix - p : TR_T2_PIX;
        for (int32_t j = 0; j < TR_T2_PIX; ++j) {
            if (j < count) {
                tr_conv_t2_fill_slot(conv_params, input_dims, input_data, filter_dims, (p + j) / out_w,
                                     (p + j) % out_w, k_pad, blocks, j);
            } else {
                for (int32_t g = 0; g < k_pad / 4; ++g) { /* unused lane: defined, discarded */
                    memset(blocks + g * TR_T2_GROUP + 4 * j, 0, 4 * sizeof(int16_t));
                }
            }
        }
        int8_t *out = output_data + p * out_c;
        for (int32_t o = 0; o < out_c; ++o) {
            int32_t acc[TR_T2_PIX] = {0, 0, 0, 0, 0, 0};
            tr_dot6_t2_dsp(blocks, filter_data + o * row_bytes, k_pad / 16, acc);
            const tr_rq rq = tr_rq_prepare(mult[o], shift[o], bias_data, o);
            int8_t *dst = out + o;
            if (count == TR_T2_PIX) { /* straight-line: the accumulators stay in registers */
                dst[0] = tr_rq_apply(&rq, acc[0], bias_scale, offset, lo, hi);
                dst[out_c] = tr_rq_apply(&rq, acc[1], bias_scale, offset, lo, hi);
                dst[2 * out_c] = tr_rq_apply(&rq, acc[2], bias_scale, offset, lo, hi);
                dst[3 * out_c] = tr_rq_apply(&rq, acc[3], bias_scale, offset, lo, hi);
                dst[4 * out_c] = tr_rq_apply(&rq, acc[4], bias_scale, offset, lo, hi);
                dst[5 * out_c] = tr_rq_apply(&rq, acc[5], bias_scale, offset, lo, hi);
            } else {
                for (int32_t j = 0; j < count; ++j) {
                    dst[j * out_c] = tr_rq_apply(&rq, acc[j], bias_scale, offset, lo, hi);
                }
            }
        }
    }
#else
    tr_convolve_plain(TR_FMT_T2, conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes,
                      bias_scale, bias_data, fast_1x1, output_dims, output_data);
#endif
    return TR_NN_SUCCESS;
}
