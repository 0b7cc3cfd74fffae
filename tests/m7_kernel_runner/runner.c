/*
 * runner.c - kernel test runner shared by the host (sanitized executable) and the Cortex-M7
 * (QEMU mps2-an500, semihosting) builds. I/O is behind rt_read/rt_write (host_io.c, m7_io.c).
 *
 * Case stream (all little-endian int32 words; see tests/c_harness.py, which writes it):
 *   op, n_params, params[n_params], n_blobs, { byte_len, bytes padded to 4 } * n_blobs, out_len
 * terminated by op == 0. Params: conv / depthwise 17 words, fully connected 6, the last being
 * bias_shift (a count mismatch returns status -102). For every case the runner writes: status (int32), elapsed ticks of
 * the kernel call (uint32, rt_ticks; 0 on the host), then out_len output bytes padded to 4. Output bytes the kernel does not write keep the sentinel 0x5A (concat
 * starts from blob 1 instead, so untouched channels can be checked).
 */
#include <stdint.h>
#include <string.h>

#include "runner.h"
#include "tr_nn.h"

#define MAX_PARAMS 32
#define MAX_BLOBS 8

enum {
    OP_END = 0,
    OP_CONV_T2 = 1, OP_CONV_T5, OP_CONV_S8,
    OP_DW_T2, OP_DW_T5, OP_DW_S8,
    OP_FC_T2, OP_FC_T5, OP_FC_S8,
    OP_ADD, OP_REQUANTIZE, OP_LUT, OP_CONCAT, OP_MAX_POOL, OP_AVG_POOL, OP_PAD,
};

static uint8_t g_arena[TR_RUNNER_ARENA_BYTES] __attribute__((aligned(8)));

static uint32_t align8(uint32_t x) { return (x + 7u) & ~7u; }

typedef struct {
    int32_t op;
    int32_t params[MAX_PARAMS];
    int32_t n_params;
    uint8_t *blob[MAX_BLOBS];
    int32_t blob_len[MAX_BLOBS];
    int32_t n_blobs;
} tr_case;

static const int32_t *blob_i32(const tr_case *c, int32_t i) { return (const int32_t *)(const void *)c->blob[i]; }
static const int32_t *opt_bias(const tr_case *c, int32_t i) { return c->blob_len[i] > 0 ? blob_i32(c, i) : NULL; }

static int32_t run_conv(const tr_case *c, int8_t *out, uint8_t *scratch, uint32_t scratch_cap)
{
    const int32_t *p = c->params;
    const tr_nn_dims in = {1, p[0], p[1], p[2]};
    const tr_nn_dims filt = {p[3], p[4], p[5], p[2]};
    const tr_nn_dims bias = {1, 1, 1, p[3]};
    const tr_nn_dims outd = {1, p[6], p[7], p[3]};
    if (c->n_params != 17) {
        return -102;
    }
    const tr_nn_conv_params cp = {p[12], p[13], {p[9], p[8]}, {p[11], p[10]}, {p[14], p[15]}, p[16]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    int32_t size;
    if (c->op == OP_CONV_T2) {
        size = tr_convolve_s8_t2_get_buffer_size(&in, &filt);
    } else if (c->op == OP_CONV_T5) {
        size = tr_convolve_s8_t5_get_buffer_size(&in, &filt);
    } else {
        size = tr_convolve_s8_s8_get_buffer_size(&in, &filt);
    }
    if ((uint32_t)size > scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {scratch, size};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    if (c->op == OP_CONV_T2) {
        return tr_convolve_s8_t2(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    if (c->op == OP_CONV_T5) {
        return tr_convolve_s8_t5(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    return tr_convolve_s8_s8(&ctx, &cp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
}

static int32_t run_dw(const tr_case *c, int8_t *out, uint8_t *scratch, uint32_t scratch_cap)
{
    const int32_t *p = c->params;
    const int32_t out_c = p[2] * p[3];
    const tr_nn_dims in = {1, p[0], p[1], p[2]};
    const tr_nn_dims filt = {1, p[4], p[5], out_c};
    const tr_nn_dims bias = {1, 1, 1, out_c};
    const tr_nn_dims outd = {1, p[6], p[7], out_c};
    if (c->n_params != 17) {
        return -102;
    }
    const tr_nn_dw_conv_params dp = {p[3], p[12], p[13], {p[9], p[8]}, {p[11], p[10]}, {p[14], p[15]}, p[16]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    int32_t size;
    if (c->op == OP_DW_T2) {
        size = tr_depthwise_conv_s8_t2_get_buffer_size(&in, &filt);
    } else if (c->op == OP_DW_T5) {
        size = tr_depthwise_conv_s8_t5_get_buffer_size(&in, &filt);
    } else {
        size = tr_depthwise_conv_s8_s8_get_buffer_size(&in, &filt);
    }
    if ((uint32_t)size > scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {size > 0 ? scratch : NULL, size};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    if (c->op == OP_DW_T2) {
        return tr_depthwise_conv_s8_t2(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    if (c->op == OP_DW_T5) {
        return tr_depthwise_conv_s8_t5(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    return tr_depthwise_conv_s8_s8(&ctx, &dp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
}

static int32_t run_fc(const tr_case *c, int8_t *out, uint8_t *scratch, uint32_t scratch_cap)
{
    const int32_t *p = c->params;
    const tr_nn_dims in = {1, 1, 1, p[0]};
    const tr_nn_dims filt = {p[1], 1, 1, p[0]};
    const tr_nn_dims bias = {1, 1, 1, p[1]};
    const tr_nn_dims outd = {1, 1, 1, p[1]};
    if (c->n_params != 6) {
        return -102;
    }
    const tr_nn_fc_params fp = {p[2], {p[3], p[4]}, p[5]};
    const tr_nn_per_channel_quant_params q = {blob_i32(c, 3), blob_i32(c, 4)};
    int32_t size;
    if (c->op == OP_FC_T2) {
        size = tr_fully_connected_s8_t2_get_buffer_size(&filt);
    } else if (c->op == OP_FC_T5) {
        size = tr_fully_connected_s8_t5_get_buffer_size(&filt);
    } else {
        size = tr_fully_connected_s8_s8_get_buffer_size(&filt);
    }
    if ((uint32_t)size > scratch_cap) {
        return -100;
    }
    const tr_nn_context ctx = {scratch, size};
    const int8_t *x = (const int8_t *)c->blob[0];
    const uint8_t *w = c->blob[1];
    if (c->op == OP_FC_T2) {
        return tr_fully_connected_s8_t2(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    if (c->op == OP_FC_T5) {
        return tr_fully_connected_s8_t5(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
    }
    return tr_fully_connected_s8_s8(&ctx, &fp, &q, &in, x, &filt, w, &bias, opt_bias(c, 2), &outd, out);
}

static int32_t run_other(const tr_case *c, int8_t *out)
{
    const int32_t *p = c->params;
    switch (c->op) {
    case OP_ADD: {
        const tr_nn_dims d = {1, 1, 1, p[0]};
        const tr_nn_add_params ap = {p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], {p[11], p[12]}};
        return tr_add_s8(&ap, &d, (const int8_t *)c->blob[0], (const int8_t *)c->blob[1], out);
    }
    case OP_REQUANTIZE: {
        const tr_nn_dims d = {1, 1, 1, p[0]};
        const tr_nn_requantize_params rp = {p[1], p[2], p[3], p[4], {p[5], p[6]}};
        return tr_requantize_s8(&rp, &d, (const int8_t *)c->blob[0], out);
    }
    case OP_LUT: {
        const tr_nn_dims d = {1, 1, 1, p[0]};
        return tr_lut_s8((const int8_t *)c->blob[0], &d, (const int8_t *)c->blob[1], out);
    }
    case OP_CONCAT: {
        const tr_nn_dims in = {1, p[0], p[1], p[2]};
        const tr_nn_dims outd = {1, p[0], p[1], p[3]};
        return tr_concat_s8(p[4], &in, (const int8_t *)c->blob[0], &outd, out);
    }
    case OP_MAX_POOL:
    case OP_AVG_POOL: {
        const tr_nn_dims in = {1, p[0], p[1], p[2]};
        const tr_nn_dims filt = {1, p[3], p[4], 1};
        const tr_nn_dims outd = {1, p[5], p[6], p[2]};
        const tr_nn_pool_params pp = {{p[8], p[7]}, {p[10], p[9]}, {p[11], p[12]}};
        if (c->op == OP_MAX_POOL) {
            return tr_max_pool_s8(&pp, &in, (const int8_t *)c->blob[0], &filt, &outd, out);
        }
        return tr_avg_pool_s8(&pp, &in, (const int8_t *)c->blob[0], &filt, &outd, out);
    }
    case OP_PAD: {
        const tr_nn_dims in = {1, p[0], p[1], p[2]};
        const tr_nn_dims outd = {1, p[3], p[4], p[2]};
        const tr_nn_pad_params pp = {p[7], p[5], p[6]};
        return tr_pad_s8(&pp, &in, (const int8_t *)c->blob[0], &outd, out);
    }
    default:
        return -101;
    }
}

int tr_runner_main(void)
{
    for (;;) {
        tr_case c;
        uint32_t used = 0;
        if (rt_read(&c.op, 4) != 0) {
            return 2;
        }
        if (c.op == OP_END) {
            return 0;
        }
        if (rt_read(&c.n_params, 4) != 0 || c.n_params < 0 || c.n_params > MAX_PARAMS ||
            rt_read(c.params, (uint32_t)c.n_params * 4u) != 0 || rt_read(&c.n_blobs, 4) != 0 || c.n_blobs < 0 ||
            c.n_blobs > MAX_BLOBS) {
            return 3;
        }
        for (int32_t i = 0; i < c.n_blobs; ++i) {
            if (rt_read(&c.blob_len[i], 4) != 0 || c.blob_len[i] < 0) {
                return 4;
            }
            const uint32_t padded = ((uint32_t)c.blob_len[i] + 3u) & ~3u;
            if (used + padded > sizeof g_arena) {
                return 5;
            }
            c.blob[i] = g_arena + used;
            if (rt_read(c.blob[i], padded) != 0) {
                return 6;
            }
            used = align8(used + padded);
        }
        int32_t out_len;
        if (rt_read(&out_len, 4) != 0 || out_len < 0) {
            return 7;
        }
        const uint32_t out_padded = ((uint32_t)out_len + 3u) & ~3u;
        if (used + out_padded > sizeof g_arena) {
            return 8;
        }
        int8_t *out = (int8_t *)(g_arena + used);
        used = align8(used + out_padded);
        if (c.op == OP_CONCAT) {
            memcpy(out, c.blob[1], out_padded);
        } else {
            memset(out, 0x5A, out_padded);
        }
        uint8_t *scratch = g_arena + used;
        const uint32_t scratch_cap = (uint32_t)sizeof g_arena - used;
        int32_t status;
        const uint32_t t0 = rt_ticks();
        if (c.op >= OP_CONV_T2 && c.op <= OP_CONV_S8) {
            status = run_conv(&c, out, scratch, scratch_cap);
        } else if (c.op >= OP_DW_T2 && c.op <= OP_DW_S8) {
            status = run_dw(&c, out, scratch, scratch_cap);
        } else if (c.op >= OP_FC_T2 && c.op <= OP_FC_S8) {
            status = run_fc(&c, out, scratch, scratch_cap);
        } else {
            status = run_other(&c, out);
        }
        const uint32_t ticks = rt_ticks() - t0;
        if (rt_write(&status, 4) != 0 || rt_write(&ticks, 4) != 0 || rt_write(out, out_padded) != 0) {
            return 9;
        }
    }
}
