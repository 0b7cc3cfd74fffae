/* runner.h - I/O hooks the kernel test runner needs (host_io.c or m7_io.c implement them). */
#ifndef TR_RUNNER_H
#define TR_RUNNER_H

#include <stdint.h>

#ifndef TR_RUNNER_ARENA_BYTES
#define TR_RUNNER_ARENA_BYTES (2u * 1024u * 1024u)
#endif

/* Read / write exactly n bytes; 0 on success. */
int rt_read(void *dst, uint32_t n);
int rt_write(const void *src, uint32_t n);
/* Free-running tick counter for profiling (0 when the platform has none). */
uint32_t rt_ticks(void);
/* Process every case from the input stream; 0 when the end marker was reached. */
int tr_runner_main(void);

#endif /* TR_RUNNER_H */
