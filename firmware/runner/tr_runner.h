/*
 * tr_runner.h - the kernel runner: one tr_nn kernel call per case, read from a stream the host
 * writes, with the status, the board counter and the output written back. The tests use it for
 * bit-exactness against the numpy reference (host and Cortex-M7), the bench for instruction counts.
 *
 * Case stream (little-endian int32 words; toolchain/tinyrobust/firmware/runner.py writes it):
 *   code, n_scalars, scalars[n_scalars], n_blobs, { byte_len, bytes padded to 4 } * n_blobs,
 *   out_len, repeat, scratch_bytes, initial_blob
 * terminated by code == 0. `code` is the kernel's op code (OP_CODES in converter/ops/__init__.py),
 * `scalars` its family's flattened params, the blobs its inputs then its constant arrays (byte_len
 * 0 passes NULL). The output starts filled with TR_RUNNER_SENTINEL, or with blob `initial_blob`
 * when that is >= 0, so bytes a kernel must not write can be checked.
 * Result per case: status (int32), repeat (int32), `repeat` counts (uint64: the board counter around
 * each of `repeat` calls on the same data; 0 on the host), then out_len output bytes padded to 4.
 *
 * tr_runner.c reads and writes the stream; the generated tr_runner_ops.c
 * (firmware_templates/runner/tr_runner_ops.c.j2) calls the kernel with each family's template
 * macro, exactly as generated models call it; tr_runner_board.c / tr_runner_host.c provide I/O,
 * the counter and main().
 */
#ifndef TR_RUNNER_H
#define TR_RUNNER_H

#include <stdint.h>

#define TR_RUNNER_MAX_SCALARS 32
#define TR_RUNNER_MAX_BLOBS 8
#define TR_RUNNER_MAX_REPEAT 8
#define TR_RUNNER_SENTINEL 0x5A
/* Status of a case the dispatch cannot run (unknown code, wrong scalar or blob count). */
#define TR_RUNNER_BAD_CASE (-101)

typedef struct {
    int32_t code;
    int32_t n_scalars;
    int32_t scalars[TR_RUNNER_MAX_SCALARS];
    int32_t n_blobs;
    uint8_t *blob[TR_RUNNER_MAX_BLOBS];
    int32_t blob_len[TR_RUNNER_MAX_BLOBS];
    int32_t scratch_bytes;
} tr_runner_case;

/* The generated dispatch: runs case c's kernel once; returns its status or TR_RUNNER_BAD_CASE. */
int32_t tr_runner_dispatch(const tr_runner_case *c, int8_t *out, void *scratch);

/* Process the whole case stream from `arena` (8-byte aligned): 0 when the end marker was reached,
 * else a positive error code naming where the stream broke. */
int tr_runner_run(uint8_t *arena, uint32_t arena_bytes);

/* Provided per platform: read / write exactly n bytes of the case / result stream (0 on success),
 * and the counter around each kernel call. */
int tr_runner_read(void *dst, uint32_t n);
int tr_runner_write(const void *src, uint32_t n);
uint64_t tr_runner_counter_start(void);
uint64_t tr_runner_counter_read(void);

#endif /* TR_RUNNER_H */
