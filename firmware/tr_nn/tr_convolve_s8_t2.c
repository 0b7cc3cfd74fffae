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
 * 17 * Kp bytes, Kp = K rounded up to 16; an 8-byte aligned buffer is required. The DSP path keeps,
 * for a block of eight output pixels (four pairs), one int32 X word per pair and tap (16 * Kp bytes)
 * and a row of C_in pad bytes (<= Kp). Its inner loop (tr_dot8x2_t2) accumulates two pixels x two
 * output channels per 64-bit SMLAL in four 15-bit fields: 9 instructions per 16 MACs, plus 4 per 16
 * taps for the code words and a flush per chunk of 112 taps; both channels of a pair are requantised
 * in one asm block. First layers (C_in 1 or 2, 3x3, stride 1) take the int16-plane passes of
 * tr_plane3x3.h instead (3 KB of stack, no scratch used).
 */
#include "tr_convolve_plain.h"
#include "tr_conv_pairs.h"
#include "tr_plane3x3.h"

#if TR_NN_USE_DSP
/* ---- DSP path: tr_conv_pairs.h, with the t2 decode ----
 * t2 codes are 2-bit two's complement, so SBFX decodes w_a and AND + ADD-with-shift places w_b:
 * W = w_a + w_b * 2^30 in 3 instructions, then two LDRD and four SMLAL: 9 instructions per 16 MACs. */
#define TR_T2_CHUNK_WORDS 7 /* 112 taps: TR_CP_MAX_CHUNK_TAPS */

/* One tap i (0..15) of a code word: W from wa / wb, then the four pixel pairs at col + 16 i - 256
 * (col has already been advanced past the word's 16 taps by the first load). */
#define TR_T2_TAP(i, o0, o1)                                          \
    "sbfx   %[w], %[wa], #(2*" #i "), #2\n\t"                         \
    "and    %[x0], %[wb], #(3 << (2*" #i "))\n\t"                     \
    "add    %[w], %[w], %[x0], lsl #(30-2*" #i ")\n\t"                \
    "ldrd   %[x0], %[x1], [%[col], #" #o0 "]\n\t"                     \
    "smlal  %[l0], %[h0], %[x0], %[w]\n\t"                            \
    "smlal  %[l1], %[h1], %[x1], %[w]\n\t"                            \
    "ldrd   %[x0], %[x1], [%[col], #" #o1 "]\n\t"                     \
    "smlal  %[l2], %[h2], %[x0], %[w]\n\t"                            \
    "smlal  %[l3], %[h3], %[x1], %[w]\n\t"

/* tot[16] = the biased field sums of rows a (ra) and b (ra + rbo), nwords >= 1 code words, against the
 * X words at col (16 bytes per tap): chunks of at most TR_T2_CHUNK_WORDS words, each starting from
 * TR_CP_FIELD_BIAS in every field and flushed into tot at its end (stored by the first chunk, 7
 * instructions per pair; added by the others, 12). The
 * caller subtracts chunks * TR_CP_FIELD_BIAS. Per code word 16 x 9 instructions for the taps and 4
 * to fetch the two code words in a full chunk (straight-line), 8 with the loop control of the last, partial
 * chunk (the row pointers live on the stack: all 14 registers are taken). */
/* The 16 taps of one code word (wa, wb loaded); the first load advances col past the word. */
#define TR_T2_TAPS16                                                                          \
    "sbfx   %[w], %[wa], #0, #2\n\t"                                                         \
    "and    %[x0], %[wb], #3\n\t"                                                            \
    "add    %[w], %[w], %[x0], lsl #30\n\t"                                                  \
    "ldrd   %[x0], %[x1], [%[col]], #256\n\t"                                                \
    "smlal  %[l0], %[h0], %[x0], %[w]\n\t"                                                   \
    "smlal  %[l1], %[h1], %[x1], %[w]\n\t"                                                   \
    "ldrd   %[x0], %[x1], [%[col], #-248]\n\t"                                               \
    "smlal  %[l2], %[h2], %[x0], %[w]\n\t"                                                   \
    "smlal  %[l3], %[h3], %[x1], %[w]\n\t"                                                   \
    TR_T2_TAP(1, -240, -232) TR_T2_TAP(2, -224, -216) TR_T2_TAP(3, -208, -200)              \
    TR_T2_TAP(4, -192, -184) TR_T2_TAP(5, -176, -168) TR_T2_TAP(6, -160, -152)              \
    TR_T2_TAP(7, -144, -136) TR_T2_TAP(8, -128, -120) TR_T2_TAP(9, -112, -104)              \
    TR_T2_TAP(10, -96, -88) TR_T2_TAP(11, -80, -72) TR_T2_TAP(12, -64, -56)                 \
    TR_T2_TAP(13, -48, -40) TR_T2_TAP(14, -32, -24) TR_T2_TAP(15, -16, -8)

/* Word j of a full chunk, straight-line: 4 loads fetch its two code words. */
#define TR_T2_FULL_WORD(j)                                                                    \
    "ldr    %[w], %[ra]\n\t"                                                                 \
    "ldr    %[wa], [%[w], #(4*" #j ")]\n\t"                                                  \
    "ldr    %[w], %[rb]\n\t"                                                                 \
    "ldr    %[wb], [%[w], #(4*" #j ")]\n\t"                                                  \
    TR_T2_TAPS16

static inline void tr_dot8x2_t2(const int32_t *col, const uint8_t *ra, int32_t rbo, int32_t nwords, int32_t *tot)
{
    const uint8_t *const ra_end = ra + 4 * nwords;
    const uint8_t *rb = ra + rbo;
    const uint32_t init[2] __attribute__((aligned(8))) = {TR_CP_FIELD_LO, TR_CP_FIELD_HI};
    int32_t first = 1;
    uint32_t l0, h0, l1, h1, l2, h2, l3, h3, w, wa, wb, x0, x1;
    __asm__ volatile(
        "0:\n\t"
        "ldr    %[l0], %[init0]\n\t"
        "ldr    %[h0], %[init1]\n\t"
        "mov    %[l1], %[l0]\n\t"
        "mov    %[h1], %[h0]\n\t"
        "mov    %[l2], %[l0]\n\t"
        "mov    %[h2], %[h0]\n\t"
        "mov    %[l3], %[l0]\n\t"
        "mov    %[h3], %[h0]\n\t"
        "ldr    %[w], %[ra]\n\t"
        "ldr    %[x1], %[ra_end]\n\t"
        "sub    %[x0], %[x1], %[w]\n\t"
        "cmp    %[x0], #(4*" TR_STR(TR_T2_CHUNK_WORDS) ")\n\t"
        "blt    4f\n\t"
        TR_T2_FULL_WORD(0) TR_T2_FULL_WORD(1) TR_T2_FULL_WORD(2) TR_T2_FULL_WORD(3)
        TR_T2_FULL_WORD(4) TR_T2_FULL_WORD(5) TR_T2_FULL_WORD(6)
        "ldr    %[w], %[ra]\n\t"
        "adds   %[w], %[w], #(4*" TR_STR(TR_T2_CHUNK_WORDS) ")\n\t"
        "str    %[w], %[ra]\n\t"
        "ldr    %[w], %[rb]\n\t"
        "adds   %[w], %[w], #(4*" TR_STR(TR_T2_CHUNK_WORDS) ")\n\t"
        "str    %[w], %[rb]\n\t"
        "b      5f\n\t"
        "4:\n\t" /* the last, partial chunk: a loop over its words */
        "ldr    %[w], %[ra]\n\t"
        "ldr    %[wb], %[rbo]\n\t"
        "ldr    %[x1], %[ra_end]\n\t"
        "ldr    %[wb], [%[w], %[wb]]\n\t"
        "ldr    %[wa], [%[w]], #4\n\t"
        "str    %[w], %[ra]\n\t"
        "cmp    %[w], %[x1]\n\t"
        TR_T2_TAPS16
        "bne    4b\n\t"
        "5:\n\t"
        "ldr    %[wa], %[tot]\n\t"
        "ldr    %[w], %[first]\n\t"
        "cmp    %[w], #0\n\t"
        "beq    2f\n\t"
        TR_CP_FLUSH_FIRST(l0, h0, 0, 32)
        TR_CP_FLUSH_FIRST(l1, h1, 8, 40)
        TR_CP_FLUSH_FIRST(l2, h2, 16, 48)
        TR_CP_FLUSH_FIRST(l3, h3, 24, 56)
        "movs   %[w], #0\n\t"
        "str    %[w], %[first]\n\t"
        "b      3f\n\t"
        "2:\n\t"
        TR_CP_FLUSH(l0, h0, 0, 32)
        TR_CP_FLUSH(l1, h1, 8, 40)
        TR_CP_FLUSH(l2, h2, 16, 48)
        TR_CP_FLUSH(l3, h3, 24, 56)
        "3:\n\t"
        "ldr    %[w], %[ra]\n\t"
        "ldr    %[x1], %[ra_end]\n\t"
        "cmp    %[w], %[x1]\n\t"
        "bne    0b\n\t"
        : [l0] "=&r"(l0), [h0] "=&r"(h0), [l1] "=&r"(l1), [h1] "=&r"(h1), [l2] "=&r"(l2), [h2] "=&r"(h2),
          [l3] "=&r"(l3), [h3] "=&r"(h3), [col] "+r"(col), [w] "=&r"(w), [wa] "=&r"(wa), [wb] "=&r"(wb),
          [x0] "=&r"(x0), [x1] "=&r"(x1), [ra] "+m"(ra), [rb] "+m"(rb), [first] "+m"(first)
        : [rbo] "m"(rbo), [ra_end] "m"(ra_end), [tot] "m"(tot), [init0] "m"(init[0]), [init1] "m"(init[1])
        : "cc", "memory");
}
#undef TR_T2_TAP
#undef TR_T2_TAPS16
#undef TR_T2_FULL_WORD

#endif

int32_t tr_convolve_s8_t2_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    return 17 * (((k + 16 - 1) / 16) * 16);
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
    if (in_c <= 2 && k_h == 3 && k_w == 3 && stride_h == 1 && stride_w == 1 && bias_shift <= 14) {
        /* a first layer: one or two input channels, through the int16-plane passes (tr_plane3x3.h) */
        tr_conv_c12_plane3x3(TR_FMT_T2, conv_params, mult, shift, input_dims, input_data, filter_data, row_bytes,
                             bias_data, output_dims, output_data, out_c);
        return TR_NN_SUCCESS;
    }
#endif
#if TR_NN_USE_DSP
    const int32_t k_pad = ((k + 16 - 1) / 16) * 16;
    const int32_t nwords = k_pad / 16;
    (void)fast_1x1;
    tr_conv_pairs_dsp(conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes, bias_data,
                      bias_scale, output_dims, output_data, ctx->buf, k_pad, nwords,
                      (nwords + TR_T2_CHUNK_WORDS - 1) / TR_T2_CHUNK_WORDS, tr_dot8x2_t2);
#else
    tr_convolve_plain(TR_FMT_T2, conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes,
                      bias_scale, bias_data, fast_1x1, output_dims, output_data);
#endif
    return TR_NN_SUCCESS;
}
