/*
 * tr_runner_semihost.c - the kernel runner on a board or emulator: main(), the board counter, and
 * the case / result streams over Arm semihosting (QEMU -semihosting-config enable=on).
 *
 * Reads "runner_cases.bin" and writes "runner_results.bin" in the emulator's working directory
 * (bulk data: semihosting moves megabytes where the UART moves kilobytes), and ends the emulator
 * through SYS_EXIT. Semihosting traps (BKPT 0xAB) run outside the measured intervals.
 */
#include <stdint.h>
#include <string.h>

#include "tr_board.h"
#include "tr_runner.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023
#define MODE_RB 1
#define MODE_WB 5

static int32_t s_in = -1;
static int32_t s_out = -1;

static int32_t semihost(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static int32_t open_file(const char *name, int32_t mode)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, (uint32_t)mode, (uint32_t)strlen(name)};
    return semihost(SYS_OPEN, args);
}

#ifndef TR_RUNNER_ARENA_BYTES
#define TR_RUNNER_ARENA_BYTES (480u * 1024u)
#endif

/* In the board's arena region (.tr_arena), like a model's activations. */
static uint8_t s_arena[TR_RUNNER_ARENA_BYTES] __attribute__((aligned(8), section(".tr_arena")));

static void io_close(void)
{
    const uint32_t in_args[1] = {(uint32_t)s_in};
    const uint32_t out_args[1] = {(uint32_t)s_out};
    (void)semihost(SYS_CLOSE, in_args);
    (void)semihost(SYS_CLOSE, out_args);
}

int tr_runner_read(void *dst, uint32_t n)
{
    if (n == 0u) {
        return 0;
    }
    const uint32_t args[3] = {(uint32_t)s_in, (uint32_t)(uintptr_t)dst, n};
    return semihost(SYS_READ, args) == 0 ? 0 : -1; /* SYS_READ returns the bytes NOT read */
}

int tr_runner_write(const void *src, uint32_t n)
{
    if (n == 0u) {
        return 0;
    }
    const uint32_t args[3] = {(uint32_t)s_out, (uint32_t)(uintptr_t)src, n};
    return semihost(SYS_WRITE, args) == 0 ? 0 : -1;
}

__attribute__((noreturn)) static void runner_exit(int ok)
{
    (void)semihost(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT
                                                          : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}

uint64_t tr_runner_counter_start(void)
{
    return tr_board_counter_start();
}

uint64_t tr_runner_counter_read(void)
{
    return tr_board_counter_read();
}

int main(void)
{
    tr_board_init();
    s_in = open_file("runner_cases.bin", MODE_RB);
    s_out = open_file("runner_results.bin", MODE_WB);
    if (s_in < 0 || s_out < 0) {
        runner_exit(0);
    }
    const int rc = tr_runner_run(s_arena, (uint32_t)sizeof s_arena);
    io_close();
    runner_exit(rc == 0);
}
