/*
 * tr_plane3x3.h - DSP helpers for 3x3, stride-1 windows over one channel plane (internal; used by the
 * depthwise kernels, ch_mult == 1, and by the t2 convolution when C_in == 1, i.e. a first layer), and
 * stride-2 ones for the depthwise kernels (tr_p3_band with s2 = 1, see TR_P3_ROW_S2).
 *
 * One channel of the input is gathered, with its padding, into an int16 plane (a band of up to
 * TR_P3_ROWS + 2 rows by TR_P3_TILE + 2 columns, TR_P3_GW int16 apart, on the stack, 3 KB), so that two
 * horizontally adjacent taps are one 32-bit load. A pass computes four outputs x..x+3 of one output row:
 * per window row r, five loads of column pairs (x, x+1) .. (x+4, x+5), then per output one SMLAD
 * (taps 0 and 1 against the weight pair) and one SMLAxy (tap 2, the bottom or top half of a pair):
 * 39 instructions per 36 MACs, plus 2 STRD and 2 of loop control per pass (the first load advances).
 * The weights are scaled by 2^bias_shift and the accumulators start at the bias, so each accumulator is
 * the full acc = sum(w * x) * 2^bias_shift + bias (exact: |w * 2^bias_shift| < 2^15 is checked by the
 * caller). The requantisation of a row then needs the 5-instruction tr_rq_rn core, SSAT and STRB per
 * output. The depthwise path gathers two channels at once (planes 0 and 1), halving the gather cost.
 */
#ifndef TR_PLANE3X3_H
#define TR_PLANE3X3_H

#include "tr_nn_support.h"

#if TR_NN_USE_DSP
#define TR_P3_GW 36   /* int16 per plane row (>= TR_P3_TILE + 2): immediate load offsets */
#define TR_P3_TILE 32 /* output columns per tile, a multiple of 4; a pass reads up to column 4k + 5 */
#define TR_P3_ROWS 16 /* output rows per band */

typedef struct {
    int16_t g[2][TR_P3_ROWS + 2][TR_P3_GW]; /* two planes: the depthwise path gathers channel pairs */
    int32_t acc_space[96]; /* holds TR_P3_TILE accumulators ending on a 256-byte boundary: see tr_p3_acc */
} tr_p3_buf; /* 2976 bytes, on the caller's stack */

/* Where the accumulators of an output row of npass passes go: they end on a 256-byte boundary, so the
 * pass loop ends when the store pointer's low byte is 0 (no register or memory operand for a bound:
 * the pass uses all 14). */
static inline int32_t *tr_p3_acc(tr_p3_buf *buf, int32_t npass)
{
    /* the first 256-byte boundary at least TR_P3_TILE accumulators into acc_space (within its 384 bytes) */
    const uintptr_t end = ((uintptr_t)buf->acc_space + 4u * TR_P3_TILE + 255u) & ~(uintptr_t)255u;
    return (int32_t *)end - 4 * npass;
}

/* The 3x3 weights of one output channel, scaled, as the operands of the pass below:
 * w0 / w1 / w2 = (w[r][0], w[r][1]) for rows 0, 1, 2; wz = (w[0][2], w[1][2]); w22 = (w[2][2], 0). */
typedef struct {
    uint32_t w0, w1, w2, wz, w22;
    int32_t bias;
} tr_p3_weights;

static inline tr_p3_weights tr_p3_pack(const int32_t w[9], int32_t scale, int32_t bias)
{
    tr_p3_weights pw;
    pw.w0 = tr_pair16(w[0] * scale, w[1] * scale);
    pw.w1 = tr_pair16(w[3] * scale, w[4] * scale);
    pw.w2 = tr_pair16(w[6] * scale, w[7] * scale);
    pw.wz = tr_pair16(w[2] * scale, w[5] * scale);
    pw.w22 = tr_pair16(w[8] * scale, 0);
    pw.bias = bias;
    return pw;
}

/* Where a plane's values sit in the int8 input: plane (y, x) is at base[y * row_step + x * col_step],
 * y < h, x < w. For an input [H, W, C] and channel c: base = input + c, and either (h, w) = (H, W),
 * row_step = W * C, col_step = C (the plane as the image), or (h, w) = (W, H), row_step = C,
 * col_step = W * C (transposed: a plane row is an input column, so a narrow, tall map runs as a
 * wide, short one). */
typedef struct {
    const int8_t *base;
    int32_t h, w;
    int32_t row_step, col_step;
} tr_p3_src;

/* Gather plane rows [iy0, iy0 + rows) x columns [ix0, ix0 + cols) of src into buf->g as int16;
 * positions outside the plane read pad_value. The column split into left padding / inside / right
 * padding is the same for every row; inside, two values per LDRSB pair, PKHBT and STR. */
static inline void tr_p3_gather(tr_p3_buf *buf, const tr_p3_src *src_plane, int32_t iy0, int32_t ix0, int32_t rows,
                                int32_t cols, int32_t pad_value)
{
    const int32_t in_h = src_plane->h;
    const int32_t in_w = src_plane->w;
    const int32_t ch = src_plane->col_step;
    int32_t x_lo = -ix0;
    x_lo = x_lo < 0 ? 0 : (x_lo > cols ? cols : x_lo);
    int32_t x_hi = in_w - ix0;
    x_hi = x_hi < x_lo ? x_lo : (x_hi > cols ? cols : x_hi);
    const int32_t npair = (x_hi - x_lo) >> 1;
    const int32_t odd = (x_hi - x_lo) & 1;
    const int32_t ch2 = 2 * ch;
    const int16_t pv = (int16_t)pad_value;
    for (int32_t r = 0; r < rows; ++r) {
        int16_t *dst = buf->g[0][r];
        const int32_t iy = iy0 + r;
        if (iy < 0 || iy >= in_h) {
            for (int32_t x = 0; x < cols; ++x) {
                dst[x] = pv;
            }
            continue;
        }
        for (int32_t x = 0; x < x_lo; ++x) {
            dst[x] = pv;
        }
        const int8_t *src = src_plane->base + iy * src_plane->row_step + (ix0 + x_lo) * ch;
        int16_t *d = dst + x_lo;
        for (int32_t i = 0; i < npair; ++i) {
            tr_store_u32(d, tr_pack_lo((uint32_t)(int32_t)src[0], (uint32_t)(int32_t)src[ch]));
            d += 2;
            src += ch2;
        }
        if (odd) {
            *d = *src;
        }
        for (int32_t x = x_hi; x < cols; ++x) {
            dst[x] = pv;
        }
    }
}

/* tr_p3_gather for two channels at once, the plane of src and the one a byte after it (channels c and
 * c + 1 < C), into planes 0 and 1: per two pixels two LDRH, one ORR, two SXTB16 and two STR
 * (2 instructions per value instead of about 3). */
static inline void tr_p3_gather2(tr_p3_buf *buf, const tr_p3_src *src_plane, int32_t iy0, int32_t ix0, int32_t rows,
                                 int32_t cols, int32_t pad_value)
{
    const int32_t in_h = src_plane->h;
    const int32_t in_w = src_plane->w;
    const int32_t ch = src_plane->col_step;
    int32_t x_lo = -ix0;
    x_lo = x_lo < 0 ? 0 : (x_lo > cols ? cols : x_lo);
    int32_t x_hi = in_w - ix0;
    x_hi = x_hi < x_lo ? x_lo : (x_hi > cols ? cols : x_hi);
    const int32_t npair = (x_hi - x_lo) >> 1;
    const int32_t odd = (x_hi - x_lo) & 1;
    const int32_t ch2 = 2 * ch;
    const int16_t pv = (int16_t)pad_value;
    for (int32_t r = 0; r < rows; ++r) {
        int16_t *d0 = buf->g[0][r];
        int16_t *d1 = buf->g[1][r];
        const int32_t iy = iy0 + r;
        if (iy < 0 || iy >= in_h) {
            for (int32_t x = 0; x < cols; ++x) {
                d0[x] = pv;
                d1[x] = pv;
            }
            continue;
        }
        for (int32_t x = 0; x < x_lo; ++x) {
            d0[x] = pv;
            d1[x] = pv;
        }
        const int8_t *src = src_plane->base + iy * src_plane->row_step + (ix0 + x_lo) * ch;
        int16_t *e0 = d0 + x_lo;
        int16_t *e1 = d1 + x_lo;
        for (int32_t i = 0; i < npair; ++i) {
            uint16_t h0, h1;
            memcpy(&h0, src, sizeof h0);
            memcpy(&h1, src + ch, sizeof h1);
            const uint32_t v = (uint32_t)h0 | ((uint32_t)h1 << 16); /* (c, c+1) of two pixels */
            tr_store_u32(e0, (uint32_t)__sxtb16((int32_t)v));
            tr_store_u32(e1, tr_sxtb16_ror8(v));
            e0 += 2;
            e1 += 2;
            src += ch2;
        }
        if (odd) {
            *e0 = src[0];
            *e1 = src[1];
        }
        for (int32_t x = x_hi; x < cols; ++x) {
            d0[x] = pv;
            d1[x] = pv;
        }
    }
}

#define TR_P3_STR2(x) #x
#define TR_P3_STR(x) TR_P3_STR2(x)
/* One window row at byte offset `off` of the plane: w = the (tap 0, tap 1) pair, tb / tt select the
 * bottom or top half of wz for tap 2, first = 1 starts the accumulators from the bias. */
#define TR_P3_ROW(first_load, off, w, wz, half, acc0, acc1, acc2, acc3)             \
    first_load                                                                        \
    "smlad  %[a0], %[t], %[" w "], %[" acc0 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+2-8)]\n\t"                                         \
    "smlad  %[a1], %[t], %[" w "], %[" acc1 "]\n\t"                                   \
    "ldr    %[p2], [%[g], #(" off "+4-8)]\n\t"                                        \
    "smlad  %[a2], %[p2], %[" w "], %[" acc2 "]\n\t"                                  \
    "smlab" half " %[a0], %[p2], %[" wz "], %[a0]\n\t"                                \
    "smlat" half " %[a1], %[p2], %[" wz "], %[a1]\n\t"                                \
    "ldr    %[t], [%[g], #(" off "+6-8)]\n\t"                                         \
    "smlad  %[a3], %[t], %[" w "], %[" acc3 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+8-8)]\n\t"                                         \
    "smlab" half " %[a2], %[t], %[" wz "], %[a2]\n\t"                                 \
    "smlat" half " %[a3], %[t], %[" wz "], %[a3]\n\t"

/* acc[0 .. 4 npass) = the accumulators of outputs 0 .. 4 npass - 1 of the output row whose windows
 * start at plane row g (columns 0, 1, ...); npass >= 1, acc from tr_p3_acc(buf, npass). */
static inline void tr_p3_row(const int16_t *g, int32_t *acc, const tr_p3_weights *pw)
{
    int32_t a0, a1, a2, a3;
    uint32_t t, p2;
    __asm__ volatile(
        "1:\n\t"
        /* the first load advances g to the next pass; the other offsets are relative to that */
        TR_P3_ROW("ldr    %[t], [%[g]], #8\n\t", "0", "w0", "wz", "b", "bias", "bias", "bias", "bias")
        TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(2 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(2 * TR_P3_GW), "w1", "wz",
                  "t", "a0", "a1", "a2", "a3")
        TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(4 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(4 * TR_P3_GW), "w2", "w22",
                  "b", "a0", "a1", "a2", "a3")
        "strd   %[a0], %[a1], [%[acc]], #8\n\t"
        "strd   %[a2], %[a3], [%[acc]], #8\n\t"
        "tst    %[acc], #255\n\t"
        "bne    1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [t] "=&r"(t), [p2] "=&r"(p2),
          [g] "+r"(g), [acc] "+r"(acc)
        : [w0] "r"(pw->w0), [w1] "r"(pw->w1), [w2] "r"(pw->w2), [wz] "r"(pw->wz), [w22] "r"(pw->w22),
          [bias] "r"(pw->bias)
        : "cc", "memory");
}
/* tr_p3_row adding to the accumulators already in acc (a second input channel of a convolution): two
 * more LDRD per pass; the bias is not added again. */
static inline void tr_p3_row_add(const int16_t *g, int32_t *acc, const tr_p3_weights *pw)
{
    int32_t a0, a1, a2, a3;
    uint32_t t, p2;
    __asm__ volatile(
        "1:\n\t"
        "ldrd   %[a0], %[a1], [%[acc]]\n\t"
        "ldrd   %[a2], %[a3], [%[acc], #8]\n\t"
        TR_P3_ROW("ldr    %[t], [%[g]], #8\n\t", "0", "w0", "wz", "b", "a0", "a1", "a2", "a3")
        TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(2 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(2 * TR_P3_GW), "w1", "wz",
                  "t", "a0", "a1", "a2", "a3")
        TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(4 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(4 * TR_P3_GW), "w2", "w22",
                  "b", "a0", "a1", "a2", "a3")
        "strd   %[a0], %[a1], [%[acc]], #8\n\t"
        "strd   %[a2], %[a3], [%[acc]], #8\n\t"
        "tst    %[acc], #255\n\t"
        "bne    1b\n\t"
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [t] "=&r"(t), [p2] "=&r"(p2),
          [g] "+r"(g), [acc] "+r"(acc)
        : [w0] "r"(pw->w0), [w1] "r"(pw->w1), [w2] "r"(pw->w2), [wz] "r"(pw->wz), [w22] "r"(pw->w22)
        : "cc", "memory");
}

/* The output stage of one channel, prepared once: fast != 0 when the output range is the full int8
 * range and 1 <= right <= 23, so that the output offset joins the rounding constant's high word
 * (offset * 2^(right-1) fits there and adds exactly offset after the shift, as in tr_add_s8.c). */
typedef struct {
    uint32_t clo;
    int32_t chi; /* with the offset (fast path) */
    int32_t mult;
    int32_t rm1;
    int32_t fast;
    tr_rq rq;
    int32_t offset, lo, hi;
} tr_p3_out;

static inline tr_p3_out tr_p3_out_prepare(int32_t mult, int32_t shift, int32_t offset, int32_t lo, int32_t hi)
{
    tr_p3_out po;
    po.rq = tr_rq_prepare(mult, shift, NULL, 0);
    po.fast = lo == -128 && hi == 127 && po.rq.right >= 1 && po.rq.right <= 23;
    po.clo = po.rq.clo;
    po.chi = po.rq.chi + (po.fast ? (int32_t)((uint32_t)offset << (uint32_t)po.rq.rm1) : 0);
    po.mult = po.rq.mult;
    po.rm1 = po.rq.rm1;
    po.offset = offset;
    po.lo = lo;
    po.hi = hi;
    return po;
}

/* Requantise n accumulators (tr_p3_row) of one channel and store them `stride` bytes apart. Fast path:
 * per output LDR, AND / ADDS / ADC / SMLAL / ASR, SSAT, STRB, and per two outputs ADD, CMP, BNE. */
static inline void tr_p3_store(const int32_t *acc, int32_t n, const tr_p3_out *po, int8_t *out, int32_t stride)
{
    if (po->fast) {
        uint32_t a, t, plo, phi;
#define TR_P3_RQ(dst)                                            \
        "and    %[t], %[a], #0x80000000\n\t"                    \
        "adds   %[plo], %[clo], %[t]\n\t"                       \
        "adc    %[phi], %[chi], %[t], asr #31\n\t"              \
        "smlal  %[plo], %[phi], %[a], %[m]\n\t"                 \
        "asr    %[phi], %[phi], %[rm1]\n\t"                     \
        "ssat   %[phi], #8, %[phi]\n\t"                         \
        "strb   %[phi], " dst "\n\t"
        if (n & 1) {
            __asm__ volatile("ldr    %[a], [%[acc]], #4\n\t" TR_P3_RQ("[%[out]]")
                             "add    %[out], %[out], %[stride]\n\t"
                             : [a] "=&r"(a), [t] "=&r"(t), [plo] "=&r"(plo), [phi] "=&r"(phi), [acc] "+r"(acc),
                               [out] "+r"(out)
                             : [clo] "r"(po->clo), [chi] "r"(po->chi), [m] "r"(po->mult), [rm1] "r"(po->rm1),
                               [stride] "r"(stride)
                             : "cc", "memory");
        }
        if (n >= 2) { /* two outputs per iteration: 19 instructions */
            const int32_t *const end = acc + (n & ~1);
            __asm__ volatile("1:\n\t"
                             "ldr    %[a], [%[acc]], #4\n\t" TR_P3_RQ("[%[out]]")
                             "ldr    %[a], [%[acc]], #4\n\t" TR_P3_RQ("[%[out], %[stride]]")
                             "add    %[out], %[out], %[stride], lsl #1\n\t"
                             "cmp    %[acc], %[end]\n\t"
                             "bne    1b\n\t"
                             : [a] "=&r"(a), [t] "=&r"(t), [plo] "=&r"(plo), [phi] "=&r"(phi), [acc] "+r"(acc),
                               [out] "+r"(out)
                             : [end] "r"(end), [clo] "r"(po->clo), [chi] "r"(po->chi), [m] "r"(po->mult),
                               [rm1] "r"(po->rm1), [stride] "r"(stride)
                             : "cc", "memory");
        }
#undef TR_P3_RQ
    } else {
        for (int32_t x = 0; x < n; ++x) {
            *out = (int8_t)tr_clamp(tr_rq_requantize(&po->rq, acc[x]) + po->offset, po->lo, po->hi);
            out += stride;
        }
    }
}

/* All `rows` output rows of a tile in one asm block (po->fast and right >= 2): per row the passes of
 * tr_p3_row, then the requantisation of its n_out outputs (tr_p3_store's fast path), then the next row;
 * the row state lives on the stack, reloaded at each phase (about 25 instructions per row instead of
 * the ~70 of two C calls around 14-register asm blocks). g0: the tile's plane row 0; acc from
 * tr_p3_acc; out: the tile's first output byte; stride: bytes between outputs of a row; row_step:
 * bytes between output rows. */
typedef struct {
    const int16_t *g_row; /* 0: the current row's plane row 0 */
    int8_t *out_row;      /* 4: its first output byte */
    int32_t rows_left;    /* 8 */
    int32_t *acc0;        /* 12 */
    const int32_t *acc_end; /* 16: acc0 + n_out */
    int32_t odd;          /* 20: n_out & 1 */
    uint32_t w0, w1, w2, wz, w22; /* 24 .. 40 */
    int32_t bias;         /* 44 */
    int32_t chi, mult, rm1; /* 48, 52, 56 */
    int32_t stride;       /* 60 */
    int32_t row_step;     /* 64 */
} tr_p3_band_state;

/* Stride 2 (tr_p3_band_s2): output x of a row reads plane columns 2x .. 2x + 2 and output row r plane rows
 * 2r .. 2r + 2, so per window row a pass loads the five words of columns (0, 1) .. (8, 9) and does per output
 * one SMLAD (columns 2x, 2x + 1) and one SMLABx (column 2x + 2, the bottom of the next word): 13
 * instructions per 12 MACs, as at stride 1; the pass advances 8 columns. */
#define TR_P3_ROW_S2(first_load, off, w, wz, half, acc0, acc1, acc2, acc3)          \
    first_load                                                                        \
    "smlad  %[a0], %[t], %[" w "], %[" acc0 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+4-16)]\n\t"                                        \
    "smlab" half " %[a0], %[t], %[" wz "], %[a0]\n\t"                                \
    "smlad  %[a1], %[t], %[" w "], %[" acc1 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+8-16)]\n\t"                                        \
    "smlab" half " %[a1], %[t], %[" wz "], %[a1]\n\t"                                \
    "smlad  %[a2], %[t], %[" w "], %[" acc2 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+12-16)]\n\t"                                       \
    "smlab" half " %[a2], %[t], %[" wz "], %[a2]\n\t"                                \
    "smlad  %[a3], %[t], %[" w "], %[" acc3 "]\n\t"                                   \
    "ldr    %[t], [%[g], #(" off "+16-16)]\n\t"                                       \
    "smlab" half " %[a3], %[t], %[" wz "], %[a3]\n\t"
#define TR_P3_PASSES_S1                                                                                      \
    TR_P3_ROW("ldr    %[t], [%[g]], #8\n\t", "0", "w0", "wz", "b", "bias", "bias", "bias", "bias")            \
    TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(2 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(2 * TR_P3_GW), "w1", "wz", \
              "t", "a0", "a1", "a2", "a3")                                                                  \
    TR_P3_ROW("ldr    %[t], [%[g], #(" TR_P3_STR(4 * TR_P3_GW) "-8)]\n\t", TR_P3_STR(4 * TR_P3_GW), "w2", "w22", \
              "b", "a0", "a1", "a2", "a3")
#define TR_P3_PASSES_S2                                                                                         \
    TR_P3_ROW_S2("ldr    %[t], [%[g]], #16\n\t", "0", "w0", "wz", "b", "bias", "bias", "bias", "bias")          \
    TR_P3_ROW_S2("ldr    %[t], [%[g], #(" TR_P3_STR(2 * TR_P3_GW) "-16)]\n\t", TR_P3_STR(2 * TR_P3_GW), "w1", "wz", \
                 "t", "a0", "a1", "a2", "a3")                                                                 \
    TR_P3_ROW_S2("ldr    %[t], [%[g], #(" TR_P3_STR(4 * TR_P3_GW) "-16)]\n\t", TR_P3_STR(4 * TR_P3_GW), "w2", "w22", \
                 "b", "a0", "a1", "a2", "a3")
#define TR_P3_BAND_ASM(PASS, GSTEP) \
    __asm__ volatile(                                                                                      \
        "0:\n\t"                                                                                           \
        "ldr    %[a0], %[stp]\n\t"                                                                         \
        "ldr    %[g], [%[a0], #0]\n\t"                                                                     \
        "ldr    %[acc], [%[a0], #12]\n\t"                                                                  \
        "ldrd   %[w0], %[w1], [%[a0], #24]\n\t"                                                            \
        "ldrd   %[w2], %[wz], [%[a0], #32]\n\t"                                                            \
        "ldrd   %[w22], %[bias], [%[a0], #40]\n\t"                                                         \
        "1:\n\t"                                                                                           \
        PASS                                                                                               \
        "strd   %[a0], %[a1], [%[acc]], #8\n\t"                                                            \
        "strd   %[a2], %[a3], [%[acc]], #8\n\t"                                                            \
        "tst    %[acc], #255\n\t"                                                                          \
        "bne    1b\n\t"                                                                                    \
        "ldr    %[a0], %[stp]\n\t"                                                                         \
        "ldr    %[g], [%[a0], #4]\n\t"                                                                     \
        "ldrd   %[acc], %[t], [%[a0], #12]\n\t"                                                            \
        "ldrd   %[w0], %[w1], [%[a0], #48]\n\t"                                                            \
        "ldrd   %[w2], %[wz], [%[a0], #56]\n\t"                                                            \
        "ldr    %[a1], [%[a0], #20]\n\t"                                                                   \
        "cmp    %[a1], #0\n\t"                                                                             \
        "beq    2f\n\t"                                                                                    \
        TR_P3_BAND_RQ("[%[g]]")                                                                            \
        "add    %[g], %[g], %[wz]\n\t"                                                                     \
        "2:\n\t"                                                                                           \
        "cmp    %[acc], %[t]\n\t"                                                                          \
        "beq    3f\n\t"                                                                                    \
        "4:\n\t"                                                                                           \
        TR_P3_BAND_RQ("[%[g]]")                                                                            \
        TR_P3_BAND_RQ("[%[g], %[wz]]")                                                                     \
        "add    %[g], %[g], %[wz], lsl #1\n\t"                                                             \
        "cmp    %[acc], %[t]\n\t"                                                                          \
        "bne    4b\n\t"                                                                                    \
        "3:\n\t"                                                                                           \
        "ldr    %[a0], %[stp]\n\t"                                                                         \
        "ldrd   %[a1], %[a2], [%[a0], #0]\n\t"                                                             \
        "add    %[a1], %[a1], #(" GSTEP ")\n\t"                                                            \
        "ldr    %[a3], [%[a0], #64]\n\t"                                                                   \
        "add    %[a2], %[a2], %[a3]\n\t"                                                                   \
        "strd   %[a1], %[a2], [%[a0], #0]\n\t"                                                             \
        "ldr    %[a1], [%[a0], #8]\n\t"                                                                    \
        "subs   %[a1], %[a1], #1\n\t"                                                                      \
        "str    %[a1], [%[a0], #8]\n\t"                                                                    \
        "bne    0b\n\t"                                                                                    \
        : [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [t] "=&r"(t), [p2] "=&r"(p2),    \
          [g] "=&r"(g), [acc] "=&r"(ap), [w0] "=&r"(r8), [w1] "=&r"(r9), [w2] "=&r"(r10), [wz] "=&r"(r11), \
          [w22] "=&r"(r12), [bias] "=&r"(r13)                                                              \
        : [stp] "m"(stp)                                                                                   \
        : "cc", "memory");

/* s2 = 0: stride 1 (plane rows advance by one per output row); s2 = 1: stride 2 (two per output row, the
 * passes of TR_P3_ROW_S2; g0 then covers 2 rows + 1 plane rows and 2 n_out + 1 columns). */
static inline void tr_p3_band(const int16_t *g0, int32_t *acc, int32_t n_out, int32_t rows, const tr_p3_weights *pw,
                              const tr_p3_out *po, int8_t *out, int32_t stride, int32_t row_step, int32_t s2)
{
    tr_p3_band_state st = {g0,      out,     rows,    acc,     acc + n_out, n_out & 1, pw->w0,
                           pw->w1,  pw->w2,  pw->wz,  pw->w22, pw->bias,    po->chi,   po->mult,
                           po->rm1, stride,  row_step};
    tr_p3_band_state *stp = &st;
    uint32_t a0, a1, a2, a3, t, p2, g, ap, r8, r9, r10, r11, r12, r13;
    /* store phase roles: a0 = value, a1 = sign, a2 / a3 = the 64-bit P, t = end, g = out, w0 = chi,
     * w1 = mult, w2 = right - 1, wz = stride */
#define TR_P3_BAND_RQ(where)                                    \
    "ldr    %[a0], [%[acc]], #4\n\t"                             \
    "and    %[a1], %[a0], #0x80000000\n\t"                       \
    "adds   %[a2], %[a1], #0x40000000\n\t"                       \
    "adc    %[a3], %[w0], %[a1], asr #31\n\t"                    \
    "smlal  %[a2], %[a3], %[a0], %[w1]\n\t"                      \
    "asr    %[a3], %[a3], %[w2]\n\t"                             \
    "ssat   %[a3], #8, %[a3]\n\t"                                \
    "strb   %[a3], " where "\n\t"
    if (s2) {
        TR_P3_BAND_ASM(TR_P3_PASSES_S2, "4*" TR_P3_STR(TR_P3_GW));
    } else {
        TR_P3_BAND_ASM(TR_P3_PASSES_S1, "2*" TR_P3_STR(TR_P3_GW));
    }
#undef TR_P3_BAND_RQ
}
#undef TR_P3_BAND_ASM
#undef TR_P3_PASSES_S1
#undef TR_P3_PASSES_S2
#undef TR_P3_ROW_S2
#undef TR_P3_ROW

/* A 3x3, stride-1 convolution of a one- or two-channel input (a first layer): each band / tile of the
 * input is gathered once (two channels into planes 0 and 1) and every output channel runs its passes
 * over it, the second channel's adding to the first's (weights decoded per tile). Not inlined: its
 * 3 KB buffer then lives on the stack only while this path runs. Arguments validated by the caller;
 * layouts as in tr_nn.h. */
__attribute__((noinline, unused)) static void
tr_conv_c12_plane3x3(int32_t fmt, const tr_nn_conv_params *p, const int32_t *mult, const int32_t *shift,
                     const tr_nn_dims *input_dims, const int8_t *input, const uint8_t *filter, int32_t row_bytes,
                     const int32_t *bias, const tr_nn_dims *output_dims, int8_t *output, int32_t out_c)
{
    const int32_t in_c = input_dims->c; /* 1 or 2 */
    const int32_t out_h = output_dims->h;
    const int32_t out_w = output_dims->w;
    const int32_t scale = (int32_t)1 << p->bias_shift;
    const tr_p3_src src = {input, input_dims->h, input_dims->w, input_dims->w * in_c, in_c};
    tr_p3_buf buf;
    for (int32_t oy0 = 0; oy0 < out_h; oy0 += TR_P3_ROWS) {
        const int32_t rows = out_h - oy0 < TR_P3_ROWS ? out_h - oy0 : TR_P3_ROWS;
        for (int32_t ox0 = 0; ox0 < out_w; ox0 += TR_P3_TILE) {
            const int32_t tw = out_w - ox0 < TR_P3_TILE ? out_w - ox0 : TR_P3_TILE;
            const int32_t twr = (tw + 3) & ~3;
            if (in_c == 2) {
                tr_p3_gather2(&buf, &src, oy0 - p->padding.h, ox0 - p->padding.w, rows + 2, twr + 2, p->pad_value);
            } else {
                tr_p3_gather(&buf, &src, oy0 - p->padding.h, ox0 - p->padding.w, rows + 2, twr + 2, p->pad_value);
            }
            int32_t *acc = tr_p3_acc(&buf, twr / 4);
            for (int32_t o = 0; o < out_c; ++o) {
                tr_p3_weights pw[2];
                for (int32_t ci = 0; ci < in_c; ++ci) {
                    int32_t w[9];
                    for (int32_t t = 0; t < 9; ++t) {
                        w[t] = tr_weight_of(fmt, filter + o * row_bytes, t * in_c + ci);
                    }
                    pw[ci] = tr_p3_pack(w, scale, bias != NULL ? bias[o] : 0);
                }
                const tr_p3_out po =
                    tr_p3_out_prepare(mult[o], shift[o], p->output_offset, p->activation.min, p->activation.max);
                int8_t *dst = output + (oy0 * out_w + ox0) * out_c + o;
                if (in_c == 1 && po.fast && po.rq.right >= 2) {
                    tr_p3_band(buf.g[0][0], acc, tw, rows, &pw[0], &po, dst, out_c, out_w * out_c, 0);
                    continue;
                }
                for (int32_t r = 0; r < rows; ++r) {
                    tr_p3_row(buf.g[0][r], acc, &pw[0]);
                    if (in_c == 2) {
                        tr_p3_row_add(buf.g[1][r], acc, &pw[1]);
                    }
                    tr_p3_store(acc, tw, &po, dst, out_c);
                    dst += out_w * out_c;
                }
            }
        }
    }
}
#endif /* TR_NN_USE_DSP */

#endif /* TR_PLANE3X3_H */
