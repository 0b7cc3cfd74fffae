/*
 * tr_bench.c - the kernel benchmark firmware: main() and the case loop (stream format in tr_bench.h).
 *
 * Built by toolchain/tinyrobust/bench.py with the board's startup, board.c (counter) and linker
 * script, the tr_nn library (DSP path, or plain C with -DTR_NN_FORCE_REFERENCE) and an I/O file
 * (tr_bench_semihost.c). Case data lives in one arena in the board's arena region (.tr_arena).
 *
 * Params (int32):
 *   conv:      h, w, c_in, c_out, kh, kw, oh, ow, stride_h, stride_w, pad_top, pad_left, pad_value,
 *              output_offset, act_min, act_max, bias_shift
 *   depthwise: h, w, c_in, ch_mult, kh, kw, oh, ow, stride_h, stride_w, pad_top, pad_left, pad_value,
 *              output_offset, act_min, act_max, bias_shift
 *   fc:        c_in, c_out, output_offset, act_min, act_max, bias_shift
 */
#include <stdint.h>
#include <string.h>

#include "tr_bench.h"
#include "tr_board.h"
#include "tr_nn.h"

#ifndef TR_BENCH_ARENA_BYTES
#define TR_BENCH_ARENA_BYTES (480u * 1024u)
#endif
#define TR_BENCH_MAX_PARAMS 32
#define TR_BENCH_MAX_BLOBS 8
#define TR_BENCH_MAX_REPEAT 8

/* op codes: keep in sync with OPS in toolchain/tinyrobust/bench.py */
enum {
    OP_END = 0,
    OP_CONV_T2 = 1, OP_CONV_T5, OP_CONV_S8,
    OP_DW_T2, OP_DW_T5, OP_DW_S8,
    OP_FC_T2, OP_FC_T5, OP_FC_S8,
};

static uint8_t s_arena[TR_BENCH_ARENA_BYTES] __attribute__((aligned(8), section(".tr_arena")));

typedef struct {
    int32_t op;
    int32_t n_params;
    int32_t params[TR_BENCH_MAX_PARAMS];
    int32_t n_blobs;
    uint8_t *blob[TR_BENCH_MAX_BLOBS];
    int32_t blob_len[TR_BENCH_MAX_BLOBS];
} tr_bench_case;

typedef struct {
    uint8_t *scratch;
    uint32_t scratch_cap;
    int8_t *out;
} tr_bench_buffers;

static uint32_t align8(uint32_t x) { return (x + 7u) & ~7u; }

static const int32_t *blob_i32(const tr_bench_case *c, int32_t i)
{
    return (const int32_t *)(const void *)c->blob[i];
}

static const int32_t *opt_bias(const tr_bench_case *c) { return c->blob_len[2] > 0 ? blob_i32(c, 2) : NULL; }

static int32_t run_conv(const tr_bench_case *c, const tr_bench_buffers *b)
{
    const int32_t *p = c->params;
    const tr_nn_dims in = {1, p[0], p[1], p[2]};
    const tr_nn_dims filt = {p[3], p[4], p[5], p[2]};
    const tr_nn_dims bias = {1, 1, 1, p[3]};
    const tr_nn_dims outd = {1, p[6], p[7], p[3]};
    const tr_nn_conv_params cp = {p[12], p[13], {p[9], p[8]}, {p[11], p[10]}, {p[14], p[15]}, p[16]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    int32_t size = c->op == OP_CONV_T2   ? tr_convolve_s8_t2_get_buffer_size(&in, &filt)
                   : c->op == OP_CONV_T5 ? tr_convolve_s8_t5_get_buffer_size(&in, &filt)
                                         : tr_convolve_s8_s8_get_buffer_size(&in, &filt);
    if ((uint32_t)size > b->scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {b->scratch, size};
    if (c->op == OP_CONV_T2) {
        return tr_convolve_s8_t2(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    if (c->op == OP_CONV_T5) {
        return tr_convolve_s8_t5(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    return tr_convolve_s8_s8(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
}

static int32_t run_dw(const tr_bench_case *c, const tr_bench_buffers *b)
{
    const int32_t *p = c->params;
    const int32_t out_c = p[2] * p[3];
    const tr_nn_dims in = {1, p[0], p[1], p[2]};
    const tr_nn_dims filt = {1, p[4], p[5], out_c};
    const tr_nn_dims bias = {1, 1, 1, out_c};
    const tr_nn_dims outd = {1, p[6], p[7], out_c};
    const tr_nn_dw_conv_params dp = {p[3], p[12], p[13], {p[9], p[8]}, {p[11], p[10]}, {p[14], p[15]}, p[16]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    int32_t size = c->op == OP_DW_T2   ? tr_depthwise_conv_s8_t2_get_buffer_size(&in, &filt)
                   : c->op == OP_DW_T5 ? tr_depthwise_conv_s8_t5_get_buffer_size(&in, &filt)
                                       : tr_depthwise_conv_s8_s8_get_buffer_size(&in, &filt);
    if ((uint32_t)size > b->scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {size > 0 ? b->scratch : NULL, size};
    if (c->op == OP_DW_T2) {
        return tr_depthwise_conv_s8_t2(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    if (c->op == OP_DW_T5) {
        return tr_depthwise_conv_s8_t5(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    return tr_depthwise_conv_s8_s8(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
}

static int32_t run_fc(const tr_bench_case *c, const tr_bench_buffers *b)
{
    const int32_t *p = c->params;
    const tr_nn_dims in = {1, 1, 1, p[0]};
    const tr_nn_dims filt = {p[1], 1, 1, p[0]};
    const tr_nn_dims bias = {1, 1, 1, p[1]};
    const tr_nn_dims outd = {1, 1, 1, p[1]};
    const tr_nn_fc_params fp = {p[2], {p[3], p[4]}, p[5]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    int32_t size = c->op == OP_FC_T2   ? tr_fully_connected_s8_t2_get_buffer_size(&filt)
                   : c->op == OP_FC_T5 ? tr_fully_connected_s8_t5_get_buffer_size(&filt)
                                       : tr_fully_connected_s8_s8_get_buffer_size(&filt);
    if ((uint32_t)size > b->scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {b->scratch, size};
    if (c->op == OP_FC_T2) {
        return tr_fully_connected_s8_t2(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    if (c->op == OP_FC_T5) {
        return tr_fully_connected_s8_t5(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
    }
    return tr_fully_connected_s8_s8(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c), &outd, b->out);
}

static int32_t run_case(const tr_bench_case *c, const tr_bench_buffers *b)
{
    static const int32_t n_params[] = {0, 17, 17, 17, 17, 17, 17, 6, 6, 6};
    if (c->op < OP_CONV_T2 || c->op > OP_FC_S8) {
        return -101;
    }
    if (c->n_params != n_params[c->op] || c->n_blobs != 5) {
        return -102;
    }
    if (c->op <= OP_CONV_S8) {
        return run_conv(c, b);
    }
    if (c->op <= OP_DW_S8) {
        return run_dw(c, b);
    }
    return run_fc(c, b);
}

/* Reads one case header and its blobs into the arena; returns 1 at the end marker, 0 on success. */
static int read_case(tr_bench_case *c, int32_t *out_len, int32_t *repeat, uint32_t *used)
{
    if (tr_bench_read(&c->op, 4) != 0) {
        return -2;
    }
    if (c->op == OP_END) {
        return 1;
    }
    if (tr_bench_read(&c->n_params, 4) != 0 || c->n_params < 0 || c->n_params > TR_BENCH_MAX_PARAMS ||
        tr_bench_read(c->params, (uint32_t)c->n_params * 4u) != 0 || tr_bench_read(&c->n_blobs, 4) != 0 ||
        c->n_blobs < 0 || c->n_blobs > TR_BENCH_MAX_BLOBS) {
        return -3;
    }
    for (int32_t i = 0; i < c->n_blobs; ++i) {
        if (tr_bench_read(&c->blob_len[i], 4) != 0 || c->blob_len[i] < 0) {
            return -4;
        }
        const uint32_t padded = ((uint32_t)c->blob_len[i] + 3u) & ~3u;
        if (padded > sizeof s_arena - *used) {
            return -5;
        }
        c->blob[i] = s_arena + *used;
        if (tr_bench_read(c->blob[i], padded) != 0) {
            return -6;
        }
        *used = align8(*used + padded);
    }
    if (tr_bench_read(out_len, 4) != 0 || *out_len < 0 || tr_bench_read(repeat, 4) != 0 || *repeat < 1 ||
        *repeat > TR_BENCH_MAX_REPEAT) {
        return -7;
    }
    return 0;
}

int tr_bench_run(void)
{
    for (;;) {
        tr_bench_case c;
        int32_t out_len = 0;
        int32_t repeat = 0;
        uint32_t used = 0;
        const int rc = read_case(&c, &out_len, &repeat, &used);
        if (rc != 0) {
            return rc == 1 ? 0 : -rc;
        }
        const uint32_t out_padded = ((uint32_t)out_len + 3u) & ~3u;
        if (out_padded > sizeof s_arena - used) {
            return 8;
        }
        tr_bench_buffers b;
        b.out = (int8_t *)(s_arena + used);
        used = align8(used + out_padded);
        b.scratch = s_arena + used;
        b.scratch_cap = (uint32_t)sizeof s_arena - used;
        memset(b.out, 0x5A, out_padded);
        int32_t status = 0;
        uint64_t counts[TR_BENCH_MAX_REPEAT] = {0};
        for (int32_t r = 0; r < repeat; ++r) {
            const uint64_t t0 = tr_board_counter_start();
            status = run_case(&c, &b);
            counts[r] = tr_board_counter_read() - t0;
            if (status != 0) {
                break;
            }
        }
        if (tr_bench_write(&status, 4) != 0 || tr_bench_write(&repeat, 4) != 0 ||
            tr_bench_write(counts, (uint32_t)repeat * 8u) != 0 || tr_bench_write(b.out, out_padded) != 0) {
            return 9;
        }
    }
}

int main(void)
{
    tr_board_init();
    if (tr_bench_io_open() != 0) {
        tr_bench_exit(0);
    }
    const int rc = tr_bench_run();
    tr_bench_io_close();
    tr_bench_exit(rc == 0);
}
