/*
 * tr_bench.h - the kernel benchmark firmware (tinyrobust bench): host I/O hooks and entry point.
 *
 * The benchmark reads a case stream from the host, calls one tr_nn kernel per case between two reads
 * of the board counter (tr_board.h: emulated instructions under QEMU -icount, cycles on silicon) and
 * writes the status, the count and the kernel's output back, so the host can check every output
 * against the numpy reference before it trusts a count.
 *
 * Case stream (little-endian int32 words; toolchain/tinyrobust/bench.py writes it):
 *   op, n_params, params[n_params], n_blobs, { byte_len, bytes padded to 4 } * n_blobs, out_len, repeat
 * terminated by op == 0. Blobs: input, packed weights, bias (byte_len 0 = NULL), multiplier, shift.
 * Params: conv / depthwise 17 words, fully connected 6 (layouts in tr_bench.c).
 * Result per case: status (int32), repeat (int32), then `repeat` counts (uint64 each; the kernel runs
 * `repeat` times on the same data), then out_len output bytes padded to 4.
 */
#ifndef TR_BENCH_H
#define TR_BENCH_H

#include <stdint.h>

/* Read / write exactly n bytes of the case / result stream; 0 on success. */
int tr_bench_read(void *dst, uint32_t n);
int tr_bench_write(const void *src, uint32_t n);
/* Open the streams (0 on success) and end the run (never returns; ok != 0 means success). */
int tr_bench_io_open(void);
void tr_bench_io_close(void);
__attribute__((noreturn)) void tr_bench_exit(int ok);
/* Process the whole case stream: 0 when the end marker was reached, else an error code. */
int tr_bench_run(void);

#endif /* TR_BENCH_H */
