/*
 * tr_conv_pairs.h - the DSP path shared by tr_convolve_s8_t2 and tr_convolve_s8_t5 (internal): two
 * pixels x two output channels per 64-bit SMLAL.
 *
 * For a pixel pair (p, q) and a tap k the scratch holds the int32 X = x_p[k] + x_q[k] * 2^15; for an
 * output channel pair (a, b) the tap's ternary weights give W = w_a[k] + w_b[k] * 2^30 (decoded by the
 * format's own inner loop: tr_dot8x2_t2, tr_dot8x2_t5). Then
 *   X * W = x_p w_a + x_q w_a 2^15 + x_p w_b 2^30 + x_q w_b 2^45,
 * and a 64-bit SMLAL accumulates four MACs into four 15-bit fields. Every field of a chunk of at most
 * TR_CP_MAX_CHUNK_TAPS = 112 taps holds a sum in [-112 * 128, 112 * 128] inside [-2^14, 2^14): the
 * accumulator starts at TR_CP_FIELD_BIAS (2^14 in every field), so each field stays in [0, 2^15) and
 * never borrows from or carries into its neighbour; field i is bits [15 i, 15 i + 15). At the end of a
 * chunk the fields are flushed into int32 totals (TR_CP_FLUSH*), and the caller removes the biases.
 * Eight pixels (four pairs) share each W: per tap two LDRD and four SMLAL after the decode.
 */
#ifndef TR_CONV_PAIRS_H
#define TR_CONV_PAIRS_H

#include "tr_nn_support.h"

#if TR_NN_USE_DSP
#define TR_CP_PIX 8                                     /* output pixels per block */
#define TR_CP_PAIRS (TR_CP_PIX / 2)
#define TR_CP_FIELD_LO 0x20004000u /* 2^14 + 2^29: low word of 2^14 (1 + 2^15 + 2^30 + 2^45) */
#define TR_CP_FIELD_HI 0x08001000u /* 2^12 + 2^27: its high word */
#define TR_CP_FIELD_BIAS 16384
#define TR_CP_MAX_CHUNK_TAPS 112   /* taps per chunk at most: 112 * 128 < 2^14 */
#define TR_STR2(x) #x
#define TR_STR(x) TR_STR2(x)

/* One pixel pair's accumulator (low word l, high word h; pair j at byte offset 8 j of each half of the
 * totals): its four biased fields are added to tot[2 j], tot[2 j + 1] (channel a) and tot[8 + 2 j],
 * tot[8 + 2 j + 1] (channel b). F0 = l[14:0], F1 = l[29:15], F2 = h[12:0]:l[31:30], F3 = h >> 13. */
#define TR_CP_FLUSH(l, h, oa, ob)                                 \
    "ubfx   %[w], %[" #l "], #0, #15\n\t"                          \
    "ldrd   %[x0], %[x1], [%[wa], #" #oa "]\n\t"                   \
    "add    %[x0], %[x0], %[w]\n\t"                                \
    "ubfx   %[w], %[" #l "], #15, #15\n\t"                         \
    "add    %[x1], %[x1], %[w]\n\t"                                \
    "strd   %[x0], %[x1], [%[wa], #" #oa "]\n\t"                   \
    "lsr    %[w], %[" #l "], #30\n\t"                              \
    "bfi    %[w], %[" #h "], #2, #13\n\t"                          \
    "ldrd   %[x0], %[x1], [%[wa], #" #ob "]\n\t"                   \
    "add    %[x0], %[x0], %[w]\n\t"                                \
    "add    %[x1], %[x1], %[" #h "], lsr #13\n\t"                  \
    "strd   %[x0], %[x1], [%[wa], #" #ob "]\n\t"

/* The first chunk stores the fields instead (7 instructions per pair; no zeroed totals needed). */
#define TR_CP_FLUSH_FIRST(l, h, oa, ob)                           \
    "ubfx   %[x0], %[" #l "], #0, #15\n\t"                        \
    "ubfx   %[x1], %[" #l "], #15, #15\n\t"                       \
    "strd   %[x0], %[x1], [%[wa], #" #oa "]\n\t"                  \
    "lsr    %[x0], %[" #l "], #30\n\t"                            \
    "bfi    %[x0], %[" #h "], #2, #13\n\t"                        \
    "lsr    %[x1], %[" #h "], #13\n\t"                            \
    "strd   %[x0], %[x1], [%[wa], #" #ob "]\n\t"

/* One channel i (0..3) of a 4-channel group: the X words of pairs (s0, s1) and (s2, s3), one STRD. */
#define TR_CP_FILL_CH(i)                                               \
    "sbfx   %[a], %[v1], #(8*" #i "), #8\n\t"                          \
    "sbfx   %[b], %[v0], #(8*" #i "), #8\n\t"                          \
    "add    %[x0], %[b], %[a], lsl #15\n\t"                            \
    "sbfx   %[a], %[v3], #(8*" #i "), #8\n\t"                          \
    "sbfx   %[b], %[v2], #(8*" #i "), #8\n\t"                          \
    "add    %[x1], %[b], %[a], lsl #15\n\t"                            \
    "strd   %[x0], %[x1], [%[dst], #(16*" #i ")]\n\t"

/* n values of four pixels (sources s[0..3], each advancing) into the X words of pairs (s0, s1), (s2, s3)
 * at dst (4 words per tap, two used); returns the next tap's dst. */
static inline int32_t *tr_cp_fill_run(int32_t *dst, const int8_t *const src[4], int32_t n)
{
    const int8_t *s0 = src[0];
    const int8_t *s1 = src[1];
    const int8_t *s2 = src[2];
    const int8_t *s3 = src[3];
    const int32_t n4 = n & ~3;
    if (n4 > 0) {
        int32_t *const dst_end = dst + 4 * n4;
        uint32_t v0, v1, v2, v3, a, b, x0w, x1w;
        __asm__ volatile("1:\n\t"
                         "ldr    %[v0], [%[s0]], #4\n\t"
                         "ldr    %[v1], [%[s1]], #4\n\t"
                         "ldr    %[v2], [%[s2]], #4\n\t"
                         "ldr    %[v3], [%[s3]], #4\n\t"
                         TR_CP_FILL_CH(0) TR_CP_FILL_CH(1) TR_CP_FILL_CH(2) TR_CP_FILL_CH(3)
                         "adds   %[dst], %[dst], #64\n\t"
                         "cmp    %[dst], %[end]\n\t"
                         "bne    1b\n\t"
                         : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [dst] "+r"(dst),
                           [v0] "=&r"(v0), [v1] "=&r"(v1), [v2] "=&r"(v2), [v3] "=&r"(v3), [a] "=&r"(a),
                           [b] "=&r"(b), [x0] "=&r"(x0w), [x1] "=&r"(x1w)
                         : [end] "r"(dst_end)
                         : "cc", "memory");
    }
    for (int32_t c = n4; c < n; ++c) {
        dst[0] = *s0++ + *s1++ * 32768;
        dst[1] = *s2++ + *s3++ * 32768;
        dst += 4;
    }
    return dst;
}

/* The X words of the block's pixels p .. p + 7 (count of them real) for taps 0 .. k_pad - 1:
 * X[4 k + j] = x_(2j)[k] + x_(2j+1)[k] * 2^15, taps >= K read 0. A padded tap reads the pad row
 * (in_c bytes of pad_value at the end of the scratch), and so does a missing pixel (its outputs are
 * discarded). Two pixel pairs at a time; per 4 channels 4 LDR and, per channel, 4 SBFX, 2 ADD and one
 * STRD of the two pairs' words: 4 instructions per X word. */
static void tr_cp_fill(const tr_nn_conv_params *cp, const tr_nn_dims *input_dims, const int8_t *input,
                            const tr_nn_dims *filter_dims, int32_t out_w, int32_t p, int32_t count, int32_t k_pad,
                            int32_t *xw, const int8_t *pad_row)
{
    const int32_t in_h = input_dims->h;
    const int32_t in_w = input_dims->w;
    const int32_t in_c = input_dims->c;
    int32_t y0[TR_CP_PIX];
    int32_t x0[TR_CP_PIX];
    for (int32_t t = 0; t < TR_CP_PIX; ++t) {
        const int32_t q = p + t;
        y0[t] = t < count ? (q / out_w) * cp->stride.h - cp->padding.h : -1000000;
        x0[t] = t < count ? (q % out_w) * cp->stride.w - cp->padding.w : -1000000;
    }
    const int32_t k_w = filter_dims->w;
    for (int32_t jj = 0; jj < TR_CP_PAIRS; jj += 2) {
        int32_t *dst = xw + jj;
        for (int32_t ky = 0; ky < filter_dims->h; ++ky) {
            /* a window row lying inside the input for all four pixels is k_w * in_c contiguous bytes each */
            int32_t row_inside = 1;
            for (int32_t t = 0; t < 4; ++t) {
                const int32_t pix = 2 * jj + t;
                const int32_t iy = y0[pix] + ky;
                row_inside = row_inside && iy >= 0 && iy < in_h && x0[pix] >= 0 && x0[pix] + k_w <= in_w;
            }
            if (row_inside) {
                const int8_t *src[4];
                for (int32_t t = 0; t < 4; ++t) {
                    const int32_t pix = 2 * jj + t;
                    src[t] = input + ((y0[pix] + ky) * in_w + x0[pix]) * in_c;
                }
                dst = tr_cp_fill_run(dst, src, k_w * in_c);
                continue;
            }
            for (int32_t kx = 0; kx < k_w; ++kx) {
                const int8_t *src[4];
                for (int32_t t = 0; t < 4; ++t) {
                    const int32_t pix = 2 * jj + t;
                    const int32_t iy = y0[pix] + ky;
                    const int32_t ix = x0[pix] + kx;
                    const int32_t valid = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
                    src[t] = valid ? input + (iy * in_w + ix) * in_c : pad_row;
                }
                dst = tr_cp_fill_run(dst, src, in_c);
            }
        }
        for (int32_t k = filter_dims->h * filter_dims->w * in_c; k < k_pad; ++k) {
            dst[0] = 0;
            dst[1] = 0;
            dst += 4;
        }
    }
}
#undef TR_CP_FILL_CH

/* Requantise and store the `count` outputs of one channel from their field sums f[0..7]; bias_total is
 * the sum of the field biases (TR_CP_FIELD_BIAS per chunk). Full int8 range: SSAT clamps. */
__attribute__((always_inline)) static inline void tr_cp_store(int32_t mult, int32_t shift, int32_t bias,
                                                                   const int32_t *f, int32_t bias_total,
                                                                   int32_t bias_scale, int32_t offset, int32_t lo,
                                                                   int32_t hi, int8_t *dst, int32_t stride,
                                                                   int32_t count)
{
    tr_rq rq = tr_rq_prepare(mult, shift, NULL, 0);
    rq.bias = bias - bias_total * bias_scale; /* acc = (f - bias_total) * bias_scale + bias */
    if (count == TR_CP_PIX && lo == -128 && hi == 127 && rq.right >= 1 && rq.right <= 23) {
        /* Per output: LDR, MLA (bias), AND / ADDS / ADC / SMLAL / ASR (tr_rq_rn, the output offset joined
         * to the rounding constant's high word as in tr_add_s8.c), SSAT, STRB; one ADD per two. */
        const int32_t *fp = f;
        const int32_t chi = rq.chi + (int32_t)((uint32_t)offset << (uint32_t)rq.rm1);
        uint32_t a, t, plo, phi;
#define TR_CP_RQ_ONE(where)                                   \
        "ldr    %[a], [%[fp]], #4\n\t"                       \
        "mla    %[a], %[a], %[bs], %[b]\n\t"                 \
        "and    %[t], %[a], #0x80000000\n\t"                 \
        "adds   %[plo], %[clo], %[t]\n\t"                    \
        "adc    %[phi], %[chi], %[t], asr #31\n\t"           \
        "smlal  %[plo], %[phi], %[a], %[m]\n\t"              \
        "asr    %[phi], %[phi], %[rm1]\n\t"                  \
        "ssat   %[phi], #8, %[phi]\n\t"                      \
        "strb   %[phi], " where "\n\t"
#define TR_CP_RQ_TWO TR_CP_RQ_ONE("[%[dst]]") TR_CP_RQ_ONE("[%[dst], %[stride]]") \
        "add    %[dst], %[dst], %[stride], lsl #1\n\t"
        __asm__ volatile(TR_CP_RQ_TWO TR_CP_RQ_TWO TR_CP_RQ_TWO TR_CP_RQ_TWO
                         : [a] "=&r"(a), [t] "=&r"(t), [plo] "=&r"(plo), [phi] "=&r"(phi), [fp] "+r"(fp),
                           [dst] "+r"(dst)
                         : [bs] "r"(bias_scale), [b] "r"(rq.bias), [clo] "r"(rq.clo), [chi] "r"(chi),
                           [m] "r"(rq.mult), [rm1] "r"(rq.rm1), [stride] "r"(stride)
                         : "cc", "memory");
#undef TR_CP_RQ_TWO
#undef TR_CP_RQ_ONE
    } else {
        for (int32_t j = 0; j < count; ++j) {
            dst[j * stride] = tr_rq_apply(&rq, f[j], bias_scale, offset, lo, hi);
        }
    }
}

/* Both channels of a pair, 8 pixels each, in one go (count == 8, full int8 range, 2 <= right <= 23 for
 * every channel: checked once per call). cst = {b, chi, mult, right - 1} for channel a then b, with
 * b = bias - bias_total * bias_scale and chi = 2^(right-2) + offset * 2^(right-1): the rounding
 * constant's high word with the output offset in it (its low word is 2^30). Per output LDR, MLA,
 * AND / ADDS / ADC / SMLAL / ASR, SSAT, STRB and half an ADD; per channel two LDRD of its constants. */
static inline void tr_cp_store2(const int32_t *f, int8_t *dst, int32_t stride, int32_t bias_scale,
                                     const int32_t cst[8])
{
    uint32_t a, t, plo, phi, b, chi, m, rm1;
#define TR_CP_RQ2(where)                                      \
    "ldr    %[a], [%[f]], #4\n\t"                              \
    "mla    %[a], %[a], %[bs], %[b]\n\t"                       \
    "and    %[t], %[a], #0x80000000\n\t"                       \
    "adds   %[plo], %[t], #0x40000000\n\t"                     \
    "adc    %[phi], %[chi], %[t], asr #31\n\t"                 \
    "smlal  %[plo], %[phi], %[a], %[m]\n\t"                    \
    "asr    %[phi], %[phi], %[rm1]\n\t"                        \
    "ssat   %[phi], #8, %[phi]\n\t"                            \
    "strb   %[phi], " where "\n\t"
#define TR_CP_RQ2_TWO TR_CP_RQ2("[%[dst]]") TR_CP_RQ2("[%[dst], %[stride]]") \
    "add    %[dst], %[dst], %[stride], lsl #1\n\t"
    __asm__ volatile("ldrd   %[b], %[chi], [%[cst]]\n\t"
                     "ldrd   %[m], %[rm1], [%[cst], #8]\n\t"
                     TR_CP_RQ2_TWO TR_CP_RQ2_TWO TR_CP_RQ2_TWO TR_CP_RQ2_TWO
                     "sub    %[dst], %[dst], %[stride], lsl #3\n\t"
                     "adds   %[dst], %[dst], #1\n\t"
                     "ldrd   %[b], %[chi], [%[cst], #16]\n\t"
                     "ldrd   %[m], %[rm1], [%[cst], #24]\n\t"
                     TR_CP_RQ2_TWO TR_CP_RQ2_TWO TR_CP_RQ2_TWO TR_CP_RQ2_TWO
                     : [a] "=&r"(a), [t] "=&r"(t), [plo] "=&r"(plo), [phi] "=&r"(phi), [b] "=&r"(b), [chi] "=&r"(chi),
                       [m] "=&r"(m), [rm1] "=&r"(rm1), [f] "+r"(f), [dst] "+r"(dst)
                     : [bs] "r"(bias_scale), [stride] "r"(stride), [cst] "r"(cst)
                     : "cc", "memory");
#undef TR_CP_RQ2_TWO
#undef TR_CP_RQ2
}
/* The inner product of one block: tot[16] = the biased field sums (channel a: [0, 8), b: [8, 16)) of
 * rows a (ra) and b (ra + rbo) over n_units code units (t2: words, trit5: bytes) against the X words
 * at col; `chunks` chunks, each adding TR_CP_FIELD_BIAS to every field. */
typedef void (*tr_cp_dot_fn)(const int32_t *col, const uint8_t *ra, int32_t rbo, int32_t n_units, int32_t *tot);

/* The DSP path of tr_convolve_s8_t2 / _t5 (arguments validated by the caller): blocks of eight output
 * pixels, X words in scratch (16 * k_pad bytes, then a pad row of C_in bytes), channel pairs through
 * `dot` and the requantisation of tr_cp_store2 (or tr_cp_store). */
__attribute__((always_inline)) static inline void
tr_conv_pairs_dsp(const tr_nn_conv_params *conv_params, const int32_t *mult, const int32_t *shift,
                  const tr_nn_dims *input_dims, const int8_t *input_data, const tr_nn_dims *filter_dims,
                  const uint8_t *filter_data, int32_t row_bytes, const int32_t *bias_data, int32_t bias_scale,
                  const tr_nn_dims *output_dims, int8_t *output_data, void *scratch, int32_t k_pad, int32_t n_units,
                  int32_t chunks, tr_cp_dot_fn dot)
{
    const int32_t in_c = input_dims->c;
    const int32_t out_c = filter_dims->n;
    const int32_t out_w = output_dims->w;
    int32_t *xw = (int32_t *)scratch; /* 4 pixel pairs x k_pad taps: 16 * k_pad bytes */
    int8_t *pad_row = (int8_t *)scratch + 16 * k_pad; /* then in_c (<= k_pad) bytes of pad_value */
    memset(pad_row, conv_params->pad_value, (size_t)in_c);
    const int32_t n_pix = output_dims->h * out_w;
    const int32_t offset = conv_params->output_offset;
    const int32_t lo = conv_params->activation.min;
    const int32_t hi = conv_params->activation.max;
    const int32_t bias_total = chunks * TR_CP_FIELD_BIAS; /* the field biases summed over the chunks */
    const int32_t bias_total_scaled = bias_total * bias_scale;
    int32_t pair_fast = lo == -128 && hi == 127; /* tr_cp_store2 for every channel pair */
    for (int32_t o = 0; o < out_c && pair_fast; ++o) {
        pair_fast = shift[o] <= -2 && shift[o] >= -23;
    }
    for (int32_t p = 0; p < n_pix; p += TR_CP_PIX) {
        const int32_t count = n_pix - p < TR_CP_PIX ? n_pix - p : TR_CP_PIX;
        tr_cp_fill(conv_params, input_dims, input_data, filter_dims, out_w, p, count, k_pad, xw, pad_row);
        int8_t *out = output_data + p * out_c;
        for (int32_t o = 0; o < out_c; o += 2) {
            const uint8_t *ra = filter_data + o * row_bytes;
            const int32_t rbo = o + 1 < out_c ? row_bytes : 0; /* odd last channel: b repeats a, unused */
            int32_t tot[2 * TR_CP_PIX] __attribute__((aligned(8))); /* channel a: [0, 8), b: [8, 16) */
            dot(xw, ra, rbo, n_units, tot);
            if (pair_fast && count == TR_CP_PIX && o + 1 < out_c) {
                int32_t cst[8] __attribute__((aligned(8)));
                for (int32_t i = 0; i < 2; ++i) {
                    const int32_t rm1 = -shift[o + i] - 1;
                    cst[4 * i] = (bias_data != NULL ? bias_data[o + i] : 0) - bias_total_scaled;
                    cst[4 * i + 1] = (int32_t)((1u << (uint32_t)(rm1 - 1)) + ((uint32_t)offset << (uint32_t)rm1));
                    cst[4 * i + 2] = mult[o + i];
                    cst[4 * i + 3] = rm1;
                }
                tr_cp_store2(tot, out + o, out_c, bias_scale, cst);
                continue;
            }
            tr_cp_store(mult[o], shift[o], bias_data != NULL ? bias_data[o] : 0, tot, bias_total, bias_scale, offset,
                        lo, hi, out + o, out_c, count);
            if (o + 1 < out_c) {
                tr_cp_store(mult[o + 1], shift[o + 1], bias_data != NULL ? bias_data[o + 1] : 0, tot + TR_CP_PIX,
                            bias_total, bias_scale, offset, lo, hi, out + o + 1, out_c, count);
            }
        }
    }
}
#endif /* TR_NN_USE_DSP */

#endif /* TR_CONV_PAIRS_H */
