/*
 * tr_runner_host.c - the kernel runner on the host: `runner CASES RESULTS` (stdio streams, no counter).
 */
#include <stdio.h>

#include "tr_runner.h"

#ifndef TR_RUNNER_ARENA_BYTES
#define TR_RUNNER_ARENA_BYTES (4u * 1024u * 1024u)
#endif

static FILE *s_in;
static FILE *s_out;

int tr_runner_read(void *dst, uint32_t n)
{
    return fread(dst, 1, n, s_in) == n ? 0 : -1;
}

int tr_runner_write(const void *src, uint32_t n)
{
    return fwrite(src, 1, n, s_out) == n ? 0 : -1;
}

uint64_t tr_runner_counter_start(void)
{
    return 0u;
}

uint64_t tr_runner_counter_read(void)
{
    return 0u;
}

int main(int argc, char **argv)
{
    static uint8_t arena[TR_RUNNER_ARENA_BYTES] __attribute__((aligned(8)));
    if (argc != 3) {
        fprintf(stderr, "usage: %s CASES RESULTS\n", argv[0]);
        return 64;
    }
    s_in = fopen(argv[1], "rb");
    s_out = fopen(argv[2], "wb");
    if (s_in == NULL || s_out == NULL) {
        perror("open");
        return 65;
    }
    const int rc = tr_runner_run(arena, (uint32_t)sizeof arena);
    fclose(s_in);
    if (fclose(s_out) != 0) {
        return 66;
    }
    return rc;
}
