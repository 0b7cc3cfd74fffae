/*
 * startup.c - vector table and early init for QEMU mps2-an500 (Cortex-M7, ARM AN500). The reset
 * itself (FPU, stack, sections) is tr_crt0.c, shared by every board.
 */
#include <stdint.h>
#include "tr_board.h"

extern uint32_t __tr_stack_top;

void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void);
void UART0RX_Handler(void);

/* One vector slot: the initial stack pointer or a handler (a union keeps both ISO C). */
typedef union {
    void (*handler)(void);
    const void *sp;
} tr_vector;

extern const tr_vector tr_vectors[];

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

/* Reset_Handler and the section set-up are shared by every board: firmware/app/tr_crt0.c. */
void tr_board_early_init(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)&tr_vectors[0];
    __asm volatile("dsb\n isb" ::: "memory");
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

#define AN500_NUM_IRQS 32

#define H(fn) {.handler = fn}
#define D H(Default_Handler)

/* 16 system exceptions + AN500 external interrupts; IRQ 0 = UART0 RX. */
__attribute__((section(".isr_vector"), used)) const tr_vector tr_vectors[16 + AN500_NUM_IRQS] = {
    {.sp = &__tr_stack_top}, H(Reset_Handler), H(NMI_Handler), H(HardFault_Handler),
    H(MemManage_Handler), H(BusFault_Handler), H(UsageFault_Handler), D,
    D, D, D, H(SVC_Handler),
    H(DebugMon_Handler), D, H(PendSV_Handler), H(SysTick_Handler),
    /* IRQ 0..31 */
    H(UART0RX_Handler), D, D, D, D, D, D, D, D, D, D, D, D, D, D, D,
    D, D, D, D, D, D, D, D, D, D, D, D, D, D, D, D,
};
