/*
 * tr_depthwise_conv_s16_core.h - the body shared by tr_depthwise_conv_s16_{t2,t5,s8}.
 *
 * The three public functions differ only in how a weight is read from a packed row; each calls
 * this static inline core with its format as a compile-time constant, so the compiler emits one
 * specialised copy per file. Layouts and ranges: see the public functions' header comments and tr_nn.h.
 */
#ifndef TR_DEPTHWISE_CONV_S16_CORE_H
#define TR_DEPTHWISE_CONV_S16_CORE_H

#include "tr_nn_support.h"

/* The plain-C loop decodes a channel's weights once when it has at most this many taps (256 bytes of stack). */
#define TR_DW16_CACHED_TAPS 64

#if TR_NN_USE_DSP
/* Channels whose weights one block decodes (on the stack, 4 bytes per channel pair and tap), and the
 * most taps the block path takes (7 x 7): 16 * 49 * 2 bytes = 1.5 KB of weights, 3 KB with the tap
 * tables and output stages (tr_dw16_frame), as much as the s8 kernels' plane path. */
#define TR_DW16_BLOCK 16
#define TR_DW16_MAX_TAPS 49

/* acc[0..3] = sum(w * x) of four adjacent channels over `taps` taps: tap t reads the channels' int16
 * values at base + off[t] (bytes) against the weight pairs at w + t * TR_DW16_BLOCK / 2 words. */
__attribute__((always_inline)) static inline void tr_dw16_group(uintptr_t base, const int32_t *off, const uint32_t *w,
                                                                int32_t taps, int32_t acc[4])
{
    int32_t a0 = 0;
    int32_t a1 = 0;
    int32_t a2 = 0;
    int32_t a3 = 0;
#pragma GCC unroll 9
    for (int32_t t = 0; t < taps; ++t) {
        const uint8_t *x = (const uint8_t *)(base + (uintptr_t)(intptr_t)off[t]);
        const int32_t x01 = (int32_t)tr_load_u32(x);
        const int32_t x23 = (int32_t)tr_load_u32(x + 4);
        const uint64_t w4 = tr_load_u64(w + t * (TR_DW16_BLOCK / 2)); /* one LDRD: (w0, w1), (w2, w3) */
        a0 = __smlabb(x01, (int32_t)(uint32_t)w4, a0);
        a1 = __smlatt(x01, (int32_t)(uint32_t)w4, a1);
        a2 = __smlabb(x23, (int32_t)(uint32_t)(w4 >> 32), a2);
        a3 = __smlatt(x23, (int32_t)(uint32_t)(w4 >> 32), a3);
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Output stages of a block: TR_DW16_SAT every channel a rounding right shift (tr_rq_rn) onto the whole
 * int16 range (SSAT #16), TR_DW16_RELU the same onto [0, 32767] (USAT #15: a relu on a zero-point-0 grid),
 * TR_DW16_ANY any shift and clamp (tr_rq_requantize, tr_clamp). */
enum { TR_DW16_ANY = 0, TR_DW16_SAT = 1, TR_DW16_RELU = 2 };

/* What every output pixel of a block reads (set up once per block by tr_dw16_block). */
typedef struct {
    uint32_t wq[TR_DW16_MAX_TAPS][TR_DW16_BLOCK / 2] __attribute__((aligned(8))); /* [tap][c / 2]: (w[c], w[c+1]) */
    int16_t pad[TR_DW16_BLOCK];
    int32_t tap_y[TR_DW16_MAX_TAPS];
    int32_t tap_x[TR_DW16_MAX_TAPS];
    int32_t tap_off[TR_DW16_MAX_TAPS];  /* byte offsets of the taps from the window corner, inside the input */
    int32_t edge_off[TR_DW16_MAX_TAPS]; /* the same for a window that crosses the border */
    tr_rq rq[TR_DW16_BLOCK];
} tr_dw16_frame;

/* The output pixels of a block with output stage `mode` (a constant at each call: one copy per mode). */
__attribute__((always_inline)) static inline void
tr_dw16_pixels(int32_t mode, tr_dw16_frame *f, const tr_nn_dw_conv_params *p, const tr_nn_dims *input_dims,
               const int16_t *input, const tr_nn_dims *filter_dims, const tr_nn_dims *output_dims, int16_t *output,
               int32_t c0, int32_t nc)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
    const int32_t k_h = filter_dims->h;
    const int32_t k_w = filter_dims->w;
    const int32_t taps = k_h * k_w;
    const int32_t bias_shift = p->bias_shift;
    const int32_t offset = p->output_offset;
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    for (int32_t oy = 0; oy < output_dims->h; ++oy) {
        const int32_t y0 = oy * p->stride.h - p->padding.h;
        for (int32_t ox = 0; ox < output_dims->w; ++ox) {
            const int32_t x0 = ox * p->stride.w - p->padding.w;
            /* the window corner's address, possibly outside the input: kept as an integer until a tap's
             * offset brings it inside (or onto pad) */
            const uintptr_t base =
                (uintptr_t)input + (uintptr_t)(intptr_t)(((y0 * in_w + x0) * ch + c0) * (int32_t)sizeof(int16_t));
            const int32_t *off = f->tap_off;
            if (!(y0 >= 0 && y0 + k_h <= in_h && x0 >= 0 && x0 + k_w <= in_w)) {
                for (int32_t t = 0; t < taps; ++t) {
                    const int32_t iy = y0 + f->tap_y[t];
                    const int32_t ix = x0 + f->tap_x[t];
                    f->edge_off[t] = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                         ? f->tap_off[t]
                                         : (int32_t)((uintptr_t)f->pad - base); /* pad[g..g+3] for group g */
                }
                off = f->edge_off;
            }
            int16_t *out = output + (oy * output_dims->w + ox) * ch + c0;
            for (int32_t g = 0; g < nc; g += 4) {
                int32_t acc[4];
                if (taps == 9) { /* 3 x 3: unrolled */
                    tr_dw16_group(base + (uintptr_t)g * sizeof(int16_t), off, &f->wq[0][g / 2], 9, acc);
                } else {
                    tr_dw16_group(base + (uintptr_t)g * sizeof(int16_t), off, &f->wq[0][g / 2], taps, acc);
                }
                for (int32_t i = 0; i < 4; ++i) {
                    const tr_rq *r = &f->rq[g + i];
                    /* sum * 2^bias_shift as a shift in uint32 (the lowering keeps it within int32) */
                    const int32_t a = (int32_t)((uint32_t)acc[i] << (uint32_t)bias_shift) + r->bias;
                    if (mode == TR_DW16_SAT) {
                        out[g + i] = (int16_t)__ssat(tr_rq_rn(r, a) + offset, 16);
                    } else if (mode == TR_DW16_RELU) {
                        out[g + i] = (int16_t)__usat(tr_rq_rn(r, a) + offset, 15);
                    } else {
                        out[g + i] = (int16_t)tr_clamp(tr_rq_requantize(r, a) + offset, lo, hi);
                    }
                }
            }
        }
    }
}

/* Output channels [c0, c0 + nc) of a ch_mult == 1 depthwise convolution on int16 activations; nc a
 * multiple of 4, at most TR_DW16_BLOCK. The block's weights are decoded once into int16 pairs of
 * adjacent channels, (w[c], w[c + 1]) per tap; an output pixel then reads, per tap and group of four
 * channels, two words of activations (the four channels are adjacent in NHWC) and the two weight
 * words, and does four single MACs (SMLABB / SMLATT: bottom and top halves) into four accumulators:
 * about 10 instructions per 4 MACs with the tap's offset load. The accumulators hold sum(w * x) alone;
 * bias and 2^bias_shift are applied once per output (no bound on bias_shift, unlike the s8 weight pairs).
 * Not inlined: its 3 KB frame is only on the stack while it runs. */
__attribute__((noinline)) static void
tr_dw16_block(int32_t fmt, const tr_nn_dw_conv_params *p, const tr_nn_per_channel_quant_params *q,
              const tr_nn_dims *input_dims, const int16_t *input, const tr_nn_dims *filter_dims, const uint8_t *filter,
              int32_t row_bytes, const int32_t *bias, const tr_nn_dims *output_dims, int16_t *output, int32_t c0,
              int32_t nc)
{
    const int32_t in_w = input_dims->w;
    const int32_t ch = input_dims->c;
    const int32_t k_w = filter_dims->w;
    const int32_t taps = filter_dims->h * k_w;
    tr_dw16_frame f;
    for (int32_t i = 0; i < TR_DW16_BLOCK; ++i) {
        f.pad[i] = (int16_t)p->pad_value;
    }
    for (int32_t t = 0; t < taps; ++t) {
        f.tap_y[t] = t / k_w;
        f.tap_x[t] = t % k_w;
        f.tap_off[t] = (f.tap_y[t] * in_w + f.tap_x[t]) * ch * (int32_t)sizeof(int16_t);
        const uint8_t *row = filter + t * row_bytes;
        for (int32_t c = 0; c < nc; c += 2) {
            f.wq[t][c / 2] = tr_pair16(tr_weight_of(fmt, row, c0 + c), tr_weight_of(fmt, row, c0 + c + 1));
        }
    }
    int32_t rn = 1; /* every channel's requantisation ends in a rounding right shift */
    for (int32_t c = 0; c < nc; ++c) {
        f.rq[c] = tr_rq_prepare(q->multiplier[c0 + c], q->shift[c0 + c], bias, c0 + c);
        rn = rn && f.rq[c].right >= 1;
    }
    const int32_t lo = p->activation.min;
    const int32_t hi = p->activation.max;
    if (rn && lo == INT16_MIN && hi == INT16_MAX) {
        tr_dw16_pixels(TR_DW16_SAT, &f, p, input_dims, input, filter_dims, output_dims, output, c0, nc);
    } else if (rn && lo == 0 && hi == INT16_MAX) {
        tr_dw16_pixels(TR_DW16_RELU, &f, p, input_dims, input, filter_dims, output_dims, output, c0, nc);
    } else {
        tr_dw16_pixels(TR_DW16_ANY, &f, p, input_dims, input, filter_dims, output_dims, output, c0, nc);
    }
}
#endif

/* always_inline: one specialised copy per format. */
__attribute__((always_inline)) static inline tr_nn_status
tr_depthwise_conv_s16_core(int32_t fmt, const tr_nn_context *ctx, const tr_nn_dw_conv_params *dw_conv_params,
                           const tr_nn_per_channel_quant_params *quant_params, const tr_nn_dims *input_dims,
                           const int16_t *input_data, const tr_nn_dims *filter_dims, const uint8_t *filter_data,
                           const tr_nn_dims *bias_dims, const int32_t *bias_data, const tr_nn_dims *output_dims,
                           int16_t *output_data)
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
    const int32_t row_bytes = tr_row_bytes_of(fmt, out_c);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)ctx;
    (void)bias_dims;

    if (ch_mult < 1 || out_c != in_c * ch_mult || output_dims->c != out_c || k_h < 1 || k_w < 1 ||
        stride_h < 1 || stride_w < 1 || pad_top < 0 || pad_left < 0 || bias_shift < 0 ||
        bias_shift > TR_NN_MAX_BIAS_SHIFT || pad_value < INT16_MIN || pad_value > INT16_MAX) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t bias_scale = (int32_t)1 << bias_shift;
    int32_t o_begin = 0; /* channels below o_begin are done by the DSP block path */
#if TR_NN_USE_DSP
    if (ch_mult == 1 && k_h * k_w <= TR_DW16_MAX_TAPS) {
        o_begin = out_c & ~3;
        for (int32_t c0 = 0; c0 < o_begin; c0 += TR_DW16_BLOCK) {
            const int32_t nc = o_begin - c0 < TR_DW16_BLOCK ? o_begin - c0 : TR_DW16_BLOCK;
            tr_dw16_block(fmt, dw_conv_params, quant_params, input_dims, input_data, filter_dims, filter_data,
                          row_bytes, bias_data, output_dims, output_data, c0, nc);
        }
    }
#endif

    /* Channel by channel: its weights decoded once (when at most TR_DW16_CACHED_TAPS taps), then every
     * output pixel, windows inside the input without per-tap bounds checks. */
    int32_t w_cache[TR_DW16_CACHED_TAPS];
    const int32_t cached = k_h * k_w <= TR_DW16_CACHED_TAPS;
    for (int32_t o = o_begin; o < out_c; ++o) {
        const int32_t ci = o / ch_mult;
        const tr_rq rq = tr_rq_prepare(mult[o], shift[o], bias_data, o); /* the channel's output stage, once */
        if (cached) {
            for (int32_t t = 0; t < k_h * k_w; ++t) {
                w_cache[t] = tr_weight_of(fmt, filter_data + t * row_bytes, o);
            }
        }
        for (int32_t oy = 0; oy < out_h; ++oy) {
            const int32_t y0 = oy * stride_h - pad_top;
            for (int32_t ox = 0; ox < out_w; ++ox) {
                const int32_t x0 = ox * stride_w - pad_left;
                int32_t acc = 0;
                if (cached && y0 >= 0 && y0 + k_h <= in_h && x0 >= 0 && x0 + k_w <= in_w) {
                    const int16_t *win = input_data + (y0 * in_w + x0) * in_c + ci;
                    const int32_t *wt = w_cache;
                    for (int32_t ky = 0; ky < k_h; ++ky) {
                        for (int32_t kx = 0; kx < k_w; ++kx) {
                            acc += *wt++ * win[kx * in_c];
                        }
                        win += in_w * in_c;
                    }
                } else {
                    for (int32_t ky = 0; ky < k_h; ++ky) {
                        const int32_t iy = y0 + ky;
                        for (int32_t kx = 0; kx < k_w; ++kx) {
                            const int32_t ix = x0 + kx;
                            const int32_t x = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w)
                                                  ? input_data[(iy * in_w + ix) * in_c + ci]
                                                  : pad_value;
                            const int32_t t = ky * k_w + kx;
                            acc += (cached ? w_cache[t] : tr_weight_of(fmt, filter_data + t * row_bytes, o)) * x;
                        }
                    }
                }
                output_data[(oy * out_w + ox) * out_c + o] =
                    (int16_t)tr_clamp(tr_rq_requantize(&rq, acc * bias_scale + rq.bias) + dw_conv_params->output_offset,
                                      dw_conv_params->activation.min, dw_conv_params->activation.max);
            }
        }
    }
    return TR_NN_SUCCESS;
}

#endif /* TR_DEPTHWISE_CONV_S16_CORE_H */
