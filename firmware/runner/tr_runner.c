/*
 * tr_runner.c - the kernel runner's case loop (stream format in tr_runner.h). Blobs, the output and
 * the scratch of one case are laid out one after another in the arena, each 8-byte aligned.
 */
#include <string.h>

#include "tr_runner.h"

static uint32_t align8(uint32_t x) { return (x + 7u) & ~7u; }

typedef struct {
    int32_t out_len;
    int32_t repeat;
    int32_t initial_blob;
} tr_runner_tail;

/* Reads one case and its blobs into the arena: 1 at the end marker, 0 on success, < 0 on error. */
static int read_case(tr_runner_case *c, tr_runner_tail *t, uint8_t *arena, uint32_t arena_bytes, uint32_t *used)
{
    if (tr_runner_read(&c->code, 4) != 0) {
        return -2;
    }
    if (c->code == 0) {
        return 1;
    }
    if (tr_runner_read(&c->n_scalars, 4) != 0 || c->n_scalars < 0 || c->n_scalars > TR_RUNNER_MAX_SCALARS ||
        tr_runner_read(c->scalars, (uint32_t)c->n_scalars * 4u) != 0 || tr_runner_read(&c->n_blobs, 4) != 0 ||
        c->n_blobs < 0 || c->n_blobs > TR_RUNNER_MAX_BLOBS) {
        return -3;
    }
    for (int32_t i = 0; i < c->n_blobs; ++i) {
        if (tr_runner_read(&c->blob_len[i], 4) != 0 || c->blob_len[i] < 0) {
            return -4;
        }
        const uint32_t padded = ((uint32_t)c->blob_len[i] + 3u) & ~3u;
        if (padded > arena_bytes - *used) {
            return -5;
        }
        c->blob[i] = c->blob_len[i] > 0 ? arena + *used : NULL;
        if (tr_runner_read(arena + *used, padded) != 0) {
            return -6;
        }
        *used = align8(*used + padded);
    }
    if (tr_runner_read(&t->out_len, 4) != 0 || t->out_len < 0 || tr_runner_read(&t->repeat, 4) != 0 ||
        t->repeat < 1 || t->repeat > TR_RUNNER_MAX_REPEAT || tr_runner_read(&c->scratch_bytes, 4) != 0 ||
        c->scratch_bytes < 0 || tr_runner_read(&t->initial_blob, 4) != 0 || t->initial_blob >= c->n_blobs) {
        return -7;
    }
    return 0;
}

int tr_runner_run(uint8_t *arena, uint32_t arena_bytes)
{
    for (;;) {
        tr_runner_case c;
        tr_runner_tail t;
        uint32_t used = 0;
        const int rc = read_case(&c, &t, arena, arena_bytes, &used);
        if (rc != 0) {
            return rc == 1 ? 0 : -rc;
        }
        const uint32_t out_padded = ((uint32_t)t.out_len + 3u) & ~3u;
        if (out_padded > arena_bytes - used) {
            return 8;
        }
        int8_t *out = (int8_t *)(arena + used);
        used = align8(used + out_padded);
        if ((uint32_t)c.scratch_bytes > arena_bytes - used) {
            return 9;
        }
        void *scratch = c.scratch_bytes > 0 ? arena + used : NULL;
        if (t.initial_blob >= 0) {
            if (c.blob_len[t.initial_blob] != t.out_len) {
                return 10;
            }
            memcpy(out, c.blob[t.initial_blob], (size_t)t.out_len);
            memset(out + t.out_len, TR_RUNNER_SENTINEL, out_padded - (uint32_t)t.out_len);
        } else {
            memset(out, TR_RUNNER_SENTINEL, out_padded);
        }
        int32_t status = 0;
        uint64_t counts[TR_RUNNER_MAX_REPEAT] = {0};
        for (int32_t r = 0; r < t.repeat; ++r) {
            const uint64_t t0 = tr_runner_counter_start();
            status = tr_runner_dispatch(&c, out, scratch);
            counts[r] = tr_runner_counter_read() - t0;
            if (status != 0) {
                break;
            }
        }
        if (tr_runner_write(&status, 4) != 0 || tr_runner_write(&t.repeat, 4) != 0 ||
            tr_runner_write(counts, (uint32_t)t.repeat * 8u) != 0 || tr_runner_write(out, out_padded) != 0) {
            return 11;
        }
    }
}
