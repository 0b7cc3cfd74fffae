/* host_io.c - host I/O for the kernel test runner: runner CASES_FILE RESULTS_FILE. */
#include <stdio.h>

#include "runner.h"

static FILE *g_in;
static FILE *g_out;

int rt_read(void *dst, uint32_t n)
{
    return fread(dst, 1, n, g_in) == n ? 0 : -1;
}

int rt_write(const void *src, uint32_t n)
{
    return fwrite(src, 1, n, g_out) == n ? 0 : -1;
}

uint32_t rt_ticks(void)
{
    return 0u;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CASES RESULTS\n", argv[0]);
        return 64;
    }
    g_in = fopen(argv[1], "rb");
    g_out = fopen(argv[2], "wb");
    if (g_in == NULL || g_out == NULL) {
        perror("open");
        return 65;
    }
    const int rc = tr_runner_main();
    fclose(g_in);
    if (fclose(g_out) != 0) {
        return 66;
    }
    return rc;
}
