/*
 * tr_fully_connected_s8_t2.c - fully connected: int8 activations, "t2r16-v1" 2-bit ternary weights.
 *
 * Layouts (tr_nn.h): input {N, 1, 1, C_in} (N rows processed one after another; normally 1),
 * filter dims {C_out, 1, 1, C_in}, one row of C_in weights per output channel, bias [C_out]
 * (may be NULL = 0), output {N, 1, 1, C_out}. acc = sum(w * x) * 2^bias_shift + bias[o]
 * (bias_shift from fc_params, in [0, 16]; applied per output, after the MACs);
 * out = clamp(requantize(acc) + output_offset, activation).
 * Scratch: 2 * Kp bytes, Kp = C_in rounded up to 16 (the DSP path's int16 copy of the input); from
 * C_out >= 192 on, max(that, 4096 + 4 * C_out) (the table path below). An 8-byte aligned buffer is
 * required. Same size on every build.
 * DSP path: output rows in fours sharing every activation load (tr_dot4_t2, hand-scheduled: 21
 * instructions per 16 MACs), then a pair (tr_dot2_t2_dsp, 11 per 8), then a last odd row alone.
 */
#include "tr_nn_support.h"

#if TR_NN_USE_DSP
/* Four t2 rows (row + i * rb, i = 0..3) against one int16 column, nwords >= 1 code words: per code byte
 * one LDRD of four activations and, per row, LDRB + ADD + LDRD (decode) and two SMLAD: 21
 * instructions per 16 MACs. Row i's byte is at row + i * rb: [row], [row, rb], [row, rb, lsl #1],
 * [row, rb3]; 14 registers, the loop bound read from the stack. */
static inline void tr_dot4_t2(const int16_t *col, const uint8_t *row, int32_t rb, int32_t nwords, int32_t acc[4])
{
    const uint8_t *const row_end = row + 4 * nwords;
    const uint32_t *const lut = &tr_t2_pair_lut[0][0];
    const int32_t rb3 = 3 * rb;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t e, w01, w23, x01, x23;
#define TR_FC4_ROW(acc, addr)                          \
    "ldrb   %[e], " addr "\n\t"                        \
    "add    %[e], %[lut], %[e], lsl #3\n\t"            \
    "ldrd   %[w01], %[w23], [%[e]]\n\t"                \
    "smlad  %[" acc "], %[x01], %[w01], %[" acc "]\n\t"   \
    "smlad  %[" acc "], %[x23], %[w23], %[" acc "]\n\t"
#define TR_FC4_BYTE                                    \
    "ldrd   %[x01], %[x23], [%[col]], #8\n\t"          \
    TR_FC4_ROW("a3", "[%[row], %[rb3]]")               \
    TR_FC4_ROW("a2", "[%[row], %[rb], lsl #1]")        \
    TR_FC4_ROW("a1", "[%[row], %[rb]]")                \
    TR_FC4_ROW("a0", "[%[row]], #1")
    __asm__ volatile("1:\n\t"
                     TR_FC4_BYTE TR_FC4_BYTE TR_FC4_BYTE TR_FC4_BYTE
                     "ldr    %[e], %[row_end]\n\t"
                     "cmp    %[row], %[e]\n\t"
                     "bne    1b\n\t"
                     : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [col] "+r"(col), [row] "+r"(row),
                       [e] "=&r"(e), [w01] "=&r"(w01), [w23] "=&r"(w23), [x01] "=&r"(x01), [x23] "=&r"(x23)
                     : [lut] "r"(lut), [rb] "r"(rb), [rb3] "r"(rb3), [row_end] "m"(row_end)
                     : "cc", "memory");
#undef TR_FC4_BYTE
#undef TR_FC4_ROW
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* ---- wide layers (C_out >= TR_FC_TABLE_MIN_ROWS): tables of ternary partial sums ----
 * A t2 code byte holds the weights of four consecutive activations. For a slice of 32 activations
 * (8 groups of 4) the kernel tabulates, per group, the int16 partial sum sum_i w_i x_i of all 256 code
 * bytes (codes 10 read as weight 0, like every decoder); each row then costs, per code byte, UXTB +
 * LDRSH + ADD: 3 instructions per 4 MACs, plus per row and slice LDRD of its two code words, 2 for
 * the row stride, the accumulator's LDR / STR and 3 of loop control (32 per 32 MACs). Building a
 * group's table takes about 230 instructions (16 rows of 8 SADD16 + 4 STRD), which the rows share: it
 * pays from about 170 rows on. Scratch: the 8 tables (4 KB) and one int32 accumulator per row. */
#define TR_FC_TABLE_MIN_ROWS 192
#define TR_FC_SLICE_GROUPS 8

/* tab[256] (int16) for activations x0..x3: tab[b] = sum_i w(code_i(b)) * x_i, w(0) = w(2) = 0,
 * w(1) = 1, w(3) = -1. Row h (the high nibble, codes c2 = h & 3 and c3 = h >> 2) of 16 entries = A + B[h],
 * A the 16 sums of the low nibble as 8 int16 pairs (pairs 4, 5 equal pairs 0, 1: code 2 weighs 0), B[h]
 * = w(c2) x2 + w(c3) x3 in both halves from (x2, x2), (-x2, -x2), (x3, x3), (-x3, -x3): per row one MOV or
 * SADD16 for B[h], 8 SADD16 and 4 STRD, straight-line: 13 instructions per 16 entries. */
static inline void tr_fc_build_table(int16_t *tab, int32_t x0, int32_t x1, int32_t x2, int32_t x3)
{
    const uint32_t p0 = tr_pair16(0, x0);
    const uint32_t p1 = tr_pair16(0, -x0);
    const uint32_t d1 = tr_pair16(x1, x1);
    const uint32_t n1 = tr_pair16(-x1, -x1);
    const uint32_t a0 = p0, a1 = p1;
    const uint32_t a2 = (uint32_t)__sadd16((int32_t)p0, (int32_t)d1);
    const uint32_t a3 = (uint32_t)__sadd16((int32_t)p1, (int32_t)d1);
    const uint32_t a6 = (uint32_t)__sadd16((int32_t)p0, (int32_t)n1);
    const uint32_t a7 = (uint32_t)__sadd16((int32_t)p1, (int32_t)n1);
    const uint32_t d2 = tr_pair16(x2, x2), n2 = tr_pair16(-x2, -x2);
    const uint32_t d3 = tr_pair16(x3, x3), n3 = tr_pair16(-x3, -x3);
    int16_t *dst = tab;
    uint32_t b, t0, t1;
#define TR_FC_ROW(make_b)                                       \
    make_b                                                       \
    "sadd16 %[t0], %[a0], %[b]\n\t"                              \
    "sadd16 %[t1], %[a1], %[b]\n\t"                              \
    "strd   %[t0], %[t1], [%[dst]], #8\n\t"                      \
    "sadd16 %[t0], %[a2], %[b]\n\t"                              \
    "sadd16 %[t1], %[a3], %[b]\n\t"                              \
    "strd   %[t0], %[t1], [%[dst]], #8\n\t"                      \
    "sadd16 %[t0], %[a0], %[b]\n\t"                              \
    "sadd16 %[t1], %[a1], %[b]\n\t"                              \
    "strd   %[t0], %[t1], [%[dst]], #8\n\t"                      \
    "sadd16 %[t0], %[a6], %[b]\n\t"                              \
    "sadd16 %[t1], %[a7], %[b]\n\t"                              \
    "strd   %[t0], %[t1], [%[dst]], #8\n\t"
#define TR_FC_ROWS_C3(v3) /* the four rows c2 = 0..3 of one c3 (v3: its B term) */ \
    TR_FC_ROW("mov    %[b], %[" v3 "]\n\t")                                      \
    TR_FC_ROW("sadd16 %[b], %[d2], %[" v3 "]\n\t")                               \
    TR_FC_ROW("mov    %[b], %[" v3 "]\n\t")                                      \
    TR_FC_ROW("sadd16 %[b], %[n2], %[" v3 "]\n\t")
#define TR_FC_ROWS_C3_ZERO /* c3 = 0 or 2 (weight 0) */                          \
    TR_FC_ROW("movs   %[b], #0\n\t")                                            \
    TR_FC_ROW("mov    %[b], %[d2]\n\t")                                         \
    TR_FC_ROW("movs   %[b], #0\n\t")                                            \
    TR_FC_ROW("mov    %[b], %[n2]\n\t")
    __asm__ volatile(TR_FC_ROWS_C3_ZERO TR_FC_ROWS_C3("d3") TR_FC_ROWS_C3_ZERO TR_FC_ROWS_C3("n3")
                     : [b] "=&r"(b), [t0] "=&r"(t0), [t1] "=&r"(t1), [dst] "+r"(dst)
                     : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [a6] "r"(a6), [a7] "r"(a7),
                       [d2] "r"(d2), [n2] "r"(n2), [d3] "r"(d3), [n3] "r"(n3)
                     : "cc", "memory");
#undef TR_FC_ROWS_C3_ZERO
#undef TR_FC_ROWS_C3
#undef TR_FC_ROW
}

#define TR_FC_LOOK(word, k, base)                                 \
    "uxtb   %[t], %[" word "], ror #(8*" #k ")\n\t"                 \
    "ldrsh  %[t], [%[" base "], %[t], lsl #1]\n\t"                  \
    "add    %[acc], %[acc], %[t]\n\t"

/* acc[r] (+)= the slice's partial sum of row r, for every row; rows at codes + r * rb (this slice's
 * code words), tables at tab (8 x 256 int16, group g at tab + 256 g); two_words == 0: a last slice of
 * one code word (4 groups). first != 0 stores instead of adding. */
static inline void tr_fc_table_rows(const int16_t *tab, const uint8_t *codes, int32_t rb, int32_t *acc, int32_t rows,
                                    int32_t two_words, int32_t first)
{
    const int32_t *const acc_end = acc + rows;
    const int16_t *b0 = tab, *b1 = tab + 256, *b2 = tab + 512, *b3 = tab + 768;
    const int16_t *b4 = tab + 1024, *b5 = tab + 1280, *b6 = tab + 1536, *b7 = tab + 1792;
    uint32_t w0, w1, t, a;
#define TR_FC_OPERANDS                                                                                          \
    : [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t), [acc] "=&r"(a), [codes] "+r"(codes), [accp] "+r"(acc)     \
    : [b0] "r"(b0), [b1] "r"(b1), [b2] "r"(b2), [b3] "r"(b3), [b4] "r"(b4), [b5] "r"(b5), [b6] "r"(b6),       \
      [b7] "r"(b7), [rb] "m"(rb), [end] "m"(acc_end)                                                         \
    : "cc", "memory"
#define TR_FC_ROW_START(load_acc)                                                      \
    "ldrd   %[w0], %[w1], [%[codes]]\n\t"                                               \
    "ldr    %[t], %[rb]\n\t"                                                            \
    "add    %[codes], %[codes], %[t]\n\t"                                               \
    load_acc
#define TR_FC_ROW_END                                                                  \
    "str    %[acc], [%[accp]], #4\n\t"                                                  \
    "ldr    %[t], %[end]\n\t"                                                           \
    "cmp    %[accp], %[t]\n\t"                                                          \
    "bne    1b\n\t"
    if (two_words && first) {
        __asm__ volatile("1:\n\t" TR_FC_ROW_START("movs   %[acc], #0\n\t")
                         TR_FC_LOOK("w0", 0, "b0") TR_FC_LOOK("w0", 1, "b1") TR_FC_LOOK("w0", 2, "b2")
                         TR_FC_LOOK("w0", 3, "b3") TR_FC_LOOK("w1", 0, "b4") TR_FC_LOOK("w1", 1, "b5")
                         TR_FC_LOOK("w1", 2, "b6") TR_FC_LOOK("w1", 3, "b7") TR_FC_ROW_END TR_FC_OPERANDS);
    } else if (two_words) {
        __asm__ volatile("1:\n\t" TR_FC_ROW_START("ldr    %[acc], [%[accp]]\n\t")
                         TR_FC_LOOK("w0", 0, "b0") TR_FC_LOOK("w0", 1, "b1") TR_FC_LOOK("w0", 2, "b2")
                         TR_FC_LOOK("w0", 3, "b3") TR_FC_LOOK("w1", 0, "b4") TR_FC_LOOK("w1", 1, "b5")
                         TR_FC_LOOK("w1", 2, "b6") TR_FC_LOOK("w1", 3, "b7") TR_FC_ROW_END TR_FC_OPERANDS);
    } else { /* one code word: LDR only (the next word belongs to the next row, or to nothing) */
        __asm__ volatile("1:\n\t"
                         "ldr    %[w0], [%[codes]]\n\t"
                         "ldr    %[t], %[rb]\n\t"
                         "add    %[codes], %[codes], %[t]\n\t"
                         "ldr    %[acc], [%[accp]]\n\t"
                         TR_FC_LOOK("w0", 0, "b0") TR_FC_LOOK("w0", 1, "b1") TR_FC_LOOK("w0", 2, "b2")
                         TR_FC_LOOK("w0", 3, "b3") TR_FC_ROW_END TR_FC_OPERANDS);
    }
#undef TR_FC_OPERANDS
#undef TR_FC_ROW_START
#undef TR_FC_ROW_END
}
#undef TR_FC_LOOK

/* The whole layer for one input row through the tables (C_out >= TR_FC_TABLE_MIN_ROWS). Not inlined:
 * the row loop needs all 14 registers. */
__attribute__((noinline)) static void tr_fc_t2_tables(void *scratch, const int8_t *in, int32_t k, const uint8_t *filter, int32_t row_bytes,
                            int32_t out_c, int32_t *acc)
{
    int16_t *tab = (int16_t *)scratch;
    const int32_t nwords = row_bytes / 4;
    for (int32_t w = 0; w < nwords; w += 2) {
        const int32_t two = w + 1 < nwords;
        const int32_t groups = two ? 8 : 4;
        for (int32_t g = 0; g < groups; ++g) {
            const int32_t kk = 16 * w + 4 * g;
            if (kk + 4 <= k) {
                tr_fc_build_table(tab + 256 * g, in[kk], in[kk + 1], in[kk + 2], in[kk + 3]);
            } else { /* past the last activation the codes are 0: any finite value works, use 0 */
                int32_t x[4];
                for (int32_t i = 0; i < 4; ++i) {
                    x[i] = kk + i < k ? in[kk + i] : 0;
                }
                tr_fc_build_table(tab + 256 * g, x[0], x[1], x[2], x[3]);
            }
        }
        if (!two && w == 0) { /* a single one-word slice: start from zero */
            memset(acc, 0, (size_t)out_c * sizeof(int32_t));
        }
        tr_fc_table_rows(tab, filter + 4 * w, row_bytes, acc, out_c, two, w == 0 && two);
    }
}
#endif

int32_t tr_fully_connected_s8_t2_get_buffer_size(const tr_nn_dims *filter_dims)
{
    const int32_t copy = 2 * (((filter_dims->c + 16 - 1) / 16) * 16); /* int16 copy of the input */
    if (filter_dims->n < 192) { /* TR_FC_TABLE_MIN_ROWS */
        return copy;
    }
    const int32_t tables = 8 * 256 * 2 + 4 * filter_dims->n; /* 8 group tables + one int32 per row */
    return tables > copy ? tables : copy;
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
        if (out_c >= TR_FC_TABLE_MIN_ROWS) {
            int32_t *acc = (int32_t *)(void *)((uint8_t *)ctx->buf + 8 * 256 * 2);
            tr_fc_t2_tables(ctx->buf, in, k, filter_data, row_bytes, out_c, acc);
            for (int32_t o = 0; o < out_c; ++o) {
                out[o] = tr_output_stage(tr_add_bias(acc[o], bias_scale, bias_data, o), mult[o], shift[o],
                                         fc_params->output_offset, &fc_params->activation);
            }
            continue;
        }
        const int32_t k_pad = ((k + 16 - 1) / 16) * 16;
        int16_t *col = (int16_t *)ctx->buf;
        tr_expand_s8_to_s16(in, col, k, k_pad, 0);
        int32_t o = 0;
        for (; o + 4 <= out_c; o += 4) { /* four rows share every activation load */
            int32_t acc[4];
            tr_dot4_t2(col, filter_data + o * row_bytes, row_bytes, k_pad / 16, acc);
            for (int32_t i = 0; i < 4; ++i) {
                out[o + i] = tr_output_stage(tr_add_bias(acc[i], bias_scale, bias_data, o + i), mult[o + i],
                                             shift[o + i], fc_params->output_offset, &fc_params->activation);
            }
        }
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
