/*
 * startup.c - vector table and early init for the NUCLEO-H743ZI (STM32H743ZI, Cortex-M7 r1p1/r1p2):
 * vector table offset and the L1 I- and D-caches. The reset itself (FPU, stack, sections) is
 * tr_crt0.c, shared by every board.
 */
#include <stdint.h>
#include "stm32h743_regs.h"
#include "tr_board.h"

extern uint32_t __tr_stack_top;

void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void USART3_IRQHandler(void);

/* One vector slot: the initial stack pointer or a handler (a union keeps both ISO C). */
typedef union {
    void (*handler)(void);
    const void *sp;
} tr_vector;

extern const tr_vector tr_vectors[];

static void enable_caches(void)
{
    /* I-cache: invalidate, then enable (ARMv7-M ARM B2.2.7 sequence with barriers). */
    __asm volatile("dsb\n isb" ::: "memory");
    SCB_ICIALLU = 0;
    __asm volatile("dsb\n isb" ::: "memory");
    SCB_CCR |= SCB_CCR_IC;
    __asm volatile("dsb\n isb" ::: "memory");

    /* D-cache: its contents are undefined after reset, so invalidate every line by set/way
     * before enabling it. Cortex-M7: 32-byte lines (set field at bit 5), way field at bit 30
     * for 4 ways; sets/ways read from CCSIDR rather than assumed. */
    SCB_CSSELR = 0; /* level 1 data cache */
    __asm volatile("dsb" ::: "memory");
    const uint32_t ccsidr = SCB_CCSIDR;
    const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    for (uint32_t set = 0; set < sets; ++set) {
        for (uint32_t way = 0; way < ways; ++way) {
            SCB_DCISW = (set << 5) | (way << 30);
        }
    }
    __asm volatile("dsb" ::: "memory");
    SCB_CCR |= SCB_CCR_DC;
    __asm volatile("dsb\n isb" ::: "memory");
}


/* Reset_Handler and the section set-up are shared by every board: firmware/app/tr_crt0.c. */
void tr_board_early_init(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)&tr_vectors[0];
    __asm volatile("dsb\n isb" ::: "memory");
    enable_caches();
}

void Default_Handler(void)
{
    /* An unexpected fault or interrupt: stop here (the host times out and reports it). */
    for (;;) {
    }
}

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define STM32H743_NUM_IRQS 150

#define H(fn) {.handler = fn}
#define D H(Default_Handler)

/* 16 system exceptions + the STM32H743's 150 interrupt lines (RM0433 table 145); IRQ 39 = USART3. */
__attribute__((section(".isr_vector"), used)) const tr_vector tr_vectors[16 + STM32H743_NUM_IRQS] = {
    {.sp = &__tr_stack_top}, H(Reset_Handler), H(NMI_Handler), H(HardFault_Handler),
    H(MemManage_Handler), H(BusFault_Handler), H(UsageFault_Handler), D,
    D, D, D, H(SVC_Handler),
    H(DebugMon_Handler), D, H(PendSV_Handler), H(SysTick_Handler),
    /* IRQ 0..149, 8 per row */
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, H(USART3_IRQHandler),
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D,
    D, D, D, D, D, D,
};
