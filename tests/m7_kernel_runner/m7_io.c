/*
 * m7_io.c - bare-metal startup and Arm semihosting I/O for the kernel test runner on QEMU
 * mps2-an500 (Cortex-M7). Reads "cases.bin" and writes "results.bin" in QEMU's working
 * directory, then exits QEMU through SYS_EXIT (status 0 only on success).
 * rt_ticks() reads CMSDK APB timer 0 (0x40000000, 25 MHz); run QEMU with -icount shift=N to
 * turn ticks into executed instructions (one instruction = 2^N ns).
 */
#include <stdint.h>
#include <string.h>

#include "runner.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

static int32_t semihost(int32_t op, const void *arg)
{
    register int32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static __attribute__((noreturn)) void sh_exit(int ok)
{
    (void)semihost(SYS_EXIT, (const void *)(uintptr_t)(ok ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}

static int32_t sh_open(const char *name, int32_t mode)
{
    const uint32_t args[3] = {(uint32_t)(uintptr_t)name, (uint32_t)mode, (uint32_t)strlen(name)};
    return semihost(SYS_OPEN, args);
}

static int32_t g_in = -1;
static int32_t g_out = -1;

int rt_read(void *dst, uint32_t n)
{
    if (n == 0u) {
        return 0;
    }
    const uint32_t args[3] = {(uint32_t)g_in, (uint32_t)(uintptr_t)dst, n};
    return semihost(SYS_READ, args) == 0 ? 0 : -1; /* returns the number of bytes NOT read */
}

int rt_write(const void *src, uint32_t n)
{
    if (n == 0u) {
        return 0;
    }
    const uint32_t args[3] = {(uint32_t)g_out, (uint32_t)(uintptr_t)src, n};
    return semihost(SYS_WRITE, args) == 0 ? 0 : -1;
}

#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

uint32_t rt_ticks(void)
{
    return 0xFFFFFFFFu - TIMER0_VALUE; /* the timer counts down */
}

void Reset_Handler(void);
void Default_Handler(void);

void Default_Handler(void)
{
    sh_exit(0);
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    /* Full access to CP10/CP11 so hard-float code (none in the kernels, maybe in libc) cannot fault. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1u;
    g_in = sh_open("cases.bin", 1);  /* "rb" */
    g_out = sh_open("results.bin", 5); /* "wb" */
    if (g_in < 0 || g_out < 0) {
        sh_exit(0);
    }
    const int rc = tr_runner_main();
    (void)semihost(SYS_CLOSE, (const uint32_t[1]){(uint32_t)g_in});
    (void)semihost(SYS_CLOSE, (const uint32_t[1]){(uint32_t)g_out});
    sh_exit(rc == 0);
}

__attribute__((section(".vectors"), used)) static void (*const g_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack,
    Reset_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, 0, 0, 0, 0,
    Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
