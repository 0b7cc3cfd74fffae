/*
 * tr_convolve_s8_t5.c - 2-D convolution: int8 activations, "trit5r20-v1" 5-trits-per-byte ternary weights.
 *
 * Layouts (tr_nn.h): input [1, H, W, C_in], filter rows per output channel in order
 * [KH][KW][C_in] (K = KH * KW * C_in weights per row), bias [C_out] (may be NULL = 0),
 * output [1, OH, OW, C_out]. acc = sum(w * x) * 2^bias_shift + bias[o] (bias_shift from
 * conv_params, in [0, 16]; the scaling is per output, after the MACs), padded taps reading
 * pad_value; out = clamp(requantize(acc) + output_offset, activation).
 *
 * Scratch (same size on every build so the arena plan does not depend on the path):
 * 17 * Kp bytes, Kp = K rounded up to 20; an 8-byte aligned buffer is required. The DSP path is
 * tr_conv_pairs.h's (eight pixels' int32 X words, 16 * Kp bytes, and a pad row of C_in bytes) with the
 * trit5 inner loop tr_dot8x2_t5 below: two pixels x two output channels per SMLAL, 9 instructions per
 * 16 MACs plus 7 per byte pair. First layers (C_in 1 or 2, 3x3, stride 1) take the int16-plane passes
 * of tr_plane3x3.h (3 KB of stack, no scratch used).
 */
#include "tr_convolve_plain.h"
#include "tr_conv_pairs.h"
#include "tr_plane3x3.h"

#if TR_NN_USE_DSP
/* ---- DSP path: tr_conv_pairs.h, with the trit5 decode ----
 * A trit5 byte holds five weights; its entry of tr_t5_lut[0] lists them as int16 at byte offsets 0, 2,
 * .., 8, so per tap LDRSH (w_a), LDRSH (w_b) and ADD-with-shift give W = w_a + w_b * 2^30; then two
 * LDRD and four SMLAL: 9 instructions per 16 MACs, plus 7 per byte pair (5 taps) to fetch both bytes
 * and address their table entries. */
#define TR_T5_CHUNK_BYTES 22 /* 110 taps <= TR_CP_MAX_CHUNK_TAPS */

/* Tap i (0..4) of a byte pair (table entries at wa for row a, ib for row b); the first load advances
 * col past the 5 taps. */
#define TR_T5_TAP(i, first_load)                                      \
    "ldrsh  %[w], [%[wa], #(2*" #i ")]\n\t"                           \
    "ldrsh  %[x0], [%[ib], #(2*" #i ")]\n\t"                          \
    "add    %[w], %[w], %[x0], lsl #30\n\t"                           \
    first_load                                                         \
    "smlal  %[l0], %[h0], %[x0], %[w]\n\t"                            \
    "smlal  %[l1], %[h1], %[x1], %[w]\n\t"                            \
    "ldrd   %[x0], %[x1], [%[col], #(16*" #i "-72)]\n\t"              \
    "smlal  %[l2], %[h2], %[x0], %[w]\n\t"                            \
    "smlal  %[l3], %[h3], %[x1], %[w]\n\t"
#define TR_T5_TAPS5                                                   \
    TR_T5_TAP(0, "ldrd   %[x0], %[x1], [%[col]], #80\n\t")            \
    TR_T5_TAP(1, "ldrd   %[x0], %[x1], [%[col], #(16-80)]\n\t")       \
    TR_T5_TAP(2, "ldrd   %[x0], %[x1], [%[col], #(32-80)]\n\t")       \
    TR_T5_TAP(3, "ldrd   %[x0], %[x1], [%[col], #(48-80)]\n\t")       \
    TR_T5_TAP(4, "ldrd   %[x0], %[x1], [%[col], #(64-80)]\n\t")
#define TR_T5_ENTRIES                                                 \
    "ldr    %[w], %[lut]\n\t"                                         \
    "add    %[wa], %[w], %[wa], lsl #4\n\t"                           \
    "add    %[ib], %[w], %[ib], lsl #4\n\t"
/* Byte j of a full chunk, straight-line. */
#define TR_T5_FULL_BYTE(j)                                            \
    "ldr    %[w], %[ra]\n\t"                                          \
    "ldrb   %[wa], [%[w], #" #j "]\n\t"                               \
    "ldr    %[w], %[rb]\n\t"                                          \
    "ldrb   %[ib], [%[w], #" #j "]\n\t"                               \
    TR_T5_ENTRIES TR_T5_TAPS5

/* tot[16] = the biased field sums of trit5 rows a (ra) and b (ra + rbo), nbytes >= 1 bytes, against the
 * X words at col (16 bytes per tap): chunks of TR_T5_CHUNK_BYTES bytes (straight-line) and a last,
 * partial one (a loop), flushed as in tr_dot8x2_t2. */
static inline void tr_dot8x2_t5(const int32_t *col, const uint8_t *ra, int32_t rbo, int32_t nbytes, int32_t *tot)
{
    const uint8_t *const ra_end = ra + nbytes;
    const uint8_t *rb = ra + rbo;
    const uint32_t init[2] __attribute__((aligned(8))) = {TR_CP_FIELD_LO, TR_CP_FIELD_HI};
    const uint32_t *const lut = &tr_t5_lut[0][0][0];
    int32_t first = 1;
    uint32_t l0, h0, l1, h1, l2, h2, l3, h3, w, ia, ib, x0, x1;
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
        "cmp    %[x0], #" TR_STR(TR_T5_CHUNK_BYTES) "\n\t"
        "blt    4f\n\t"
        TR_T5_FULL_BYTE(0) TR_T5_FULL_BYTE(1) TR_T5_FULL_BYTE(2) TR_T5_FULL_BYTE(3) TR_T5_FULL_BYTE(4)
        TR_T5_FULL_BYTE(5) TR_T5_FULL_BYTE(6) TR_T5_FULL_BYTE(7) TR_T5_FULL_BYTE(8) TR_T5_FULL_BYTE(9)
        TR_T5_FULL_BYTE(10) TR_T5_FULL_BYTE(11) TR_T5_FULL_BYTE(12) TR_T5_FULL_BYTE(13) TR_T5_FULL_BYTE(14)
        TR_T5_FULL_BYTE(15) TR_T5_FULL_BYTE(16) TR_T5_FULL_BYTE(17) TR_T5_FULL_BYTE(18) TR_T5_FULL_BYTE(19)
        TR_T5_FULL_BYTE(20) TR_T5_FULL_BYTE(21)
        "ldr    %[w], %[ra]\n\t"
        "adds   %[w], %[w], #" TR_STR(TR_T5_CHUNK_BYTES) "\n\t"
        "str    %[w], %[ra]\n\t"
        "ldr    %[w], %[rb]\n\t"
        "adds   %[w], %[w], #" TR_STR(TR_T5_CHUNK_BYTES) "\n\t"
        "str    %[w], %[rb]\n\t"
        "b      5f\n\t"
        "4:\n\t" /* the last, partial chunk: a loop over its bytes */
        "ldr    %[w], %[ra]\n\t"
        "ldrb   %[wa], [%[w]], #1\n\t"
        "str    %[w], %[ra]\n\t"
        "ldr    %[w], %[rb]\n\t"
        "ldrb   %[ib], [%[w]], #1\n\t"
        "str    %[w], %[rb]\n\t"
        TR_T5_ENTRIES TR_T5_TAPS5
        "ldr    %[x0], %[ra]\n\t"
        "ldr    %[x1], %[ra_end]\n\t"
        "cmp    %[x0], %[x1]\n\t"
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
          [l3] "=&r"(l3), [h3] "=&r"(h3), [col] "+r"(col), [w] "=&r"(w), [wa] "=&r"(ia), [ib] "=&r"(ib), [x0] "=&r"(x0), [x1] "=&r"(x1), [ra] "+m"(ra), [rb] "+m"(rb), [first] "+m"(first)
        : [ra_end] "m"(ra_end), [tot] "m"(tot), [init0] "m"(init[0]), [init1] "m"(init[1]), [lut] "m"(lut)
        : "cc", "memory");
}
#undef TR_T5_TAP
#undef TR_T5_TAPS5
#undef TR_T5_ENTRIES
#undef TR_T5_FULL_BYTE
#endif

int32_t tr_convolve_s8_t5_get_buffer_size(const tr_nn_dims *input_dims, const tr_nn_dims *filter_dims)
{
    const int32_t k = filter_dims->h * filter_dims->w * input_dims->c;
    return 17 * (((k + 20 - 1) / 20) * 20);
}

tr_nn_status tr_convolve_s8_t5(const tr_nn_context *ctx, const tr_nn_conv_params *conv_params,
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
    const int32_t row_bytes = tr_row_bytes_t5(k);
    const int32_t *mult = quant_params->multiplier;
    const int32_t *shift = quant_params->shift;
    (void)bias_dims;

    if (filter_dims->c != in_c || output_dims->c != out_c || k <= 0 || out_c <= 0 || stride_h < 1 ||
        stride_w < 1 || pad_top < 0 || pad_left < 0 || bias_shift < 0 || bias_shift > TR_NN_MAX_BIAS_SHIFT) {
        return TR_NN_ARG_ERROR;
    }
    if (ctx == NULL || ctx->buf == NULL || ctx->size < tr_convolve_s8_t5_get_buffer_size(input_dims, filter_dims)) {
        return TR_NN_ARG_ERROR;
    }
    const int32_t bias_scale = (int32_t)1 << bias_shift;
    const int32_t fast_1x1 = k_h == 1 && k_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 &&
                             pad_left == 0 && out_h <= in_h && out_w <= in_w;

#if TR_NN_USE_DSP
    if (in_c <= 2 && k_h == 3 && k_w == 3 && stride_h == 1 && stride_w == 1 && bias_shift <= 14) {
        /* a first layer: one or two input channels, through the int16-plane passes (tr_plane3x3.h) */
        tr_conv_c12_plane3x3(TR_FMT_T5, conv_params, mult, shift, input_dims, input_data, filter_data, row_bytes,
                             bias_data, output_dims, output_data, out_c);
        return TR_NN_SUCCESS;
    }
#endif
#if TR_NN_USE_DSP
    const int32_t k_pad = ((k + 20 - 1) / 20) * 20;
    const int32_t nbytes = (k + 4) / 5; /* bytes holding at least one real weight */
    (void)fast_1x1;
    tr_conv_pairs_dsp(conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes, bias_data,
                      bias_scale, output_dims, output_data, ctx->buf, k_pad, nbytes,
                      (nbytes + TR_T5_CHUNK_BYTES - 1) / TR_T5_CHUNK_BYTES, tr_dot8x2_t5);
#else
    tr_convolve_plain(TR_FMT_T5, conv_params, mult, shift, input_dims, input_data, filter_dims, filter_data, row_bytes,
                      bias_scale, bias_data, fast_1x1, output_dims, output_data);
#endif
    return TR_NN_SUCCESS;
}
